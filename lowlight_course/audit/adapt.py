"""Call any loss the way the auditor needs, safely: :class:`LossAdapter`.

A loss may be a function or an ``nn.Module``, called as ``loss(pred, target)`` or
``loss(pred, target, low)``, returning a scalar tensor or a mapping ``name -> scalar tensor`` (the
total is the sum, as :func:`lowlight_course.train.fit` reads it). Every call, and the backward pass
that follows it, runs through :func:`lowlight_course.guarded.run_guarded` with a time limit, so a
loss that raises, loops, sleeps, prints, exits or writes into its inputs comes back as an
:class:`Evaluation` whose ``problem`` says so in one sentence; the caller's tensors are left intact.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..guarded import run_guarded

__all__ = ["LossAdapter", "Evaluation", "AuditUsageError", "loss_name"]


class AuditUsageError(TypeError):
    """The thing given to the auditor is not a loss it can call (raised before any probe runs)."""


def loss_name(fn) -> str:
    """A readable name: ``module.qualname`` for functions, the class name for modules."""
    if isinstance(fn, nn.Module):
        return type(fn).__name__ + "()"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    mod = getattr(fn, "__module__", None)
    return f"{mod}.{name}" if mod and mod not in ("__main__", "builtins") else name


def _arity(fn) -> int:
    """2 or 3: how many positional tensors to pass. Raises :class:`AuditUsageError` when neither fits."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    required_kw = [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    if required_kw:
        raise AuditUsageError(f"{loss_name(fn)} has required keyword-only argument(s) "
                              f"{[p.name for p in required_kw]}: give them defaults, or wrap the loss, e.g. "
                              f"functools.partial(loss, {required_kw[0].name}=...).")
    if len(required) == 3:
        return 3
    if len(required) == 2 or (len(required) < 2 and (varargs or len(positional) >= 2)):
        return 2
    raise AuditUsageError(
        f"{loss_name(fn)} takes {len(required)} required positional argument(s) "
        f"({', '.join(p.name for p in required) or 'none'}); a loss takes (pred, target) or (pred, target, low). "
        f"Wrap it, e.g. lambda pred, target: {getattr(fn, '__name__', 'loss')}(pred, target, ...).")


@dataclass
class Evaluation:
    """One guarded call of the loss (and, if asked, its backward pass).

    Attributes:
        problem: ``None``, or one sentence saying what went wrong (raised, timed out, not a tensor,
            not a scalar, NaN/Inf, changed its inputs in place, ...).
        kind: ``"ok"``, ``"raised"``, ``"timeout"``, ``"exit"``, ``"base_exception"``, ``"inplace"``,
            ``"not_tensor"``, ``"not_scalar"``, ``"nonfinite"``, ``"bad_mapping"``.
        terms: name -> value (float); a scalar loss has the single term ``"total"``.
        total: the sum of the terms.
        grads: name -> gradient w.r.t. the argument asked for (a tensor, a list of tensors for
            model parameters, or ``None`` when the term has no autograd path to it); plus
            ``"total"`` for a mapping.
        no_graph: the terms whose value does not require grad at all (no ``grad_fn``).
        mapping: whether the loss returned a mapping.
        elapsed: seconds the call took.
        exception: the exception, when one was raised.
    """

    problem: str | None = None
    kind: str = "ok"
    terms: dict = field(default_factory=dict)
    total: float = float("nan")
    grads: dict = field(default_factory=dict)
    no_graph: tuple = ()
    mapping: bool = False
    elapsed: float = 0.0
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _normalise(out, who: str):
    """(terms as tensors, mapping?, kind, problem) from what the loss returned."""
    if isinstance(out, Mapping):
        if not out:
            return {}, True, "bad_mapping", f"{who} returned an empty mapping: return at least one term."
        terms = {}
        for k, v in out.items():
            if not isinstance(k, str):
                return {}, True, "bad_mapping", f"{who} returned a mapping with key {k!r}: name every term with a string."
            t, kind, problem = _one_term(v, f"{who}'s term {k!r}")
            if problem:
                return {}, True, kind, problem
            terms[k] = t
        return terms, True, "ok", None
    t, kind, problem = _one_term(out, who)
    return ({"total": t} if t is not None else {}), False, kind, problem


def _one_term(v, who):
    if isinstance(v, bool) or (not isinstance(v, torch.Tensor) and isinstance(v, (int, float)))  \
            or type(v).__module__ == "numpy":
        return None, "not_tensor", (
            f"{who} returned a Python number ({_describe(v)}, {float(v):.4g}) instead of a tensor: no gradient "
            f"can flow through it, so training would not move. Return the tensor itself (drop .item(), float() "
            f"or .numpy()).")
    if not isinstance(v, torch.Tensor):
        return None, "not_tensor", f"{who} returned {_describe(v)}; a loss returns a scalar tensor (or a mapping of them)."
    if v.numel() != 1:
        return None, "not_scalar", (f"{who} returned {_describe(v)} instead of a scalar: reduce it, e.g. "
                                    f"with .mean() (a per-pixel or per-image loss cannot be minimised as one number).")
    if not (v.is_floating_point() or v.is_complex()):
        return None, "not_tensor", f"{who} returned {_describe(v)}: a loss must be a floating-point tensor."
    return v.reshape(()), "ok", None


