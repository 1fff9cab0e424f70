"""Plateaus: what the optimiser has to follow.

* **path**: the loss and its gradient norm along the straight path ``(1 - s) low + s target``, s = 0 ... 0.9
  (the low-light input to the target). Fail when the gradient falls below 1e-3 of its largest value on the path
  (a flat stretch: Chapter 7's vanishing-gradient flag) or the loss is not lower at s = 0.9 than at s = 0; warn
  when the loss rises anywhere along the path (a bump between the input and the target), or the gradient
  falls below 0.02 of its largest value.
* **short training** (with a model): 16 ``fit`` steps (6 quick) on 32 x 32 crops of the probe pairs, on one
  thread, within what is left of the probe's time limit, and Chapter 7's plateau detector
  (dead and weak terms, vanishing and exploding gradients, a stalled loss). Fail on dead / vanishing / exploding,
  warn on weak / stalled.
"""
from __future__ import annotations

import copy
import statistics
import time

import torch

from ...guarded import run_guarded
from ..adapt import grad_norm
from ..report import AuditRow

SOURCE = "plateaus"
ORIGIN = "Chapter 7, section 2 (A plateau detector) (dead < 1e-3 of the largest, weak < 0.2, explode > 1e3, stall < 2 %)"
FIX = "fix the dead or flat term (its constants, its differentiability) or the output head; see the detector's flags"


def run(ctx):
    d = ctx.data
    steps = [0.0, 0.3, 0.6, 0.9] if ctx.quick else [0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9]
    values, norms = [], []
    for s in steps:
        p = ((1 - s) * d.low + s * d.target).clamp(0, 1)
        ev = ctx.loss.evaluate(p, d.target, d.low, wrt="pred")
        if not ev.ok:
            ctx.add(AuditRow("gradient along low -> target", SOURCE, None, "fail", "", ORIGIN, FIX, "07",
                             f"at s = {s:g} on the path: {ev.problem}"))
            return
        values.append(ev.total)
        norms.append(grad_norm(ev.grads.get("total")))
    top = max(norms)
    low_frac = min(norms) / top if top > 0 else 0.0
    rises = [(steps[i + 1], values[i + 1] - values[i]) for i in range(len(values) - 1) if values[i + 1] > values[i]]
    rng = max(values) - min(values)
    bumps = [s for s, r in rises if r > 0.01 * rng]
    if low_frac < 1e-3 or not values[-1] < values[0]:
        verdict = "fail"
    elif bumps or low_frac < 0.02:
        verdict = "warn"
    else:
        verdict = "pass"
    ctx.add(AuditRow("gradient along low -> target", SOURCE, low_frac, verdict,
                     "fail: smallest/largest gradient < 1e-3 or no descent; warn: < 0.02 or a rise", ORIGIN, FIX, "07",
                     f"loss {values[0]:.3g} -> {values[-1]:.3g}; gradient norm from {min(norms):.3g} to {top:.3g}"
                     + (f"; the loss rises towards s = {', '.join(f'{b:g}' for b in bumps)}" if bumps else "")))
    if ctx.model is not None:
        _train(ctx)


def detect(h, *, dead_rel=1e-3, weak_rel=0.2, min_improvement=0.02, explode=1e3) -> list:
    """Chapter 7's plateau detector on a :class:`~lowlight_course.train.History`: a list of flags."""
    flags = []
    med = {k: statistics.median(v) for k, v in h.grad_norms.items() if v}
    top = max(med.values()) if med else 0.0
    for k, v in h.grad_norms.items():
        if not v:
            continue
        if all(g == 0.0 for g in v):
            flags.append(f"dead term '{k}': gradient norm exactly 0")
        elif len(med) > 1 and med[k] < dead_rel * top:
            flags.append(f"dead term '{k}': gradient {med[k] / top:.1e} of the largest")
        elif len(med) > 1 and med[k] < weak_rel * top:
            flags.append(f"weak term '{k}': gradient {med[k] / top:.2f} of the largest")
    total = list(h.grad_norm_total)
    if total:
        tiny = [s for s, g in zip(h.grad_norm_steps, total) if g < dead_rel * max(total)]
        if tiny:
            flags.append(f"vanishing gradient at {len(tiny)}/{len(total)} measurements (from step {tiny[0]})")
        if total[0] > 0 and max(total) > explode * total[0]:
            flags.append(f"exploding gradient: {max(total) / total[0]:.0e} x its initial norm")
    n = len(h.loss)
    if n >= 4:
        w = max(1, n // 8)
        mid = sum(h.loss[n // 2:n // 2 + w]) / w
        end = sum(h.loss[-w:]) / w
        improvement = 1 - end / mid if mid else 0.0
        if improvement < min_improvement:
            flags.append(f"stalled: loss improved {improvement:.1%} over the last half")
    return flags


def _train(ctx):
    from ...train import fit

    d, loss = ctx.data, ctx.loss
    fn, arity = loss.fn, loss.arity
    loss3 = fn if arity == 3 else (lambda pred, target, low: fn(pred, target))
    model = copy.deepcopy(ctx.model)
    steps = 6 if ctx.quick else 16
    low, high = d.low[..., :32, :32], d.target[..., :32, :32]  # 32 x 32 crops: a few seconds on one thread
    remaining = max(0.5, loss.deadline - time.monotonic()) if loss.deadline is not None else 60.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same numbers on every machine, and no fight for a loaded CPU
    try:
        r = run_guarded(fit, model, loss3, (low, high), steps=steps, batch_size=len(low), lr=1e-3,
                        device="cpu", progress=False, grad_norm_every=1, seed=d.seed, timeout=remaining)
    finally:
        torch.set_num_threads(threads)
    if r.kind != "returned":
        ctx.add(AuditRow("short training", SOURCE, None, "fail", "", ORIGIN, FIX, "07",
                         f"{steps} fit steps with the model (32 x 32 crops, one thread): {r.problem('training')}"))
        return
    h = r.value
    flags = detect(h)
    hard = [f for f in flags if f.startswith(("dead", "vanishing", "exploding"))]
    verdict = "fail" if hard else "warn" if flags else "pass"
    gain = 1 - h.loss[-1] / h.loss[0] if h.loss and h.loss[0] else 0.0
    ctx.add(AuditRow("short training", SOURCE, gain, verdict, "fail: dead / vanishing / exploding; warn: weak / stalled",
                     ORIGIN, FIX, "07", f"{steps} Adam steps: loss fell by {gain:.1%}; flags: "
                     + ("; ".join(flags) if flags else "none")))
