"""Precision: the loss under ``torch.autocast`` (bfloat16 and float16) against float32.

Half precision keeps 8 (bfloat16) or 11 (float16) significant bits; SSIM's variances ``E[x^2] - mu^2`` are
small differences of large numbers and lose most of them, which is why :func:`lowlight_course.train.fit`
computes the loss in float32 (its ``amp`` argument). Measured: the relative error of the value and the
cosine between the gradients. Rule: fail when the relative error exceeds 0.1, the gradient cosine is below 0.9,
or anything is NaN/Inf; warn above 0.01 / below 0.99.
"""
from __future__ import annotations

import math

import torch

from ..report import AuditRow
from ._common import term_label

SOURCE = "precision"
ORIGIN = "lowlight_course.train.fit docstring (amp: the loss runs in float32); Chapter 2 (SSIM's variances)"
FIX = ("compute the loss in float32: wrap it in torch.autocast(device_type, enabled=False) and call .float() "
       "on its inputs, as the course's ssim does")


def _cos(a, b) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    na, nb = float(a.norm()), float(b.norm())
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float((a @ b) / (na * nb))


def run(ctx):
    d, base = ctx.data, ctx.baseline
    dtypes = (torch.bfloat16,) if ctx.quick else (torch.bfloat16, torch.float16)
    for dt in dtypes:
        name = str(dt).replace("torch.", "")
        ev = ctx.loss.evaluate(d.pred, d.target, d.low, wrt="pred", autocast=dt)
        if not ev.ok:
            verdict = "fail"
            ctx.add(AuditRow(f"autocast {name}", SOURCE, None, verdict, "rel. error <= 0.01, gradient cosine >= 0.99",
                             ORIGIN, FIX, "02", f"under autocast: {ev.problem}"))
            continue
        v32, v16 = base.total, ev.total
        rel = abs(v16 - v32) / max(abs(v32), 1e-12)
        g32, g16 = base.grads.get("total"), ev.grads.get("total")
        cos = _cos(g32, g16) if g32 is not None and g16 is not None else (1.0 if g32 is None and g16 is None else 0.0)
        if not math.isfinite(cos):
            cos = float("nan")
        verdict = "fail" if (not math.isfinite(rel) or rel > 0.1 or not cos >= 0.9) else \
            "warn" if (rel > 0.01 or cos < 0.99) else "pass"
        ctx.add(AuditRow(f"autocast {name}", SOURCE, rel, verdict, "fail: rel. error > 0.1 or cosine < 0.9; warn: > 0.01 or < 0.99",
                         ORIGIN, FIX, "02", f"value {v16:.4g} against {v32:.4g} in float32 (relative error {rel:.2g}); "
                                             f"gradient cosine {cos:.4f}"))
