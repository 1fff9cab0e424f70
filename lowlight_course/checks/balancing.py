"""Checks for exercise 04: balancing a weighted loss by its gradients. See :mod:`lowlight_course.checks`.

- :func:`check_balanced_weights`: the build, ``balanced_weights(terms, pred, target, shares=None)``;
- :func:`check_prediction`: a "predict, then run" answer against a measured number or choice (used
  by exercises 04-07);
- :func:`check_share_prediction`: exercise 04's prediction (the article's gradient shares);
- :func:`check_weight_choice`: exercise 04's open task (weights reaching a PSNR and a colour error
  together in a fixed short training run).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch

from ._core import CheckResult, Mistake, _Fail, _call, _run, _scalar

__all__ = ["check_balanced_weights", "reference_balanced_weights", "check_prediction", "check_share_prediction",
           "measured_article_shares", "check_weight_choice", "weight_choice_metrics", "WEIGHT_TARGETS"]

REREAD_04 = "Lecture 4, section 2 (what a gradient share is) and section 5 (balancing strategies)"


# ---------------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------------
def _grad_norms(terms, pred, target):
    """``{name: |d L_i / d pred|}`` (0.0 for a term without a gradient path), on a detached copy."""
    p = pred.detach().clone().requires_grad_(True)
    norms = {}
    for name, fn in terms.items():
        v = fn(p, target)
        if not isinstance(v, torch.Tensor) or not v.requires_grad:
            norms[name] = 0.0
            continue
        (g,) = torch.autograd.grad(v, p, allow_unused=True)
        norms[name] = 0.0 if g is None else float(g.norm())
    return norms


def _check_shares(terms, shares):
    if shares is None:
        return {k: 1.0 for k in terms}
    if not isinstance(shares, dict) or set(shares) != set(terms):
        got = sorted(shares) if isinstance(shares, dict) else type(shares).__name__
        raise ValueError(f"shares must be a dict with the keys of terms {sorted(terms)}, got {got}; "
                         f"pass shares=None for equal shares.")
    out = {k: float(v) for k, v in shares.items()}
    if any(not math.isfinite(v) or v < 0 for v in out.values()) or sum(out.values()) <= 0:
        raise ValueError(f"shares must be finite, >= 0 and not all 0, got {shares}.")
    return out


def reference_balanced_weights(terms: dict, pred: torch.Tensor, target: torch.Tensor, shares: dict | None = None) -> dict:
    """Reference for exercise 04: weights that give each live term its share of the gradient.

    With ``g_i = |d L_i / d pred|`` and the total budget ``G = sum over live terms of g_i``,
    ``w_i = s_i G / g_i`` where ``s_i`` are ``shares`` renormalised over the live terms (equal when
    ``None``): each weighted term's gradient norm is then ``s_i G`` and the total is unchanged.
    A term without a gradient (``g_i = 0``, e.g. ``torch.histc``) keeps weight 1.0: no weight revives
    it. With equal shares this equals :class:`~lowlight_course.losses.WeightedLoss` with
    ``balance="gradnorm"`` (a closed-form GradNorm, Chen et al. 2018).

    Args:
        terms: ``{name: loss_fn(pred, target) -> scalar tensor}``.
        pred, target: (B, C, H, W) tensors.
        shares: ``{name: s_i >= 0}`` with the keys of ``terms``, or ``None``.
    Returns:
        ``{name: float weight}``.
    """
    s = _check_shares(terms, shares)
    g = _grad_norms(terms, pred, target)
    live = [k for k in terms if g[k] > 0]
    total_s = sum(s[k] for k in live)
    budget = sum(g[k] for k in live)
    if total_s <= 0:
        return {k: 1.0 for k in terms}
    return {k: (s[k] / total_s * budget / g[k] if g[k] > 0 else 1.0) for k in terms}


def _sample_terms(dead: bool = False):
    from ..losses import HistogramLoss, mse, ssim

    hist = HistogramLoss(bins=16)
    terms = {"mse": lambda p, t: mse(p, t), "ssim": lambda p, t: 1 - ssim(p, t), "hist": lambda p, t: hist(p, t)}
    if dead:
        from ..pitfalls import histogram_loss_histc

        terms["histc"] = lambda p, t: histogram_loss_histc(p, t)
    return terms


def _values(terms, pred, target):
    with torch.no_grad():
        return {k: float(fn(pred, target)) for k, fn in terms.items()}


def _shares_or_equal(terms, shares):
    return _check_shares(terms, shares)


# Known-wrong variants (same signature as the learner's function), for the diagnosis.
def _w_equal(terms, pred, target, shares=None):
    return {k: 1.0 for k in terms}


def _w_inverse_value(terms, pred, target, shares=None):
    s = _shares_or_equal(terms, shares)
    v = _values(terms, pred, target)
    return {k: (s[k] / v[k] if v[k] > 0 else 1.0) for k in terms}


def _w_inverse_grad(terms, pred, target, shares=None):
    s = _shares_or_equal(terms, shares)
    g = _grad_norms(terms, pred, target)
    return {k: (s[k] / g[k] if g[k] > 0 else 1.0) for k in terms}


def _w_proportional(terms, pred, target, shares=None):
    g = _grad_norms(terms, pred, target)
    return {k: (g[k] if g[k] > 0 else 1.0) for k in terms}


def _w_shares_ignored(terms, pred, target, shares=None):
    return reference_balanced_weights(terms, pred, target, None)


def _w_dead_share_kept(terms, pred, target, shares=None):
    s = _shares_or_equal(terms, shares)
    g = _grad_norms(terms, pred, target)
    total_s = sum(s.values())
    budget = sum(g.values())
    return {k: (s[k] / total_s * budget / g[k] if g[k] > 0 else 1.0) for k in terms}


def _w_sum_to_one(terms, pred, target, shares=None):
    w = reference_balanced_weights(terms, pred, target, shares)
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def _w_value_shares(terms, pred, target, shares=None):
    s = _shares_or_equal(terms, shares)
    v = _values(terms, pred, target)
    live = [k for k in terms if _grad_norms(terms, pred, target)[k] > 0]
    total = sum(v[k] for k in live)
    ts = sum(s[k] for k in live) or 1.0
    return {k: (s[k] / ts * total / v[k] if k in live and v[k] > 0 else 1.0) for k in terms}


BALANCE_MISTAKES = (
    Mistake("equal weights", "every weight is 1, so each term pulls with its raw gradient norm, which differ by "
            "orders of magnitude.", REREAD_04, fn=_w_equal),
    Mistake("normalised by the loss values (1 / L_i)", "dividing by a term's value equalises the values, not the "
            "gradients: a small term with a steep gradient still dominates.", REREAD_04, fn=_w_inverse_value),
    Mistake("1 / g_i without rescaling", "the shares are right but the total gradient shrinks or grows with the "
            "scale of the gradients, which changes the effective learning rate.", REREAD_04, fn=_w_inverse_grad),
    Mistake("weights proportional to g_i", "this makes the strongest term stronger: the inverse of balancing.",
            REREAD_04, fn=_w_proportional),
    Mistake("shares ignored", "the weights equalise the terms whatever shares asks for.", REREAD_04,
            fn=_w_shares_ignored),
    Mistake("the dead term's share kept in the budget", "a term without a gradient cannot take a share; spreading "
            "its share over nothing loses part of the total gradient. Renormalise the shares over the live terms.",
            REREAD_04, fn=_w_dead_share_kept),
    Mistake("weights rescaled to sum to 1", "the shares are right but the total gradient is no longer the "
            "unweighted one.", REREAD_04, fn=_w_sum_to_one),
    Mistake("shares of the values instead of the gradients", "the weighted values get the shares, but what moves "
            "the model is the gradient.", REREAD_04, fn=_w_value_shares),
)


def check_balanced_weights(balanced_weights: Callable, verbose: bool = True) -> CheckResult:
    """Check ``balanced_weights(terms, pred, target, shares=None) -> {name: weight}``.

    ``terms`` maps names to ``loss_fn(pred, target) -> scalar``. The weights must be plain numbers
    (or tensors without gradient) such that each live term's weighted gradient norm with respect to
    ``pred`` has the share asked for (``shares``, renormalised over the live terms; equal when
    ``None``), within 0.02, and the summed gradient norm is unchanged (within 2 %); a term without
    gradient keeps weight 1.0. Diagnoses :data:`BALANCE_MISTAKES` (equal weights, 1 / L_i, 1 / g_i
    unscaled, proportional to g_i, shares ignored, the dead term's share kept, weights summing to 1,
    value shares), weights that carry gradients and an infinite weight for a dead term."""

    def get(terms, pred, target, shares):
        kw = {} if shares is None else {"shares": dict(shares)}
        out = _call(balanced_weights, terms, pred, target, **kw)
        if not isinstance(out, dict):
            raise _Fail(f"returned {type(out).__name__}, expected a dict name -> weight.")
        if set(out) != set(terms):
            raise _Fail(f"returned the keys {sorted(out)}, expected {sorted(terms)}.")
        weights = {}
        for k, v in out.items():
            if isinstance(v, torch.Tensor) and v.requires_grad:
                raise _Fail(f"the weight of {k!r} carries a gradient: make it a plain number, or the optimiser "
                            f"will also change the weights.", mistake="weights that carry gradients")
            w = _scalar(v, f"the weight of {k!r}")
            if not math.isfinite(w) or w < 0:
                raise _Fail(f"the weight of {k!r} is {w}: weights must be finite and >= 0 (a term without "
                            f"gradient has g = 0: do not divide by it).",
                            mistake="division by zero for a term without gradient")
            weights[k] = w
        return weights

    def sample(name="astronaut"):
        from ..pitfalls import sample_pair

        return sample_pair(name, 48)

    def shares_case(dead=False, shares=None, photo="astronaut"):
        def case():
            pred, target = sample(photo)
            terms = _sample_terms(dead)
            w = get(terms, pred, target, shares)
            g = _grad_norms(terms, pred, target)
            live = [k for k in terms if g[k] > 0]
            s = _check_shares(terms, shares)
            want = {k: s[k] / sum(s[j] for j in live) for k in live}
            weighted = {k: w[k] * g[k] for k in live}
            total = sum(weighted.values())
            if total <= 0:
                raise _Fail("all weighted gradient norms are 0.")
            got = {k: weighted[k] / total for k in live}
            if any(abs(got[k] - want[k]) > 0.02 for k in live):
                raise _Fail(f"gradient shares {({k: round(v, 3) for k, v in got.items()})}, expected "
                            f"{({k: round(v, 3) for k, v in want.items()})}.")
            budget = sum(g[k] for k in live)
            if abs(total - budget) > 0.02 * budget:
                raise _Fail(f"the weighted gradient norms sum to {total:.4g}, expected the unweighted sum "
                            f"{budget:.4g}: the total gradient must stay as it was.")
            for k in terms:
                if g[k] == 0 and abs(w[k] - 1.0) > 1e-6:
                    raise _Fail(f"the term {k!r} has no gradient, so no weight can change it: leave it at 1.0 "
                                f"(got {w[k]:.4g}).")
        return case

    def untouched():
        pred, target = sample()
        get(_sample_terms(), pred, target, None)
        if pred.requires_grad or pred.grad is not None:
            raise _Fail("pred now requires grad or holds .grad: measure on a detached copy of pred.",
                        mistake="modifies its input in place")

    uneven = {"mse": 0.5, "ssim": 0.2, "hist": 0.3}
    return _run("check_balanced_weights", balanced_weights, [
        ("MSE, 1 - SSIM and histogram get equal gradient shares", shares_case(),
         "measure each term's gradient norm at the prediction; the update is weight x gradient"),
        ("shares 0.5 / 0.2 / 0.3 as asked", shares_case(shares=uneven),
         "a term's weighted gradient norm should be its share of the total budget"),
        ("the same on another photograph", shares_case(shares=uneven, photo="coffee"),
         "nothing may depend on one particular image"),
        ("a dead term (torch.histc) does not break the others", shares_case(True, {**uneven, "histc": 0.25}),
         "a term without a gradient path takes no share and keeps weight 1"),
        ("pred is left untouched", untouched, "work on a detached copy of pred"),
    ], verbose, mistakes=BALANCE_MISTAKES, reference=reference_balanced_weights, reread=REREAD_04)


# ---------------------------------------------------------------------------------------------
# "predict, then run"
# ---------------------------------------------------------------------------------------------
def check_prediction(name: str, answer: Callable, truth, *, tol: float | dict | None = None, explain: str = "",
                     choices=None, verbose: bool = True) -> CheckResult:
    """Check a "predict, then run" answer: ``answer()`` (the learner's function returning the
    prediction) against ``truth``, the measured value.

    ``truth`` is a number (passes within ``tol``, absolute), a string (one of ``choices``; equal,
    case-insensitive), or a dict of them (each key within ``tol`` or ``tol[key]``). The verdict
    always shows the measured value and ``explain`` (why it comes out so), right or wrong.
    """

    def norm(v):
        return v.strip().lower() if isinstance(v, str) else v

    def compare(got, want, key="the answer"):
        t = tol.get(key, 0.0) if isinstance(tol, dict) else (tol or 0.0)
        if isinstance(want, str):
            if not isinstance(got, str):
                raise _Fail(f"{key}: expected one of {list(choices) if choices else [want]}, got {got!r}.")
            if choices and norm(got) not in [norm(c) for c in choices]:
                raise _Fail(f"{key}: {got!r} is not one of {list(choices)}.")
            if norm(got) != norm(want):
                raise _Fail(f"{key}: you predicted {got!r}; the measurement says {want!r}.")
            return
        g = _scalar(got, key)
        if not abs(g - float(want)) <= t:
            raise _Fail(f"{key}: you predicted {g:.4g}; measured {float(want):.4g} (within {t:g} counts).")

    def case():
        got = _call(answer, what="your prediction")
        if isinstance(truth, dict):
            if not isinstance(got, dict) or set(got) != set(truth):
                raise _Fail(f"expected a dict with the keys {sorted(truth)}, got "
                            f"{sorted(got) if isinstance(got, dict) else type(got).__name__}.")
            for k in truth:
                compare(got[k], truth[k], repr(k))
        else:
            compare(got, truth)

    shown = ({k: (round(v, 3) if isinstance(v, float) else v) for k, v in truth.items()} if isinstance(truth, dict)
             else round(truth, 4) if isinstance(truth, float) else truth)
    result = _run(name, answer, [(f"your prediction against the measurement {shown}", case, "")], False)
    if result.implemented:
        result.message += "\n" + (f"Why: {explain}" if explain else "")
    if verbose:
        print(result.message)
    return result


@functools.lru_cache(maxsize=None)
def _article_shares_cached():
    from ..losses import WeightedLoss
    from ..pitfalls import histogram_loss_histc, sample_pair

    pred, target = sample_pair("astronaut", 48)
    terms = _sample_terms(dead=True)
    loss = WeightedLoss({"mse": (terms["mse"], 0.3), "ssim": (terms["ssim"], 0.3),
                         "histc": (lambda p, t: histogram_loss_histc(p, t), 0.4)}, warn_dead=False)
    return tuple((r["name"], float(r["grad_share"])) for r in loss.report(pred, target))


def measured_article_shares() -> dict:
    """Gradient shares at the prediction of the article's ``0.3 MSE + 0.3 (1 - SSIM) + 0.4 histc`` on
    the course's astronaut pair (48 px): ``{"mse": ., "ssim": ., "histc": .}``."""
    return dict(_article_shares_cached())


