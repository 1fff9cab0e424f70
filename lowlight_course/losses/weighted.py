"""A weighted sum of loss terms that shows what each term really does.

``0.3 * MSE + 0.3 * (1 - SSIM) + 0.4 * histogram`` reads as if the histogram drove 40 % of
training. It does not: what a term contributes to a gradient step is ``weight x |dL/dpred|``, and
the terms' values and gradients differ by orders of magnitude. :class:`WeightedLoss` keeps every
term separate, reports each one's value, effective weight and gradient norm, flags terms with no
gradient ("dead" terms), and offers three ways to re-balance the terms:

* ``balance="initial"``: divide each term by its value at the first call (detached), so every term
  starts at 1 and the weights compare relative improvements.
* ``balance="gradnorm"``: a simplified GradNorm (Z. Chen, V. Badrinarayanan, C.-Y. Lee,
  A. Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
  Networks", ICML 2018). At every call each term is rescaled by a detached factor so that its
  gradient norm w.r.t. ``pred`` equals its weight's share of the terms' summed gradient norm:
  with equal weights, every term's gradient norm is the mean. (The original learns the factors
  with an extra loss and uses the gradient w.r.t. the last shared layer and training rates; here
  the factors are computed in closed form from ``torch.autograd.grad`` w.r.t. ``pred``, i.e.
  GradNorm with asymmetry alpha = 0.)
* ``balance="uncertainty"``: homoscedastic-uncertainty weighting (A. Kendall, Y. Gal, R. Cipolla,
  "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR
  2018): one learnable log-variance ``s_i`` per term (an ``nn.Parameter``), contribution
  ``0.5 exp(-s_i) w_i L_i + 0.5 s_i``. The optimiser learns the weights; ``fit`` optimises the
  module's parameters too. Contributions can be negative.

The contract with :func:`lowlight_course.train.fit`: calling the module returns a dict
``name -> weighted contribution`` (scalar tensors); the loss is the sum of the values.
"""
from __future__ import annotations

import inspect
import math
import warnings
from numbers import Real
from typing import Callable, Mapping

import torch
from torch import nn

__all__ = ["WeightedLoss", "LossReport", "BALANCE_STRATEGIES"]

BALANCE_STRATEGIES = (None, "initial", "gradnorm", "uncertainty")


def _wants_low(fn: Callable) -> bool | None:
    """Whether ``fn`` is called as ``fn(pred, target, low)`` (True) or ``fn(pred, target)`` (False).

    Decided from the signature: ``*args``, three or more *required* positional parameters, or a
    third positional parameter named ``low`` mean "pass low". Optional parameters such as
    ``reduction="mean"`` do not count, so ``mse(pred, target, reduction="mean")`` gets two
    arguments. Returns None when the signature cannot be read.
    """
    target = fn.forward if isinstance(fn, nn.Module) else fn  # Module.__call__ is (*args, **kwargs)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    positional = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        return True
    required = [p for p in positional if p.default is p.empty]
    if len(required) >= 3 or (len(positional) >= 3 and positional[2].name == "low"):
        return True
    if len(positional) >= 2:
        return False
    raise TypeError(f"A loss term must accept (pred, target) or (pred, target, low); {fn!r} takes "
                    f"{len(positional)} positional argument(s). Wrap it, e.g. "
                    f"lambda pred, target, low: f(pred).")


