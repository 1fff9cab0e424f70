"""Gradient liveness: every term must have a finite, non-zero gradient wherever pred differs from target.

Per term: at the photo pair (fail when the term has no autograd path, no gradient reaching pred, an all-zero
gradient or a NaN/Inf one: Chapter 3's ``torch.histc`` term, Chapter 7's dead-term flag), and at edge cases
(identical images, a constant grey, a black and a white prediction, a prediction whose values sit exactly on
16-bin edges; constant target too): fail when the value or gradient is NaN/Inf or the loss raises, or the
gradient is exactly zero although the term is above its value at pred = target (a term that measures only
part of the image, such as chroma, may sit at its minimum on a grey pair: that is no failure).
"""
from __future__ import annotations

import torch

from ..adapt import grad_finite, grad_norm
from ..report import AuditRow
from ._common import term_label, terms_of

SOURCE = "gradient liveness"
ORIGIN = "Chapter 3, section 1 (The article's histogram term has no gradient); Chapter 7, section 2 (A plateau detector) (gradient exactly 0)"
FIX = ("use differentiable operations on the path to pred: a soft histogram instead of torch.histc, no .item(), "
       "rounding, argmax or detach; guard sqrt/log/division with an epsilon")


def _edge_cases(d):
    t = d.target
    grey = torch.full_like(t, 0.5)
    return {
        "identical images": (t, t, False),
        "constant grey prediction": (grey, t, True),
        "black prediction": (torch.zeros_like(t), t, True),
        "white prediction": (torch.ones_like(t), t, True),
        "prediction on 16-bin edges": ((d.pred * 16).round() / 16, t, True),
        "constant pair (0.5 against 0.4)": (grey, torch.full_like(t, 0.4), True),
    }


def run(ctx):
    base, names = ctx.baseline, terms_of(ctx)
    for t in names:
        g = base.grads.get(t)
        label = term_label(ctx, t)
        if t in base.no_graph:
            v, why = "fail", "the value has no grad_fn (requires_grad is False): no autograd path to pred, a constant to the optimiser"
        elif g is None:
            v, why = "fail", "no gradient reaches pred (the graph does not depend on it)"
        elif not grad_finite(g):
            v, why = "fail", "the gradient holds NaN or Inf"
        elif grad_norm(g) == 0:
            v, why = "fail", "the gradient is exactly zero although pred differs from target"
        else:
            v, why = "pass", "finite and non-zero"
        ctx.add(AuditRow("gradient at a photo pair", SOURCE, grad_norm(g) if g is not None and grad_finite(g) else None,
                         v, "an autograd path, finite, non-zero", ORIGIN, FIX, "03", f"gradient norm: {why}", label))
    cases = _edge_cases(ctx.data)
    if ctx.quick:
        cases = {k: cases[k] for k in ("identical images", "black prediction", "prediction on 16-bin edges")}
    problems = {t: [] for t in names}
    floors = {}
    for case, (p, tgt, differs) in cases.items():
        ev = ctx.loss.evaluate(p, tgt, ctx.data.low, wrt="pred")
        if differs and ev.ok and id(tgt) not in floors:
            floors[id(tgt)] = ctx.loss.evaluate(tgt, tgt, ctx.data.low, wrt=None)
        floor = floors.get(id(tgt))
        if not ev.ok and ev.kind != "nonfinite":
            for t in names:
                problems[t].append(f"{case}: {ev.problem}")
            continue
        for t in names:
            value, g = ev.terms.get(t, float("nan")), ev.grads.get(t)
            if value != value or value in (float("inf"), float("-inf")):
                problems[t].append(f"{case}: value {value}")
            elif not grad_finite(g):
                problems[t].append(f"{case}: NaN/Inf gradient")
            elif differs and t not in base.no_graph and g is not None and grad_norm(g) == 0 \
                    and not (floor is not None and floor.ok and value <= floor.terms.get(t, float("nan"))):
                problems[t].append(f"{case}: gradient exactly 0")
    for t in names:
        bad = problems[t]
        ctx.add(AuditRow("gradient at edge cases", SOURCE, len(bad), "fail" if bad else "pass",
                         f"0 of {len(cases)} cases NaN/Inf, raising, or exactly 0 above the minimum", ORIGIN, FIX, "03",
                         ("; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")) if bad
                         else f"finite everywhere, non-zero wherever pred differs ({len(cases)} cases)",
                         term_label(ctx, t)))
