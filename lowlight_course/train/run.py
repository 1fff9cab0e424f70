"""Building a run: model and loss on the device, the optimiser with its parameter groups, precision.

Parameter groups: the model's parameters train at ``lr``; a loss module's own parameters (for
example the learned log-variances of uncertainty weighting, Kendall et al. 2018) at ``loss_lr``
(default: ``lr``). Warm-up scales every group relative to its own peak (:meth:`Run.set_lr`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .arguments import FitArguments
from .data import PairData

__all__ = ["Run", "build_run", "make_optimizer"]


def make_optimizer(optimizer, params, lr: float) -> torch.optim.Optimizer:
    """``"adam"`` / ``"adamw"`` / ``"sgd"`` (momentum 0.9), an Optimizer class, or ``params -> Optimizer``.

    ``params`` is a list of tensors, or of parameter-group dicts when the loss has parameters.
    """
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
    if isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("optimizer is an Optimizer already built on some parameters; fit builds its own "
                        "(with the loss's parameters as a group): pass the class, e.g. "
                        "optimizer=torch.optim.RMSprop, or a factory, e.g. "
                        "optimizer=lambda params: torch.optim.SGD(params, lr=0.01).")
    if callable(optimizer):
        opt = optimizer(params, lr=lr) if isinstance(optimizer, type) else optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizer returned a {type(opt).__name__}, not a torch.optim.Optimizer: "
                            f"use e.g. optimizer=lambda params: torch.optim.SGD(params, lr=0.01).")
        return opt
    raise TypeError(f"optimizer must be a name or a callable, got {type(optimizer).__name__}.")


@dataclass
class Run:
    """Everything one training run holds, built once by :func:`build_run`."""

    device: torch.device
    model: nn.Module
    loss_fn: object
    data: PairData
    val_data: PairData | None
    batch_size: int
    model_params: list
    loss_params: list
    optimizer: torch.optim.Optimizer
    peaks: list              # each param group's peak learning rate
    loss_groups: list        # indices of the groups that hold the loss's parameters
    model_group: int         # index of the (first) group that holds the model's parameters
    warmup_steps: int
    clip_grad: float | None
    amp_dtype: torch.dtype | None
    scaler: object | None

    def set_lr(self, step: int) -> list[float]:
        """Set each group's learning rate for ``step`` (linear warm-up to its own peak); return them."""
        lrs = []
        for g, peak in zip(self.optimizer.param_groups, self.peaks):
            g["lr"] = peak * min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else peak
            lrs.append(g["lr"])
        return lrs


def build_run(model: nn.Module, loss_fn, train, val, optimizer, device: torch.device,
              args: FitArguments) -> Run:
    """Put data, model and loss on ``device``; build the optimiser and the mixed-precision state."""
    data = PairData(train, device)
    val_data = PairData(val, device, "val") if val is not None else None
    model.to(device)
    model.train()
    model_params = [p for p in model.parameters() if p.requires_grad]
    loss_params = []
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
        seen = {id(p) for p in model_params}
        loss_params = [p for p in loss_fn.parameters() if p.requires_grad and id(p) not in seen]
    loss_peak = args.lr if args.loss_lr is None else args.loss_lr
    if loss_params:
        groups = [{"params": model_params}, {"params": loss_params, "lr": loss_peak}]
        opt = make_optimizer(optimizer, groups, args.lr)
    else:
        opt = make_optimizer(optimizer, model_params, args.lr)

    held = {id(p) for g in opt.param_groups for p in g["params"]}
    for what, params in (("the model's", model_params), ("the loss's", loss_params)):
        if any(id(p) not in held for p in params):
            raise ValueError(f"The optimizer does not hold {what} parameters, so they would never train: "
                             f"build it from the params fit passes, e.g. "
                             f"optimizer=lambda params: torch.optim.SGD(params, lr=0.01).")
    loss_ids = {id(p) for p in loss_params}
    loss_groups = [i for i, g in enumerate(opt.param_groups) if g["params"] and all(id(p) in loss_ids for p in g["params"])]
    peaks = [loss_peak if i in loss_groups else args.lr for i in range(len(opt.param_groups))]
    if loss_params and args.loss_lr is not None and not loss_groups:
        raise ValueError(f"loss_lr={args.loss_lr} cannot apply: the optimizer put the loss's parameters in "
                         f"a group with the model's. Keep the groups fit passes, e.g. "
                         f"optimizer=lambda params: torch.optim.SGD(params, lr=0.01).")
    model_group = next((i for i in range(len(peaks)) if i not in loss_groups), 0)

    amp_dtype = None
    if args.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    return Run(device=device, model=model, loss_fn=loss_fn, data=data, val_data=val_data,
               batch_size=min(args.batch_size, data.n), model_params=model_params,
               loss_params=loss_params, optimizer=opt, peaks=peaks, loss_groups=loss_groups,
               model_group=model_group,
               warmup_steps=args.warmup_steps, clip_grad=args.clip_grad, amp_dtype=amp_dtype, scaler=scaler)