class LossAdapter:
    """Calls one loss through :func:`run_guarded`; see the module docstring.

    Args:
        loss_fn: the loss (function or ``nn.Module`` instance).
        call_timeout: seconds one call (forward and backward) may take.
        name: how reports name it (default: :func:`loss_name`).

    Raises:
        AuditUsageError: ``loss_fn`` is not callable, is a class, or takes neither 2 nor 3 tensors.
    """

    def __init__(self, loss_fn, *, call_timeout: float = 10.0, name: str | None = None):
        if isinstance(loss_fn, type):
            raise AuditUsageError(f"{loss_fn.__name__} is a class, not a loss: pass an instance, e.g. "
                                  f"audit({loss_fn.__name__}()).")
        if not callable(loss_fn):
            raise AuditUsageError(f"the loss must be callable (a function or an nn.Module), got {_describe(loss_fn)}.")
        if isinstance(call_timeout, bool) or not isinstance(call_timeout, (int, float)) or not call_timeout > 0 \
                or math.isinf(call_timeout):
            raise ValueError(f"call_timeout must be a positive number of seconds, got {call_timeout!r}: use 10.")
        self.fn = loss_fn
        self.arity = _arity(loss_fn)
        self.call_timeout = float(call_timeout)
        self.name = name or loss_name(loss_fn)
        self.deadline: float | None = None  # set by the auditor per probe (time.monotonic() value)
        self.calls = 0

    def _limit(self) -> float:
        if self.deadline is None:
            return self.call_timeout
        return max(0.05, min(self.call_timeout, self.deadline - time.monotonic()))

    def evaluate(self, pred, target, low=None, *, wrt: str | None = "pred", model: nn.Module | None = None,
                 autocast: torch.dtype | None = None) -> Evaluation:
        """Call the loss on copies of the images; gradients w.r.t. ``"pred"``, ``"params"`` (of
        ``model``, with ``pred = model(low)``) or nothing (``wrt=None``)."""
        low = target if low is None else low
        p = pred.detach().clone()
        t, lo = target.detach().clone(), low.detach().clone()
        if wrt == "pred":
            p.requires_grad_(True)
        fn, arity = self.fn, self.arity

        def call(pred, target, low):
            ctx = torch.autocast("cpu", dtype=autocast) if autocast is not None else contextlib.nullcontext()
            with ctx:
                x = model(low) if model is not None else pred
                out = fn(x, target, low) if arity == 3 else fn(x, target)
            terms, mapping, kind, problem = _normalise(out, self.name)
            grads, no_graph = {}, []
            if problem is None and wrt is not None:
                inputs = [x] if wrt == "pred" and model is None else \
                    ([q for q in model.parameters() if q.requires_grad] if model is not None else [x])
                for k, v in terms.items():
                    if not v.requires_grad:
                        no_graph.append(k)
                        grads[k] = None
                        continue
                    g = torch.autograd.grad(v, inputs, retain_graph=True, allow_unused=True)
                    g = [None if gi is None else gi.detach().float() for gi in g]
                    if all(gi is None for gi in g):
                        grads[k] = None
                    else:
                        grads[k] = g[0] if wrt == "pred" and model is None else g
                if mapping:
                    grads["total"] = _sum_grads([grads[k] for k in terms])
            values = {k: float(v.detach().float()) for k, v in terms.items()} if problem is None else {}
            return values, mapping, kind, problem, grads, tuple(no_graph)

        self.calls += 1
        r = run_guarded(call, p, t, lo, timeout=self._limit())
        ev = Evaluation(elapsed=r.elapsed, exception=r.exception)
        if r.kind != "returned":
            ev.kind = {"raised": "raised"}.get(r.kind, r.kind)
            ev.problem = r.problem(self.name)
            return ev
        if r.modified:
            ev.kind, ev.problem = "inplace", r.problem(self.name)
            return ev
        values, mapping, kind, problem, grads, no_graph = r.value
        ev.mapping, ev.kind, ev.problem, ev.grads, ev.no_graph = mapping, kind, problem, grads, no_graph
        if problem is None:
            ev.terms = values
            ev.total = sum(values.values())
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                ev.kind = "nonfinite"
                ev.problem = f"{self.name} returned {values[bad[0]]} ({'term ' + repr(bad[0]) if mapping else 'the loss'})."
        return ev


def _sum_grads(gs):
    present = [g for g in gs if g is not None]
    if not present:
        return None
    if isinstance(present[0], list):
        out = []
        for parts in zip(*present):
            ps = [q for q in parts if q is not None]
            out.append(sum(ps) if ps else None)
        return out
    return sum(present)


def grad_norm(g) -> float:
    """The L2 norm of a gradient (a tensor, a list of tensors, or ``None`` -> 0)."""
    if g is None:
        return 0.0
    if isinstance(g, list):
        return math.sqrt(sum(float(q.double().pow(2).sum()) for q in g if q is not None))
    return float(g.double().norm())


def grad_finite(g) -> bool:
    if g is None:
        return True
    if isinstance(g, list):
        return all(q is None or bool(torch.isfinite(q).all()) for q in g)
    return bool(torch.isfinite(g).all())
