"""One training loop for every notebook: :func:`fit`, its :class:`History`, and :func:`predict`.

``fit`` trains on the GPU when there is one (``device="auto"``), uses mixed precision there, shows a
``tqdm.auto`` progress bar, is seeded (two CPU runs with the same seed give identical histories),
records every loss term and, every few steps, each term's gradient norm with respect to the model
parameters, and stops with a :class:`TrainingDivergedError` that names the step and the term when a
loss or gradient becomes NaN or Inf.

The loss contract (``docs/CONTRACTS.md``): ``loss_fn(pred, target, low)`` returns a scalar tensor,
or a mapping ``name -> weighted contribution`` whose values sum to the total loss.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["fit", "predict", "History", "TrainingDivergedError", "resolve_device"]


class TrainingDivergedError(RuntimeError):
    """A loss or gradient became NaN or Inf during :func:`fit`.

    Attributes:
        step: the step (0-based) at which it happened.
        terms: names of the loss terms (or ``"gradient of <term>"``) that went non-finite.
        history: the :class:`History` recorded up to (not including) that step.
    """

    def __init__(self, message: str, *, step: int, terms: list[str], history: "History"):
        super().__init__(message)
        self.step, self.terms, self.history = step, terms, history


@dataclass
class History:
    """What :func:`fit` recorded.

    Attributes:
        steps: step index of each entry of ``loss`` / ``terms`` / ``lr``.
        loss: total loss per recorded step.
        terms: ``name -> list`` of each term's (weighted) value per recorded step. A scalar loss is
            recorded as the single term ``"loss"``.
        grad_norm_steps: steps at which gradient norms were measured.
        grad_norms: ``name -> list`` of the L2 norm of each term's gradient with respect to the
            model parameters, at ``grad_norm_steps`` (0.0 for a term with no autograd path).
        grad_norm_total: norm of the total gradient at ``grad_norm_steps`` (before clipping).
        lr: learning rate per recorded step.
        val_steps, val: validation metrics ``name -> list`` (when ``fit`` got ``val``).
        extra: free-form information: device, amp dtype, seconds, parameter names, ...
    """

    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    grad_norm_steps: list = field(default_factory=list)
    grad_norms: dict = field(default_factory=dict)
    grad_norm_total: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def term_names(self) -> list[str]:
        return list(self.terms)

    def final(self, name: str = "loss", last: int = 1) -> float:
        """Mean of the last ``last`` recorded values of ``name``.

        ``name`` is ``"loss"`` (the total), a term name, ``"grad:<term>"`` for a gradient norm, or
        ``"val:<metric>"`` for a validation metric.
        """
        series = self.series(name)
        if not series:
            raise ValueError(f"History has no values for {name!r} yet.")
        tail = series[-max(1, int(last)):]
        return float(sum(tail) / len(tail))

    def series(self, name: str) -> list:
        """The recorded list for ``name`` (see :meth:`final` for the naming)."""
        if name == "loss" and name not in self.terms:
            return self.loss
        if name in self.terms:
            return self.terms[name]
        if name.startswith("grad:") and name[5:] in self.grad_norms:
            return self.grad_norms[name[5:]]
        if name.startswith("val:") and name[4:] in self.val:
            return self.val[name[4:]]
        known = ["loss", *self.terms, *(f"grad:{k}" for k in self.grad_norms), *(f"val:{k}" for k in self.val)]
        raise KeyError(f"Unknown history entry {name!r}; known: {', '.join(dict.fromkeys(known))}.")

    def as_dict(self) -> dict:
        """A plain, JSON-serialisable dict of everything recorded."""
        return asdict(self)

    def __repr__(self) -> str:
        if not self.steps:
            return "History(empty)"
        parts = "; " + ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.terms.items()) if list(self.terms) != ["loss"] else ""
        return f"History({len(self.steps)} steps, last step {self.steps[-1]}: loss={self.loss[-1]:.4g}{parts})"


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else through ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available: use device='auto'.")
    return dev


class _Data:
    """Uniform access to a ``(low, high)`` tensor pair or a Dataset of pairs."""

    def __init__(self, train, device: torch.device, what: str = "train"):
        self.device = device
        if isinstance(train, (tuple, list)) and len(train) == 2 and all(isinstance(t, torch.Tensor) for t in train):
            low, high = train
            for name, t in (("low", low), ("high", high)):
                if t.dim() != 4:
                    raise ValueError(f"{what}[{0 if name == 'low' else 1}] ({name}) must have shape (N, C, H, W), "
                                     f"got {tuple(t.shape)}.")
                if not t.is_floating_point():
                    raise TypeError(f"{what} {name} images have dtype {t.dtype}: use .float() / 255.")
            if low.shape[0] != high.shape[0] or low.shape[0] == 0:
                raise ValueError(f"{what} low and high must hold the same (non-zero) number of images, "
                                 f"got {low.shape[0]} and {high.shape[0]}.")
            # Small sets (every course profile) live on the device once: no per-step copies.
            on_device = (low.numel() + high.numel()) * low.element_size() < 2 ** 30
            self.low = low.to(device) if on_device else low
            self.high = high.to(device) if on_device else high
            self.dataset = None
            self.n = low.shape[0]
        elif not isinstance(train, (torch.Tensor, tuple, list)) and (
                isinstance(train, torch.utils.data.Dataset) or (hasattr(train, "__getitem__") and hasattr(train, "__len__"))):
            self.dataset, self.n = train, len(train)
            if self.n == 0:
                raise ValueError(f"{what} dataset is empty.")
        else:
            raise TypeError(f"{what} must be a tuple (low, high) of tensors (N, 3, H, W) or a Dataset of "
                            f"(low, high) pairs, got {type(train).__name__}.")

    def batch(self, idx: torch.Tensor):
        if self.dataset is None:
            if self.low.device != idx.device and self.low.device.type != "cpu":
                idx = idx.to(self.low.device)
            low, high = self.low[idx], self.high[idx]
        else:
            pairs = [self.dataset[int(i)] for i in idx]
            low = torch.stack([torch.as_tensor(p[0]) for p in pairs])
            high = torch.stack([torch.as_tensor(p[1]) for p in pairs])
        nb = self.device.type == "cuda"
        return low.to(self.device, non_blocking=nb).float(), high.to(self.device, non_blocking=nb).float()


def _as_terms(out, device: torch.device) -> dict:
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
    raise TypeError(f"loss_fn must return a scalar tensor or a dict name -> scalar tensor, got {type(out).__name__}.")


def _grad_norm(term: torch.Tensor, params: list, scale: float = 1.0) -> float:
    """L2 norm of d(term)/d(params); 0.0 when the term has no autograd path to them."""
    if not term.requires_grad:
        return 0.0
    grads = torch.autograd.grad(term * scale if scale != 1.0 else term, params,
                                retain_graph=True, allow_unused=True)
    sq = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    if not sq:
        return 0.0
    return math.sqrt(float(torch.stack(sq).sum())) / scale


def _total_norm(grads: list) -> float:
    if not grads:
        return 0.0
    return math.sqrt(float(torch.stack([g.detach().float().pow(2).sum() for g in grads]).sum()))


def _make_optimizer(optimizer, params, lr):
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "adam":
            return torch.optim.Adam(params, lr=lr)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr)
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9)
        raise ValueError(f"Unknown optimizer {optimizer!r}: use 'adam', 'adamw', 'sgd', or pass a "
                         f"callable params -> torch.optim.Optimizer.")
    if callable(optimizer):
        return optimizer(params, lr=lr) if isinstance(optimizer, type) else optimizer(params)
    raise TypeError(f"optimizer must be a name or a callable, got {type(optimizer).__name__}.")


_FIXES = ("Try: a lower learning rate (lr), checking the data range (images in [0, 1], not 0-255), "
          "guarding divisions, logs and square roots with an epsilon, or clipping gradients "
          "(clip_grad=1.0). The history up to this step is in the exception's .history.")


def fit(model: nn.Module, loss_fn, train, *, steps: int, batch_size: int = 16, lr: float = 1e-3,
        optimizer="adam", device="auto", amp: bool = True, seed: int = 0, progress: bool = True,
        log_every: int = 1, grad_norm_every: int = 10, val=None, val_every: int | None = None,
        desc: str | None = None, clip_grad: float | None = None, warmup_steps: int = 0) -> History:
    """Train ``model`` to minimise ``loss_fn`` on ``train``; return the :class:`History`.

    Args:
        model: maps a low-light batch (B, 3, H, W) to an enhanced batch. It is trained on ``device``
            and moved back to the device it came from at the end (so ``model(low)`` with CPU
            tensors keeps working after training on a GPU).
        loss_fn: ``loss_fn(pred, target, low)`` -> scalar tensor or ``{name: weighted term}``
            (total = sum of the values). An ``nn.Module`` with parameters (for example learned
            uncertainty weights) has its parameters optimised too.
        train: ``(low, high)`` tensors (N, 3, H, W), or a Dataset of ``(low, high)`` pairs.
        steps: optimiser steps. Batches are drawn without replacement, epoch after epoch, in an
            order fixed by ``seed``.
        batch_size: pairs per step (capped at the data size).
        lr: peak learning rate; ``warmup_steps`` ramps it up linearly from ``lr / warmup_steps``.
        optimizer: ``"adam"`` (default), ``"adamw"``, ``"sgd"`` (momentum 0.9), or a callable
            ``params -> Optimizer`` (or an Optimizer class, called with ``lr=lr``).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
        amp: mixed precision on CUDA only: the model runs under ``torch.autocast`` (bfloat16 where
            supported, else float16 with a ``GradScaler``); the loss is always computed in float32,
            because statistics such as SSIM's variances lose too much in half precision.
        seed: seeds batch order and the global RNGs (not the model's initial weights: seed before
            building the model, e.g. with ``models.seed_everything``).
        progress: show a ``tqdm.auto`` progress bar (safe headless: it disappears with
            ``progress=False``).
        log_every: record values every ``log_every`` steps (the NaN check runs every step).
        grad_norm_every: measure each term's gradient norm every this many steps (0 disables).
            Costs one extra backward pass per term on those steps.
        val: optional ``(low, high)`` or Dataset; loss terms and PSNR are measured on it every
            ``val_every`` steps (default: 10 times per run) and at the end.
        desc: progress-bar label.
        clip_grad: clip the total gradient norm to this value.
        warmup_steps: linear learning-rate warm-up length.

    Raises:
        TrainingDivergedError: a loss term or a gradient became NaN or Inf. The message names the
            step and the term(s); ``err.history`` holds everything recorded before.

    Example:
        >>> from lowlight_course.models import UNet
        >>> low = torch.rand(8, 3, 16, 16) * 0.2; high = (low * 4).clamp(0, 1)
        >>> h = fit(UNet(base=4, depth=1), lambda p, t, l: ((p - t) ** 2).mean(), (low, high),
        ...         steps=5, batch_size=4, progress=False)
        >>> len(h.loss)
        5
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(pred, target, low).")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    log_every = max(1, int(log_every))
    dev = resolve_device(device)
    data = _Data(train, dev)
    val_data = _Data(val, dev, "val") if val is not None else None
    batch_size = min(batch_size, data.n)
    val_every = val_every or max(1, steps // 10)

    try:
        home = next(model.parameters()).device
    except StopIteration:
        home = torch.device("cpu")
    model.to(dev)
    model.train()
    model_params = [p for p in model.parameters() if p.requires_grad]
    if not model_params:
        raise ValueError("model has no trainable parameters.")
    loss_params = []
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(dev)
        seen = {id(p) for p in model_params}
        loss_params = [p for p in loss_fn.parameters() if p.requires_grad and id(p) not in seen]
    opt = _make_optimizer(optimizer, model_params + loss_params, lr)

    amp_dtype = None
    if amp and dev.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(data.n, generator=gen), 0

    hist = History()
    hist.extra.update(device=str(dev), amp=str(amp_dtype).replace("torch.", "") if amp_dtype else None,
                      seed=seed, steps=steps, batch_size=batch_size, lr=lr, optimizer=str(optimizer),
                      parameters=sum(p.numel() for p in model_params),
                      loss_parameters=sum(p.numel() for p in loss_params))

    def forward(low):
        if amp_dtype is not None:
            with torch.autocast("cuda", dtype=amp_dtype):
                pred = model(low)
        else:
            pred = model(low)
        if isinstance(pred, (tuple, list)):
            pred = pred[0]
        return pred.float()

    def diverged(step, names, kind):
        what = ", ".join(names)
        what = f"{kind} {what}" if kind else what
        msg = (f"Training diverged at step {step}: {what} became NaN or Inf"
               f" (last finite total loss: {hist.loss[-1]:.4g})." if hist.loss else
               f"Training diverged at step {step}: {what} became NaN or Inf.")
        hist.extra["seconds"] = time.perf_counter() - t0
        model.to(home)
        return TrainingDivergedError(f"{msg} {_FIXES}", step=step, terms=list(names), history=hist)

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=desc or "training", disable=not progress, leave=False,
               dynamic_ncols=True, mininterval=0.5)
    postfix_every = max(1, steps // 50)
    t0 = time.perf_counter()
    try:
        for step in range(steps):
            if pos + batch_size > data.n:
                order, pos = torch.randperm(data.n, generator=gen), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            low, high = data.batch(idx)

            cur_lr = lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps else lr
            for g in opt.param_groups:
                g["lr"] = cur_lr

            pred = forward(low)
            # Check the prediction before the loss sees it: a validated loss would reject a NaN
            # prediction with an input error, and the learner would lose the history.
            if not bool(torch.isfinite(pred.detach()).all()):
                raise diverged(step, ["the model output"], "")
            terms = _as_terms(loss_fn(pred, high, low), pred.device)
            total = torch.stack([t.float() for t in terms.values()]).sum()
            values = torch.stack([total.detach(), *(t.detach().float() for t in terms.values())]).tolist()
            bad = [k for k, v in zip(terms, values[1:]) if not math.isfinite(v)]
            if bad or not math.isfinite(values[0]):
                raise diverged(step, bad or ["total loss"], "loss term" + ("s" if len(bad) > 1 else ""))
            if not total.requires_grad:
                raise RuntimeError(
                    f"The total loss at step {step} has no gradient (no autograd path to the model): "
                    f"every term is a constant. A term built with a non-differentiable operation "
                    f"(torch.histc, .item(), .detach(), argmax, rounding) gives the optimiser nothing "
                    f"to follow.")

            measure = grad_norm_every and step % grad_norm_every == 0
            scale = scaler.get_scale() if scaler is not None else 1.0
            if measure:
                gn = {k: _grad_norm(t, model_params, scale) for k, t in terms.items()}

            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(opt)
            else:
                total.backward()
            grads = [p.grad for p in model_params + loss_params if p.grad is not None]
            gnorm = _total_norm(grads)
            if not math.isfinite(gnorm) and scaler is None:
                # Find the culprit: per-term gradients on the same batch (weights are unchanged).
                culprits = []
                terms = _as_terms(loss_fn(forward(low), high, low), low.device)
                for k, t in terms.items():
                    if t.requires_grad and not math.isfinite(_grad_norm(t, model_params)):
                        culprits.append(k)
                raise diverged(step, [f"gradient of {k}" for k in (culprits or ["the total loss"])], "the")
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model_params + loss_params, clip_grad)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()

            if step % log_every == 0 or step == steps - 1:
                hist.steps.append(step)
                hist.loss.append(values[0])
                for k, v in zip(terms, values[1:]):
                    hist.terms.setdefault(k, []).append(v)
                hist.lr.append(cur_lr)
            if measure:
                hist.grad_norm_steps.append(step)
                hist.grad_norm_total.append(gnorm)
                for k, v in gn.items():
                    hist.grad_norms.setdefault(k, []).append(v)
            if val_data is not None and ((step + 1) % val_every == 0 or step == steps - 1):
                _validate(model, loss_fn, val_data, batch_size, forward, hist, step)
            bar.update(1)
            if progress and (step % postfix_every == 0 or step == steps - 1):
                bar.set_postfix(loss=f"{values[0]:.4g}", refresh=False)
    finally:
        bar.close()
    model.to(home)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(home)
    hist.extra["seconds"] = time.perf_counter() - t0
    return hist