def check_share_prediction(predict: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 04's prediction: ``predict() -> {"mse": share, "ssim": share, "histc": share}`` for the
    article's weights, each within 0.15 of the measured gradient share."""
    return check_prediction(
        "check_share_prediction", predict, measured_article_shares(), tol=0.15, verbose=verbose,
        explain="a term's pull is its weight times its gradient norm. torch.histc has no gradient, so its 0.4 "
                "buys nothing; 1 - SSIM's gradient at a dark prediction is many times MSE's, so with the same "
                "weight SSIM takes almost all of the update (Lecture 4, section 2).")


# ---------------------------------------------------------------------------------------------
# open task: weights that reach two targets at once
# ---------------------------------------------------------------------------------------------
#: exercise 04's targets, reached together after the fixed 80-step run of :func:`weight_choice_metrics`.
WEIGHT_TARGETS = {"PSNR": 15.9, "dE": 23.2}


@functools.lru_cache(maxsize=16)
def _weight_run(w_mse: float, w_ssim: float, w_hist: float):
    from .. import data as D
    from .. import metrics as M
    from ..losses import HistogramLoss, SSIMLoss, WeightedLoss, mse
    from ..models import UNet, seed_everything
    from ..train import fit, predict

    low, high = D.make_pairs(16, 32, "outdoor_daylight", seed=0)
    val_low, val_high = D.make_pairs(8, 32, "outdoor_daylight", seed=1000)
    terms = {"mse": (mse, w_mse), "ssim": (SSIMLoss(), w_ssim), "hist": (HistogramLoss(bins=16), w_hist)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same numbers whatever the machine's thread count (and no oversubscription)
    try:
        seed_everything(0)
        model = UNet(base=8, depth=2)
        fit(model, WeightedLoss(terms, warn_dead=False), (low, high), steps=80, batch_size=8, lr=2e-3, seed=0,
            grad_norm_every=0, progress=False, device="cpu", on_interrupt="raise")  # cached: never keep a half run
        out = predict(model, val_low).clamp(0, 1)
        return float(M.psnr(out, val_high)), float(M.delta_e(out, val_high).mean())
    finally:
        torch.set_num_threads(threads)


def weight_choice_metrics(weights: dict) -> dict:
    """Train the exercise's fixed run (UNet(base=8, depth=2), 16 daylight pairs of 32 px, 80 steps of
    Adam at 2e-3, seed 0, on the CPU) with ``weights`` for ``mse``, ``ssim`` (1 - SSIM) and ``hist``
    (16-bin soft histogram) and return ``{"PSNR": dB, "dE": mean CIE76 Delta E}`` on 8 held-out pairs.
    Trained on one CPU thread, so the numbers are the same whatever the machine's thread count; a few
    seconds per call (cached per weights)."""
    if not isinstance(weights, dict) or set(weights) != {"mse", "ssim", "hist"}:
        raise ValueError(f"weights must be a dict with the keys 'mse', 'ssim', 'hist', got {weights!r}.")
    w = {k: float(v) for k, v in weights.items()}
    if any(not math.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights!r}.")
    psnr, de = _weight_run(round(w["mse"], 6), round(w["ssim"], 6), round(w["hist"], 6))
    return {"PSNR": psnr, "dE": de}


def check_weight_choice(weights, verbose: bool = True) -> CheckResult:
    """Exercise 04's open task: ``weights`` (a dict for mse/ssim/hist, or a function returning one)
    must reach PSNR >= ``WEIGHT_TARGETS["PSNR"]`` and Delta E <= ``WEIGHT_TARGETS["dE"]`` together
    in :func:`weight_choice_metrics`' run (the article's 0.3 / 0.3 / 0.4 does not)."""
    fn = weights if callable(weights) else (lambda: weights)

    def case():
        w = _call(fn, what="your weights")
        try:
            m = weight_choice_metrics(w)
        except ValueError as exc:
            raise _Fail(str(exc)) from None
        misses = []
        if m["PSNR"] < WEIGHT_TARGETS["PSNR"]:
            misses.append(f"PSNR {m['PSNR']:.2f} dB < {WEIGHT_TARGETS['PSNR']}")
        if m["dE"] > WEIGHT_TARGETS["dE"]:
            misses.append(f"Delta E {m['dE']:.2f} > {WEIGHT_TARGETS['dE']}")
        if misses:
            raise _Fail(f"with {w}: " + "; ".join(misses) + ". Look at the sweep: which term moves which metric?")

    return _run("check_weight_choice", fn, [
        (f"PSNR >= {WEIGHT_TARGETS['PSNR']} dB and Delta E <= {WEIGHT_TARGETS['dE']} together", case, ""),
    ], verbose, timeout=120.0)
