"""Check for exercise 04: balancing a weighted loss by gradient norms. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import CheckResult, _Fail, _call, _run, _scalar

__all__ = ['check_balanced_weights', 'reference_balanced_weights']


# ---------------------------------------------------------------------------------------------
# 04: balancing a weighted loss by gradient norms
# ---------------------------------------------------------------------------------------------
def reference_balanced_weights(terms: dict, pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Reference for exercise 04: ``w_i = mean_j(g_j) / g_i``, ``g_i = |d L_i / d pred|``.

    Every weighted term then has the same gradient norm (the mean of the terms'), so each gets an
    equal share of the update and the total gradient budget ``sum_i g_i`` is kept. Terms with no
    gradient keep weight 1.0 (they cannot be balanced; see ``WeightedLoss.report``). Equal to
    :class:`lowlight_course.losses.WeightedLoss` with ``balance="gradnorm"`` and equal weights.
    """
    from ..losses import WeightedLoss

    loss = WeightedLoss({name: (fn, 1.0) for name, fn in terms.items()}, balance="gradnorm", warn_dead=False)
    return {row["name"]: row["effective_weight"] for row in loss.report(pred, target)}


def _grad_norms(terms, pred, target):
    p = pred.detach().clone().requires_grad_(True)
    norms = {}
    for name, fn in terms.items():
        v = fn(p, target)
        if not v.requires_grad:
            norms[name] = 0.0
            continue
        (g,) = torch.autograd.grad(v, p, allow_unused=True)
        norms[name] = 0.0 if g is None else float(g.norm())
    return norms


def _sample_terms(dead: bool = False):
    from ..losses import HistogramLoss, mse, ssim

    hist = HistogramLoss(bins=16)
    terms = {"mse": lambda p, t: mse(p, t), "ssim": lambda p, t: 1 - ssim(p, t), "hist": lambda p, t: hist(p, t)}
    if dead:
        from ..pitfalls import histogram_loss_histc

        terms["histc"] = lambda p, t: histogram_loss_histc(p, t)
    return terms


def check_balanced_weights(balanced_weights: Callable, verbose: bool = True) -> CheckResult:
    """Check ``balanced_weights(terms, pred, target) -> {name: weight}`` (gradient-norm balancing).

    ``terms`` maps names to ``loss_fn(pred, target) -> scalar``. The weights must be plain numbers
    (or tensors without gradient) such that every weighted term has the same gradient norm with
    respect to ``pred`` (shares within 1/n +- 0.02) and the summed gradient norm is unchanged
    (within 2 %). Rejects equal weights, weights ``1 / L_i`` (initial-value normalisation),
    ``1 / g_i`` without rescaling, weights ``g_i`` (inverted), weights that carry gradients, and a
    division by zero for a term with no gradient."""

    def get(terms, pred, target):
        out = _call(balanced_weights, terms, pred, target)
        if not isinstance(out, dict):
            raise _Fail(f"returned {type(out).__name__}, expected a dict name -> weight.")
        if set(out) != set(terms):
            raise _Fail(f"returned the keys {sorted(out)}, expected {sorted(terms)}.")
        weights = {}
        for k, v in out.items():
            if isinstance(v, torch.Tensor) and v.requires_grad:
                raise _Fail(f"the weight of {k!r} carries a gradient: detach it (float(...) or "
                            f".detach()), or the optimiser will also shrink the weights.")
            w = _scalar(v, f"the weight of {k!r}")
            if not math.isfinite(w) or w < 0:
                raise _Fail(f"the weight of {k!r} is {w}: weights must be finite and >= 0.")
            weights[k] = w
        return weights

    def sample():
        from ..pitfalls import sample_pair

        return sample_pair("astronaut", 48)

    def shares(dead=False):
        def case():
            pred, target = sample()
            terms = _sample_terms(dead)
            w = get(terms, pred, target)
            g = _grad_norms(terms, pred, target)
            live = [k for k in terms if g[k] > 0]
            weighted = {k: w[k] * g[k] for k in live}
            total = sum(weighted.values())
            if total <= 0:
                raise _Fail("all weighted gradient norms are 0.")
            share = {k: weighted[k] / total for k in live}
            bad = {k: round(s, 3) for k, s in share.items() if abs(s - 1 / len(live)) > 0.02}
            if bad:
                raise _Fail(f"gradient shares {({k: round(s, 3) for k, s in share.items()})}, "
                            f"expected {1 / len(live):.3f} each.")
            budget = sum(g[k] for k in live)
            if abs(total - budget) > 0.02 * budget:
                raise _Fail(f"the weighted gradient norms sum to {total:.4g}, expected the unweighted "
                            f"sum {budget:.4g}: scale the weights so the total gradient is kept.")
        return case

    def no_side_effects():
        pred, target = sample()
        before = pred.clone()
        get(_sample_terms(), pred, target)
        if not torch.equal(pred, before) or pred.requires_grad or pred.grad is not None:
            raise _Fail("pred was modified (values, requires_grad or .grad): work on "
                        "pred.detach().clone().requires_grad_(True).")

    return _run("check_balanced_weights", balanced_weights, [
        ("MSE, 1 - SSIM and histogram get equal gradient shares", shares(False),
         "measure g_i = |d L_i / d pred| with torch.autograd.grad, then w_i = mean(g) / g_i"),
        ("a dead term (torch.histc) does not break the others", shares(True),
         "a term whose value has no grad_fn has g = 0: leave its weight at 1.0 (do not divide by 0)"),
        ("pred is left untouched", no_side_effects, "work on a detached copy of pred"),
    ], verbose)
