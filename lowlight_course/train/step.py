"""One training step: forward, loss, finiteness, backward, clip, update.

The step stops *before* the update when the prediction, a loss term or the gradient is NaN or Inf
(it raises :class:`~.errors.Divergence`), so the model keeps the weights from before the bad step.
Host reads: that exact stop needs to know on the host whether values are finite, so the step reads
its values once (:func:`host_values`) and the squared gradient norms once each
(:func:`host_norm`). Those two functions are the only places a step waits for the device; making
the stop lazy (issue 15) is a change to them and their two callers here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

import torch

from .errors import Divergence
from .run import Run

__all__ = ["StepResult", "forward", "as_terms", "train_step", "host_values", "host_norm"]


@dataclass
class StepResult:
    """What one step measured: ``values`` = [total, *terms] (floats), norms before clipping."""

    names: list
    values: list
    grad_norm: float | None = None
    term_grad_norms: dict | None = None


def host_values(t: torch.Tensor) -> list:
    """Read a 1-D device tensor into Python floats (a host read)."""
    return t.tolist()


def host_norm(sq: torch.Tensor, scale: float = 1.0) -> float:
    """``sqrt`` of a summed-squares device tensor, in double precision on the host (a host read)."""
    return math.sqrt(float(sq)) / scale


def forward(run: Run, low: torch.Tensor) -> torch.Tensor:
    """The model's prediction in float32 (autocast on CUDA when ``amp``); a tuple gives its first element."""
    if run.amp_dtype is not None:
        with torch.autocast("cuda", dtype=run.amp_dtype):
            pred = run.model(low)
    else:
        pred = run.model(low)
    if isinstance(pred, (tuple, list)) and pred:
        pred = pred[0]
    if not isinstance(pred, torch.Tensor):
        raise TypeError(f"The model returned a {type(pred).__name__}; fit needs a tensor (B, C, H, W), "
                        f"or a tuple whose first element is that tensor.")
    return pred.float()


def as_terms(out, device: torch.device) -> dict:
    """Normalise a loss output to ``{name: scalar tensor on device}``.

    A constant term (a Python number, or a CPU tensor such as ``torch.tensor(0.3)`` while training
    on CUDA) is moved to ``device``, so it sums with the others instead of raising a device error.
    """
    if isinstance(out, Mapping):
        if not out:
            raise ValueError("loss_fn returned an empty mapping; return at least one term.")
        terms = {}
        for k, v in out.items():
            if not isinstance(v, torch.Tensor):
                v = torch.as_tensor(float(v))
            if v.numel() != 1:
                raise ValueError(f"loss term {k!r} has shape {tuple(v.shape)}; each term must be a scalar "
                                 f"(reduce it with .mean()).")
            terms[str(k)] = v.reshape(()).to(device)
        return terms
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise ValueError(f"loss_fn returned a tensor of shape {tuple(out.shape)}; it must be a scalar "
                             f"(reduce it with .mean()).")
        return {"loss": out.reshape(()).to(device)}
    if isinstance(out, Real):
        raise TypeError(f"loss_fn returned a Python {type(out).__name__} ({out!r}), which has no gradient: "
                        f"fit cannot train on it. Return the tensor itself: compute the loss with torch "
                        f"operations on pred and do not call .item() or float() on it.")
    if isinstance(out, tuple):
        raise TypeError("loss_fn returned a tuple; return a scalar tensor or a dict name -> scalar "
                        "tensor (for (total, terms), return just the terms dict: fit sums it).")
    raise TypeError(f"loss_fn must return a scalar tensor or a dict name -> scalar tensor, got {type(out).__name__}.")


def _grad_sq(term: torch.Tensor, params: list, scale: float = 1.0):
    """Summed squares of d(term * scale)/d(params) on the device; None without an autograd path."""
    if not term.requires_grad:
        return None
    grads = torch.autograd.grad(term * scale if scale != 1.0 else term, params,
                                retain_graph=True, allow_unused=True)
    sq = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    return torch.stack(sq).sum() if sq else None


def _term_norm(term: torch.Tensor, params: list, scale: float = 1.0) -> float:
    """L2 norm of d(term)/d(params); 0.0 when the term has no autograd path to them."""
    sq = _grad_sq(term, params, scale)
    return 0.0 if sq is None else host_norm(sq, scale)


def _culprits(run: Run, low, high) -> list:
    """Terms whose own gradient is non-finite, recomputed on the same batch (weights unchanged)."""
    terms = as_terms(run.loss_fn(forward(run, low), high, low), low.device)
    return [k for k, t in terms.items()
            if t.requires_grad and not math.isfinite(_term_norm(t, run.model_params))]


def train_step(run: Run, low: torch.Tensor, high: torch.Tensor, step: int, measure: bool) -> StepResult:
    """Forward, loss, finiteness, (per-term gradient norms when ``measure``), backward, clip, update."""
    pred = forward(run, low)
    # Check the prediction before the loss sees it: a validated loss would reject a NaN
    # prediction with an input error, and the learner would lose the history.
    if not bool(torch.isfinite(pred.detach()).all()):
        raise Divergence(step, ["the model output"], "")
    terms = as_terms(run.loss_fn(pred, high, low), pred.device)
    total = torch.stack([t.float() for t in terms.values()]).sum()
    values = host_values(torch.stack([total.detach(), *(t.detach().float() for t in terms.values())]))
    bad = [k for k, v in zip(terms, values[1:]) if not math.isfinite(v)]
    if bad or not math.isfinite(values[0]):
        raise Divergence(step, bad or ["total loss"], "loss term" + ("s" if len(bad) > 1 else ""))
    if not total.requires_grad:
        raise RuntimeError(
            f"The total loss at step {step} has no gradient (no autograd path to the model): "
            f"every term is a constant. A term built with a non-differentiable operation "
            f"(torch.histc, .item(), .detach(), argmax, rounding) gives the optimiser nothing "
            f"to follow.")

    scaler, opt = run.scaler, run.optimizer
    scale = scaler.get_scale() if scaler is not None else 1.0
    gn = {k: _term_norm(t, run.model_params, scale) for k, t in terms.items()} if measure else None

    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.unscale_(opt)
    else:
        total.backward()
    grads = [p.grad for p in run.model_params + run.loss_params if p.grad is not None]
    gnorm = host_norm(torch.stack([g.detach().float().pow(2).sum() for g in grads]).sum()) if grads else 0.0
    if not math.isfinite(gnorm) and scaler is None:
        culprits = _culprits(run, low, high)
        raise Divergence(step, [f"gradient of {k}" for k in (culprits or ["the total loss"])], "the")
    if run.clip_grad is not None:
        torch.nn.utils.clip_grad_norm_(run.model_params + run.loss_params, run.clip_grad)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return StepResult(names=list(terms), values=values, grad_norm=gnorm, term_grad_norms=gn)