class LossReport(list):
    """A list of per-term rows (dicts) that prints as a table. See :meth:`WeightedLoss.report`."""

    columns = ("name", "raw", "weight", "effective_weight", "weighted", "grad_norm", "grad_share")

    def __str__(self) -> str:
        head = f"{'term':<12}{'raw':>11}{'weight':>9}{'eff. w':>11}{'weighted':>11}{'|grad|':>11}" \
               f"{'share':>8}  note"
        lines = [head, "-" * len(head)]
        for r in self:
            note = "DEAD: " + r["reason"] if r["dead"] else ""
            lines.append(f"{r['name']:<12.12}{r['raw']:>11.3e}{r['weight']:>9.3g}{r['effective_weight']:>11.3e}"
                         f"{r['weighted']:>11.3e}{r['grad_norm']:>11.3e}{r['grad_share']:>7.1%}  {note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def as_dict(self) -> dict[str, dict]:
        """``name -> row`` for lookups such as ``report.as_dict()["ssim"]["grad_share"]``."""
        return {r["name"]: r for r in self}


class WeightedLoss(nn.Module):
    """Weighted sum of named loss terms, with per-term reporting and optional re-balancing.

    Args:
        terms: mapping ``name -> (loss_fn, weight)``. ``loss_fn`` is a callable
            ``(pred, target, low) -> scalar`` or ``(pred, target) -> scalar``. Which one is decided
            once, from its signature: three *required* positional parameters, ``*args``, or a third
            parameter named ``low`` get ``low`` too; optional ones (``reduction="mean"``) do not.
            Callables whose signature cannot be read (some builtins) are tried with three
            arguments first, then two. Non-reference terms wrap the package's functions, e.g.
            ``lambda pred, target, low: spatial_consistency_loss(pred, low)``. ``nn.Module`` terms
            are registered as sub-modules (they move with ``.to(device)``). ``weight``: a finite
            number >= 0.
        balance: ``None`` (plain weighted sum), ``"initial"``, ``"gradnorm"`` or ``"uncertainty"``
            (see the module docstring).
        warn_dead: warn once per term when, during training, a term returns a value with no
            autograd path to the prediction (the ``torch.histc`` pitfall).

    Call: ``loss(pred, target, low=None) -> dict[name, Tensor]``, each value the term's weighted
    contribution (a scalar); ``sum(loss(...).values())`` is the loss to back-propagate.
    ``"gradnorm"`` needs ``pred.requires_grad`` while gradients are enabled; under
    ``torch.no_grad()`` it reuses the factors of the last training call (or 1).

    Example:
        >>> import torch
        >>> from lowlight_course.losses import mse, SSIMLoss
        >>> loss_fn = WeightedLoss({"mse": (mse, 0.5), "ssim": (SSIMLoss(), 0.5)})
        >>> pred = torch.rand(2, 3, 32, 32, requires_grad=True); target = torch.rand(2, 3, 32, 32)
        >>> parts = loss_fn(pred, target)
        >>> sorted(parts)
        ['mse', 'ssim']
        >>> sum(parts.values()).backward()
        >>> rows = loss_fn.report(pred, target)
        >>> round(sum(r["grad_share"] for r in rows), 6)
        1.0
    """

    def __init__(self, terms: Mapping[str, tuple[Callable, float]], balance: str | None = None, *,
                 warn_dead: bool = True):
        super().__init__()
        if not isinstance(terms, Mapping) or len(terms) == 0:
            raise TypeError("terms must be a non-empty dict name -> (loss_fn, weight), e.g. "
                            "{'mse': (mse, 1.0)}.")
        if balance not in BALANCE_STRATEGIES:
            raise ValueError(f"balance must be one of {BALANCE_STRATEGIES}, got {balance!r}.")
        self.balance = balance
        self.warn_dead = warn_dead
        self.names: list[str] = []
        self.weights: list[float] = []
        self._fns: list[Callable] = []
        self._wants_low: list[bool | None] = []
        self.term_modules = nn.ModuleDict()
        for name, spec in terms.items():
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"term names must be non-empty strings without '.', got {name!r}.")
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
                raise TypeError(f"term {name!r} must be a (loss_fn, weight) pair, got {spec!r}.")
            fn, weight = spec
            if not callable(fn):
                raise TypeError(f"term {name!r}: {fn!r} is not callable; pass a loss function or module.")
            if isinstance(weight, bool) or not isinstance(weight, Real) or not math.isfinite(weight) \
                    or weight < 0:
                raise ValueError(f"term {name!r}: weight must be a finite number >= 0, got {weight!r}.")
            if isinstance(fn, nn.Module):
                self.term_modules[name] = fn
            self.names.append(name)
            self.weights.append(float(weight))
            self._fns.append(fn)
            self._wants_low.append(_wants_low(fn))
        n = len(self.names)
        self.register_buffer("initial_values", torch.full((n,), float("nan")))
        self.register_buffer("gradnorm_factors", torch.ones(n))
        if balance == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(n))
        else:
            self.log_vars = None
        self._warned: set[str] = set()

    # -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the first-call values (``"initial"``) and GradNorm factors."""
        self.initial_values.fill_(float("nan"))
        self.gradnorm_factors.fill_(1.0)

    def _call_term(self, i: int, pred, target, low) -> torch.Tensor:
        fn, name, wants = self._fns[i], self.names[i], self._wants_low[i]
        if wants is None:
            try:
                value = fn(pred, target, low)
                self._wants_low[i] = True
            except TypeError:
                value = fn(pred, target)
                self._wants_low[i] = False
        elif wants:
            value = fn(pred, target, low)
        else:
            value = fn(pred, target)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"term {name!r} returned {shape}, not a scalar tensor: use the loss's "
                             f"reduction='mean' (or wrap it with .mean()).")
        return value

    def raw_terms(self, pred: torch.Tensor, target: torch.Tensor, low: torch.Tensor | None = None
                  ) -> dict[str, torch.Tensor]:
        """The unweighted value of each term."""
        return {name: self._call_term(i, pred, target, low) for i, name in enumerate(self.names)}

    @staticmethod
    def _grad_norm(value: torch.Tensor, pred: torch.Tensor) -> float:
        if not (value.requires_grad and pred.requires_grad):
            return 0.0
        (g,) = torch.autograd.grad(value, pred, retain_graph=True, allow_unused=True)
        return 0.0 if g is None else float(g.detach().float().norm())

    def _scales(self, raw: list[torch.Tensor], pred: torch.Tensor, update: bool) -> list[torch.Tensor | float]:
        """Per-term multipliers applied on top of the weights (1 for no balancing)."""
        n = len(raw)
        if self.balance == "initial":
            init = self.initial_values.clone()
            for i, v in enumerate(raw):
                if math.isnan(float(init[i])):
                    init[i] = float(v.detach())
            if update:
                self.initial_values.copy_(init)
            return [1.0 / float(init[i]) if float(init[i]) > 1e-12 else 1.0 for i in range(n)]
        if self.balance == "gradnorm":
            if not torch.is_grad_enabled():
                return [float(f) for f in self.gradnorm_factors]
            if not pred.requires_grad:
                raise ValueError("balance='gradnorm' measures each term's gradient w.r.t. pred, but pred "
                                 "does not require grad. Pass the model's output (or call "
                                 "pred.requires_grad_()), or evaluate under torch.no_grad().")
            norms = [self._grad_norm(v, pred) for v in raw]
            live = [i for i in range(n) if norms[i] > 0]
            total_w = sum(self.weights[i] for i in live)
            budget = sum(self.weights[i] * norms[i] for i in live)
            factors = [1.0] * n
            for i in live:
                if total_w > 0 and self.weights[i] > 0:
                    factors[i] = budget * (self.weights[i] / total_w) / (self.weights[i] * norms[i])
            if update:
                self.gradnorm_factors.copy_(torch.tensor(factors))
            return factors
        return [1.0] * n

    def _contributions(self, pred, target, low, update: bool):
        raw = [self._call_term(i, pred, target, low) for i in range(len(self.names))]
        scales = self._scales(raw, pred, update)
        out, eff = {}, []
        for i, (name, v) in enumerate(zip(self.names, raw)):
            w = self.weights[i] * scales[i]
            if self.balance == "uncertainty":
                s = self.log_vars[i]
                out[name] = 0.5 * torch.exp(-s) * w * v + 0.5 * s
                eff.append(0.5 * math.exp(-float(s.detach())) * w)
            else:
                out[name] = w * v
                eff.append(w)
        return raw, out, eff

    def forward(self, pred: torch.Tensor, target: torch.Tensor, low: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        raw, out, _ = self._contributions(pred, target, low, update=True)
        if self.warn_dead and torch.is_grad_enabled() and isinstance(pred, torch.Tensor) and pred.requires_grad:
            for name, v in zip(self.names, raw):
                if not v.requires_grad and name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(f"Loss term {name!r} has no autograd path to the prediction (no "
                                  f"grad_fn): it adds a constant and never changes the model. A "
                                  f"non-differentiable op (torch.histc, argmax, .item(), round) is the "
                                  f"usual cause.", RuntimeWarning, stacklevel=4)
        return out

    # -----------------------------------------------------------------------------------------
    def report(self, pred: torch.Tensor, target: torch.Tensor, low: torch.Tensor | None = None) -> LossReport:
        """Measure every term on one batch: value, weights, gradient norm and share of the gradient.

        ``pred`` is detached and cloned (the model is not touched), so this works on any tensor. It
        does not change the module's state (first-call values, GradNorm factors). Rows (dicts):

        * ``raw``: the term's unweighted value; ``weight``: the weight you gave;
        * ``effective_weight``: the multiplier actually applied to ``raw`` (weight x balancing);
        * ``weighted``: the contribution to the total;
        * ``grad_norm``: L2 norm of the gradient of the contribution w.r.t. ``pred``;
        * ``grad_share``: ``grad_norm`` over the sum of all terms' ``grad_norm``;
        * ``dead`` and ``reason``: True when the term has no autograd path or a zero gradient.

        Returns a :class:`LossReport` (a list of the rows that prints as a table).
        """
        p = pred.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            raw, out, eff = self._contributions(p, target, low, update=False)
            rows = LossReport()
            for i, name in enumerate(self.names):
                v, c = raw[i], out[name]
                if not v.requires_grad:
                    gn, dead, reason = 0.0, True, "no grad_fn (not differentiable)"
                else:
                    gn = self._grad_norm(c, p)
                    dead = gn == 0.0
                    reason = "zero gradient w.r.t. pred" if dead else ""
                rows.append({"name": name, "raw": float(v.detach()), "weight": self.weights[i],
                             "effective_weight": float(eff[i]), "weighted": float(c.detach()),
                             "grad_norm": gn, "grad_share": 0.0, "dead": dead, "reason": reason})
        total = sum(r["grad_norm"] for r in rows)
        for r in rows:
            r["grad_share"] = r["grad_norm"] / total if total > 0 else 0.0
        return rows

    def extra_repr(self) -> str:
        terms = ", ".join(f"{n}={w:g}" for n, w in zip(self.names, self.weights))
        return f"terms=({terms}), balance={self.balance!r}"
