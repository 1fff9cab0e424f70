"""The audit itself: :func:`audit` runs the call-contract probe, then every probe module, each under its own
time limit, and collects an :class:`~lowlight_course.audit.report.AuditReport`."""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from .adapt import AuditUsageError, LossAdapter
from .context import Context
from .probe_data import FULL, QUICK, probe_data
from .probes import PROBES, call
from .report import AuditReport, AuditRow

__all__ = ["audit"]


def _check_seconds(name, value, default):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}: use {default}.")
    return float(value)


def audit(loss_fn, model: nn.Module | None = None, *, quick: bool = False, seed: int = 0,
          probe_timeout: float = 20.0, call_timeout: float = 10.0, probes=None, name: str | None = None) -> AuditReport:
    """Audit ``loss_fn`` on the course's four error sources; return an :class:`AuditReport`.

    Args:
        loss_fn: a function or ``nn.Module`` called as ``loss(pred, target)`` or ``loss(pred, target, low)``
            (decided from its signature: three required positional arguments mean ``low`` is passed),
            returning a scalar tensor or a mapping ``{name: weighted term}`` (total = sum).
        model: optional ``nn.Module`` mapping a low-light batch (B, 3, H, W) to an enhanced one: adds the
            gradient shares at its parameters and a short ``fit`` run with Chapter 7's detector (a copy is
            trained; ``model`` itself is not changed).
        quick: the quick audit (48 x 48, one photo, fewer cases): about a second for a cheap loss.
        seed: seed of the probe data (photos under simulated low light, noise, random pairs).
        probe_timeout: seconds each probe may take in all (its calls of the loss included).
        call_timeout: seconds one call of the loss (forward and backward) may take.
        probes: names of the error sources to run (default: all of them, see ``PROBES``).
        name: how the report names the loss.

    Returns:
        An :class:`AuditReport`; ``report.passed`` is False when any probe failed.

    Raises:
        AuditUsageError (a TypeError): ``loss_fn`` is not callable, is a class, or takes neither 2 nor 3
            tensors; ``model`` is not an ``nn.Module``. ValueError: bad ``seed``, limits or probe names.

    Example:
        >>> from lowlight_course import audit
        >>> from lowlight_course.losses import mse
        >>> report = audit(mse, quick=True)
        >>> report["equal-MSE spread"].verdict      # MSE cannot tell a mean shift from noise
        'fail'
    """
    t0 = time.perf_counter()
    adapter = LossAdapter(loss_fn, call_timeout=_check_seconds("call_timeout", call_timeout, 10), name=name)
    probe_timeout = _check_seconds("probe_timeout", probe_timeout, 20)
    if model is not None and not isinstance(model, nn.Module):
        raise AuditUsageError(f"model must be an nn.Module (or None), got {type(model).__name__}: pass an instance, "
                              f"e.g. model=UNet().")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}: use 0.")
    if probes is None:
        selected = list(PROBES)
    else:
        if isinstance(probes, str):
            probes = [probes]
        unknown = [p for p in probes if p not in PROBES]
        if unknown:
            raise ValueError(f"unknown probe(s) {unknown}: choose from {list(PROBES)}.")
        selected = [p for p in PROBES if p in probes]
    data = probe_data(quick=quick, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter.deadline = time.monotonic() + probe_timeout
        first = adapter.evaluate(data.pred, data.target, data.low, wrt=None)
        baseline = adapter.evaluate(data.pred, data.target, data.low, wrt="pred") if first.ok else first
        identical = adapter.evaluate(data.target, data.target, data.low, wrt=None) if baseline.ok else baseline
        ctx = Context(adapter, data, quick, model, baseline, identical)
        runnable = call.run(ctx, first)
        if runnable and not identical.ok:
            ctx.add(AuditRow("call on identical images", "call contract", None, "fail", "returns a finite scalar tensor",
                             "docs/CONTRACTS.md (losses)", "accept pred == target (the minimum)", "01", identical.problem))
            runnable = False
        for source in selected:
            if not runnable:
                ctx.add(AuditRow("(all probes)", source, None, "skip", detail="not run: the loss failed the call contract"))
                continue
            adapter.deadline = time.monotonic() + probe_timeout
            try:
                PROBES[source].run(ctx)
            except Exception as exc:  # a probe's own bug must not hide the others' results
                ctx.add(AuditRow("(probe error)", source, None, "fail",
                                 detail=f"the probe could not finish: {type(exc).__name__}: {exc}"))
    cfg = QUICK if quick else FULL
    report = AuditReport(ctx.rows, loss_name=adapter.name, elapsed=time.perf_counter() - t0, quick=quick, seed=seed,
                         settings={"image_size": cfg["size"], "photos": list(cfg["photos"]), "probe_timeout_s": probe_timeout,
                                   "call_timeout_s": adapter.call_timeout, "calls": adapter.calls,
                                   "model": type(model).__name__ if model is not None else None})
    return report
