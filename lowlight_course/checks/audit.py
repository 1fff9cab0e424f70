"""Checks for exercise 08 (the loss auditor): a prediction, and a loss designed for a stated goal.

* :func:`check_audit_prediction`: which error source fails first for a soft-histogram-only loss
  (:class:`lowlight_course.losses.HistogramLoss`)? The measurement: spatial blindness, the only failed probe.
* :func:`check_goal_loss`: the open task. Goal: a loss that returns a mapping of at least two terms, fails no
  probe of the quick audit, and sees colour (a colour cast at equal MSE costs at least 1.1 times a mean shift).
  The verdict names the failed probes with the fix the report gives; the known mistakes (one scalar, SSIM with
  ``data_range=255``, a term without gradient, no colour term) are named from the report's rows.

Both never raise and never hang: the learner's loss is called through the guarded runner, and the audit runs
under its own time limit.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

from ..guarded import run_guarded
from ._core import CheckResult, _call, _Fail, _photo_pair, _run, check_answer

__all__ = ["check_audit_prediction", "check_goal_loss", "reference_goal_loss", "AUDIT_PREDICTION", "GOAL"]

#: the measured answer to the prediction (Chapter 8, section 1; the audit of HistogramLoss()).
AUDIT_PREDICTION = "spatial blindness"
GOAL = ("a mapping of at least two terms; no failed probe in audit(loss, quick=True); a colour cast at equal MSE "
        "costs at least 1.1 x a mean shift")
_AUDIT_TIMEOUT = 90.0
_REREAD = "Lecture 8, section 4 (Bring your own loss)"
_REREAD_SHUFFLE = "Lecture 3, section 4 (A histogram is blind to where tones are)"
_REREAD_SCALAR = "Lecture 8, section 2 (The article's three losses)"

# error source of a failed row -> (mistake name, why)
_MISTAKES = {
    "scale and range": ("constants for the wrong data range", "a term barely separates unrelated images, or its "
                        "gradient on [0, 1] images is flattened: SSIM needs data_range=1.0 here (Lecture 2)."),
    "gradient liveness": ("a term without gradient", "a term has no autograd path to pred (.detach(), .item(), "
                          "torch.histc, rounding) or a NaN gradient: it is dead weight (Lectures 3 and 7)."),
    "weight imbalance": ("dead weight", "a term holds part of the value but none of the gradient (Lecture 4)."),
    "spatial blindness": ("blind to position", "a scrambled target scores as well as the photo pair: the loss "
                          "needs a spatial term (Lecture 3)."),
}


def _chroma(x):
    return x - x.mean(dim=1, keepdim=True)


def reference_goal_loss(pred, target):
    """Reference for exercise 08: ``{"l1": 0.16 L1, "ssim": 0.84 (1 - SSIM), "colour": L1 of the chroma}``."""
    from ..losses import l1, ssim

    return {"l1": 0.16 * l1(pred, target), "ssim": 0.84 * (1 - ssim(pred, target)),
            "colour": (_chroma(pred) - _chroma(target)).abs().mean()}


def check_audit_prediction(predict: Callable, verbose: bool = True) -> CheckResult:
    """``predict()`` returns the error source (a string) of the first probe that fails for ``HistogramLoss()``."""
    from ..audit import ERROR_SOURCES

    return check_answer(predict, AUDIT_PREDICTION, name="check_audit_prediction",
                        choices=[s for s in ERROR_SOURCES if s != "call contract"],
                        why="A histogram keeps every tone and forgets where it was: a pixel-shuffled target has the "
                            "same histogram, so the loss scores it 0. Its other probes pass.",
                        reread=_REREAD_SHUFFLE, verbose=verbose)


def check_goal_loss(loss_fn: Callable, verbose: bool = True) -> CheckResult:
    """The open task of exercise 08: ``loss_fn(pred, target) -> {name: weighted term}`` meeting :data:`GOAL`."""
    state = {}

    def returns_terms():
        pred, target = _photo_pair()
        out = _call(loss_fn, pred, target, what="your loss")
        if not isinstance(out, Mapping):
            raise _Fail(f"your loss returned {type(out).__name__}, not a mapping: return {{'name': weighted term, ...}} "
                        f"so the audit can see every term (a dead term inside one scalar is invisible). Reread "
                        f"{_REREAD_SCALAR}.", mistake="returns one scalar")
        if len(out) < 2:
            raise _Fail("your loss has one term; the goal asks for at least two (a fidelity term and a colour term).")

    def no_failed_probe():
        from ..audit import AuditUsageError, audit

        res = run_guarded(audit, loss_fn, quick=True, timeout=_AUDIT_TIMEOUT)
        if res.kind == "raised" and isinstance(res.exception, AuditUsageError):
            raise _Fail(f"the auditor cannot call your loss: {res.exception}")
        if res.kind != "returned":
            raise _Fail(res.problem("the audit of your loss"))
        report = state["report"] = res.value
        if report.failures:
            # each failed row carries its own fix; the known mistakes are named from the rows' error sources
            shown = "; ".join(f"{r.label} ({r.source}): {r.detail} Fix: {r.fix}" for r in report.failures[:3])
            proven = [_MISTAKES[r.source][0] for r in report.failures if r.source in _MISTAKES]
            why = " ".join(dict.fromkeys(_MISTAKES[r.source][1] for r in report.failures if r.source in _MISTAKES))
            raise _Fail(f"{len(report.failures)} probe(s) failed: {shown}" + (f" ({why})" if why else ""),
                        mistake=proven[0] if proven else None)

    def sees_colour():
        report = state.get("report")
        if report is None:
            raise _Fail("the audit did not run (see the case above).")
        row = report["colour cast at equal MSE"]
        if row.measured is None or not row.measured >= 1.1:
            got = "n/a" if row.measured is None else f"{row.measured:.2f}"
            raise _Fail(f"a colour cast costs {got} x a mean shift of the same MSE; the goal is at least 1.1. Add a "
                        f"term that compares colour (for example the images with their per-pixel grey removed) "
                        f"and audit again. Reread {_REREAD}.", mistake="no colour term")

    cases = [("returns a mapping of at least two terms", returns_terms, ""),
             ("the quick audit finds no failed probe", no_failed_probe, "read each failed row's fix"),
             ("it sees colour: a colour cast costs >= 1.1 x a mean shift", sees_colour, "")]
    return _run("check_goal_loss", loss_fn, cases, verbose, reread=_REREAD, timeout=_AUDIT_TIMEOUT)