@torch.no_grad()
def _validate(model, loss_fn, val_data, batch_size, forward, hist, step):
    was_training = model.training
    model.eval()
    sums, count = {}, 0
    for start in range(0, val_data.n, batch_size):
        idx = torch.arange(start, min(start + batch_size, val_data.n))
        low, high = val_data.batch(idx)
        pred = forward(low)
        terms = _as_terms(loss_fn(pred, high, low), pred.device)
        n = low.shape[0]
        stats = {f"{k}": float(v) for k, v in terms.items()}
        stats["loss"] = sum(stats.values()) if "loss" not in terms else stats["loss"]
        mse = ((pred.clamp(0, 1) - high) ** 2).flatten(1).mean(1).clamp_min(1e-12)
        stats["psnr"] = float((10 * torch.log10(1.0 / mse)).mean())
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v * n
        count += n
    hist.val_steps.append(step)
    for k, v in sums.items():
        hist.val.setdefault(k, []).append(v / count)
    model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, low: torch.Tensor, batch_size: int = 32, device="auto") -> torch.Tensor:
    """Run ``model`` on ``low`` in batches, in eval mode and without gradients; return CPU tensors.

    ``low`` is (N, 3, H, W) or a single image (3, H, W) (the result then has the same rank). The
    model is moved back to where it was afterwards. A model returning a tuple (such as
    ``CurveNet(..., return_curves=True)``) contributes its first element.
    """
    if not isinstance(low, torch.Tensor):
        raise TypeError(f"low must be a torch.Tensor, got {type(low).__name__}.")
    single = low.dim() == 3
    if single:
        low = low.unsqueeze(0)
    if low.dim() != 4:
        raise ValueError(f"low must have shape (N, C, H, W) or (C, H, W), got {tuple(low.shape)}.")
    dev = resolve_device(device)
    try:
        home = next(model.parameters()).device
    except StopIteration:
        home = torch.device("cpu")
    was_training = model.training
    model.to(dev).eval()
    try:
        outs = []
        for start in range(0, low.shape[0], max(1, int(batch_size))):
            out = model(low[start:start + batch_size].to(dev).float())
            if isinstance(out, (tuple, list)):
                out = out[0]
            outs.append(out.float().cpu())
    finally:
        model.to(home).train(was_training)
    y = torch.cat(outs)
    return y[0] if single else y
