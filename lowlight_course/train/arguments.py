"""Checking :func:`~lowlight_course.train.fit`'s arguments before anything moves or trains.

Each check rejects an argument that would otherwise train wrong *silently* (``lr=True`` is 1.0,
``clip_grad=0`` zeroes every update, a float64 model meets float32 data, a two-argument loss gets
the low-light batch as its ``reduction``), with an error that names the argument and a fix that
works. Data are checked in :mod:`.data`, loss outputs in :mod:`.step`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Integral, Real

import torch
from torch import nn

__all__ = ["FitArguments", "check_arguments", "check_model", "check_loss_fn"]


@dataclass(frozen=True)
class FitArguments:
    """fit's scalar arguments, checked and normalised (plain ``int`` / ``float`` / ``None``)."""

    steps: int
    batch_size: int
    lr: float
    loss_lr: float | None
    seed: int
    log_every: int
    grad_norm_every: int
    val_every: int | None
    clip_grad: float | None
    warmup_steps: int
    amp: bool
    progress: bool
    desc: str | None
    on_interrupt: str = "return"


def _kind(value) -> str:
    return "a bool" if isinstance(value, bool) else f"a {type(value).__name__}"


def _int(name: str, value, *, minimum: int, example: str, none_ok: bool = False) -> int | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({_kind(value)}): use e.g. {example}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}: use e.g. {example}.")
    return int(value)


def _positive_real(name: str, value, *, example: str, none_ok: bool = False) -> float | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        hint = " (a tensor: pass float(x))" if isinstance(value, torch.Tensor) else ""
        raise TypeError(f"{name} must be a positive number, got {value!r} ({_kind(value)}){hint}: "
                        f"use e.g. {example}.")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}: use e.g. {example}.")
    return number


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({_kind(value)}).")
    return value


def check_arguments(*, steps, batch_size, lr, loss_lr, seed, log_every, grad_norm_every, val,
                    val_every, clip_grad, warmup_steps, amp, progress, desc,
                    on_interrupt="return") -> FitArguments:
    """Validate fit's scalar arguments; return them normalised. Raises TypeError / ValueError."""
    steps = _int("steps", steps, minimum=1, example="steps=200")
    if warmup_steps is None:
        warmup_steps = 0
    warmup_steps = _int("warmup_steps", warmup_steps, minimum=0, example="warmup_steps=steps // 10")
    if warmup_steps > steps:
        raise ValueError(f"warmup_steps={warmup_steps} is longer than the run (steps={steps}): the "
                         f"learning rate would never reach lr. Use warmup_steps <= steps, e.g. "
                         f"warmup_steps={max(1, steps // 10)}.")
    clip_grad = _positive_real("clip_grad", clip_grad, example="clip_grad=1.0 (None: no clipping)",
                               none_ok=True)
    grad_norm_every = _int("grad_norm_every", 0 if grad_norm_every is None else grad_norm_every,
                           minimum=0, example="grad_norm_every=10 (0 switches it off)")
    val_every = _int("val_every", val_every, minimum=1, none_ok=True,
                     example="val_every=50 (None: 10 times per run)")
    if val_every is not None and val is None:
        raise ValueError(f"val_every={val_every} was given without val: pass the held-out pairs too, "
                         f"e.g. val=(val_low, val_high).")
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a string (the progress-bar label), got {_kind(desc)}.")
    if on_interrupt not in ("return", "raise"):
        raise ValueError(f"on_interrupt must be 'return' (keep the history and return it) or 'raise' "
                         f"(re-raise KeyboardInterrupt with .history), got {on_interrupt!r}.")
    return FitArguments(
        steps=steps,
        batch_size=_int("batch_size", batch_size, minimum=1, example="batch_size=16"),
        lr=_positive_real("lr", lr, example="lr=1e-3"),
        loss_lr=_positive_real("loss_lr", loss_lr, example="loss_lr=0.1 (None: the same as lr)",
                               none_ok=True),
        seed=_int("seed", seed, minimum=-(2 ** 63), example="seed=0"),
        log_every=_int("log_every", log_every, minimum=1, example="log_every=1 (every step)"),
        grad_norm_every=grad_norm_every, val_every=val_every, clip_grad=clip_grad,
        warmup_steps=warmup_steps, amp=_bool("amp", amp), progress=_bool("progress", progress),
        desc=desc, on_interrupt=on_interrupt)


def check_model(model) -> None:
    """``model`` is an ``nn.Module`` instance with trainable float32 parameters."""
    if isinstance(model, type):
        raise TypeError(f"model is the class {model.__name__}, not a model: pass an instance, "
                        f"e.g. {model.__name__}().")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    tensors = [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point() or b.is_complex())]
    wrong = sorted({str(t.dtype).replace("torch.", "") for t in tensors if t.dtype != torch.float32})
    if wrong:
        raise TypeError(f"model has {', '.join(wrong)} parameters or buffers; fit trains float32 "
                        f"(mixed precision comes from amp=True on CUDA): call model.float() first.")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no trainable parameters.")


def _name_of(fn) -> str:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() and name != "<lambda>" else "loss"


def check_loss_fn(loss_fn) -> None:
    """``loss_fn`` can be called as ``loss_fn(pred, target, low)`` (read from its signature).

    A two-argument loss (``mse(pred, target)``) is rejected with the wrapper that adapts it; so is
    one whose third parameter is optional and not named for ``low`` (``mse(pred, target,
    reduction="mean")`` would receive the low-light batch as ``reduction``). Signatures that cannot
    be read (builtins) pass; their first call is checked by :mod:`.recovery`.
    """
    if isinstance(loss_fn, type):
        raise TypeError(f"loss_fn is the class {loss_fn.__name__}, not a loss: pass an instance, "
                        f"e.g. {loss_fn.__name__}().")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(pred, target, low).")
    target = loss_fn.forward if isinstance(loss_fn, nn.Module) else loss_fn
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return
    name = _name_of(loss_fn)
    wrap = f"wrap it as lambda pred, target, low: {name}(pred, target)"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kw_required = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if kw_required:
        raise TypeError(f"loss_fn needs the keyword argument(s) {', '.join(kw_required)}, which fit "
                        f"never passes: bind them, e.g. functools.partial({name}, "
                        f"{kw_required[0]}=...).")
    if len(positional) < 3:
        names = ", ".join(p.name for p in positional) or "none"
        raise TypeError(f"loss_fn takes {len(positional)} positional argument(s) ({names}), but fit "
                        f"calls it as loss_fn(pred, target, low) (docs/CONTRACTS.md): {wrap}.")
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 3:
        raise TypeError(f"loss_fn requires {len(required)} positional arguments "
                        f"({', '.join(p.name for p in required)}), but fit passes three (pred, "
                        f"target, low): bind the others, e.g. with functools.partial.")
    third = positional[2]
    if third.default is not third.empty and "low" not in third.name.lower():
        raise TypeError(f"loss_fn's third parameter is {third.name!r} (default {third.default!r}), but "
                        f"fit passes the low-light batch there, so it would arrive as {third.name}. "
                        f"If {name} does not use the low-light input, {wrap}; if it does, name the "
                        f"parameter low or make it required.")
