""":func:`fit`: check the arguments, build the run, loop over steps, record, recover."""
from __future__ import annotations

import time

import torch
from torch import nn

from .arguments import check_arguments, check_loss_fn, check_model
from .checkpoint import checkpointing
from .data import BatchOrder
from .devices import resolve_device
from .evaluate import validate
from .history import History
from .interrupts import check_cell_not_stopped
from .record import describe_run, record_step
from .recovery import Recovery
from .run import build_run
from .step import train_step

__all__ = ["fit"]


def fit(model: nn.Module, loss_fn, train, *, steps: int, batch_size: int = 16, lr: float = 1e-3,
        optimizer="adam", device="auto", amp: bool = True, seed: int = 0, progress: bool = True,
        log_every: int = 1, grad_norm_every: int = 10, val=None, val_every: int | None = None,
        desc: str | None = None, clip_grad: float | None = None, warmup_steps: int = 0,
        loss_lr: float | None = None, on_interrupt: str = "return", checkpoint=None,
        checkpoint_every: int | None = None, resume=False) -> History:
    """Train ``model`` to minimise ``loss_fn`` on ``train``; return the :class:`History`.

    Args:
        model: maps a low-light batch (B, 3, H, W) to an enhanced batch; float32 parameters
            (``model.float()``). It is trained on ``device`` and, however the run ends, moved back
            to the device it came from and to its train/eval mode (so ``model(low)`` with CPU
            tensors keeps working after training on a GPU).
        loss_fn: ``loss_fn(pred, target, low)`` -> scalar tensor or ``{name: weighted term}``
            (total = sum of the values). An ``nn.Module`` with parameters (for example learned
            uncertainty weights) has its parameters optimised too, at ``loss_lr``. A two-argument
            loss is rejected: wrap it as ``lambda pred, target, low: loss(pred, target)``.
        train: ``(low, high)`` float tensors (N, 3, H, W) of equal shape, or a Dataset of
            ``(low, high)`` pairs of (3, H, W) float tensors.
        steps: optimiser steps. Batches are drawn without replacement, epoch after epoch, in an
            order fixed by ``seed``.
        batch_size: pairs per step (capped at the data size).
        lr: peak learning rate of the model's parameters; ``warmup_steps`` ramps it up linearly
            from ``lr / warmup_steps``. fit sets every parameter group's rate at each step, so a
            rate given to an optimizer factory is replaced by ``lr`` (or ``loss_lr``).
        optimizer: ``"adam"`` (default), ``"adamw"``, ``"sgd"`` (momentum 0.9), an Optimizer class
            (called with ``lr=lr``), or a callable ``params -> Optimizer``; ``params`` is a list of
            tensors, or of two parameter groups (model, loss) when the loss has parameters.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        amp: mixed precision on CUDA only: the model runs under ``torch.autocast`` (bfloat16 where
            supported, else float16 with a ``GradScaler``); the loss is always computed in float32,
            because statistics such as SSIM's variances lose too much in half precision.
        seed: seeds batch order and the global RNGs (not the model's initial weights: seed before
            building the model, e.g. with ``models.seed_everything``).
        progress: show a ``tqdm.auto`` progress bar (safe headless: it disappears with
            ``progress=False``).
        log_every: record values every ``log_every`` steps, and the last step (the NaN check runs
            every step).
        grad_norm_every: measure each term's gradient norm every this many steps (0 or None
            disables). Costs one extra backward pass per term on those steps.
        val: optional ``(low, high)`` or Dataset; loss terms and PSNR are measured on it every
            ``val_every`` steps (default: 10 times per run) and at the end.
        desc: progress-bar label.
        clip_grad: clip the total gradient norm (model and loss parameters) to this positive value.
        warmup_steps: linear learning-rate warm-up length, 0 <= warmup_steps <= steps.
        loss_lr: peak learning rate of the loss module's own parameters (default None: ``lr``).
            Learned log-variances (Kendall et al. 2018) move about one learning rate per Adam
            step, so at ``lr=1e-3`` they barely move in a short run; ``loss_lr=0.1`` lets them
            reach their equilibrium. Warm-up scales it like ``lr``; recorded in
            ``history.loss_lr``. Ignored when the loss has no trainable parameters.
        on_interrupt: what ``KeyboardInterrupt`` during the loop does: ``"return"`` (default) prints
            one line and returns the history so far; ``"raise"`` re-raises it with ``.history``
            attached (for code that must not go on with a half-trained model, such as a cached
            check, or a cell that trains several models in a loop).
        checkpoint: a file path: save the run there every ``checkpoint_every`` steps (default a
            tenth of the run) and after the last step, atomically (model, optimiser, loss module,
            RNGs, batch order, step, history; :mod:`.checkpoint`). An existing file is replaced.
        checkpoint_every: steps between saves (needs ``checkpoint``).
        resume: ``True`` continues from ``checkpoint`` when that file exists (from step 0 when it
            does not, so one cell serves before and after a dead kernel), or a path to continue from.
            The resumed run ends as an uninterrupted one would (same machine and thread count); a
            checkpoint from another model, loss or settings raises ``CheckpointError`` saying what
            differs.

    Returns:
        The :class:`History`. Stopped by ``KeyboardInterrupt`` (Jupyter's stop button) during the
        loop, fit prints one line naming the step, and returns the history of the steps before it
        with ``history.interrupted = True`` (``on_interrupt="raise"``: it propagates instead). In a
        notebook, a later ``fit`` in the same cell then raises ``KeyboardInterrupt`` at once, so one
        press of the stop button ends a cell that trains several models (the next cell trains
        normally; see :mod:`lowlight_course.train.interrupts`).

    Raises:
        TypeError, ValueError: an argument that would train wrong, before anything moves.
        TrainingDivergedError: a model output, loss term or gradient became NaN or Inf. The message
            names the step and the term(s); ``err.history`` holds everything recorded before, and
            the model holds the weights from before that step.
        Exception: any other error inside the loop (a loss raising, returning a Python float, a
            shape error in the model) propagates as itself with ``err.history`` (steps so far) and
            ``err.step`` attached and a note naming the step (:class:`TrainingError`, raised from
            the original, only when the exception cannot take attributes). In every case the bar
            is closed and the model and loss are back on their devices.

    Example:
        >>> from lowlight_course.models import UNet
        >>> low = torch.rand(8, 3, 16, 16) * 0.2; high = (low * 4).clamp(0, 1)
        >>> h = fit(UNet(base=4, depth=1), lambda p, t, l: ((p - t) ** 2).mean(), (low, high),
        ...         steps=5, batch_size=4, progress=False)
        >>> len(h.loss)
        5
    """
    check_cell_not_stopped()
    check_model(model)
    check_loss_fn(loss_fn)
    args = check_arguments(steps=steps, batch_size=batch_size, lr=lr, loss_lr=loss_lr, seed=seed,
                           log_every=log_every, grad_norm_every=grad_norm_every, val=val,
                           val_every=val_every, clip_grad=clip_grad, warmup_steps=warmup_steps,
                           amp=amp, progress=progress, desc=desc, on_interrupt=on_interrupt)
    if not torch.is_grad_enabled():
        raise RuntimeError("fit was called with gradients disabled (inside torch.no_grad() or "
                           "torch.inference_mode()), so nothing could train: call it outside that block.")
    ckpt = checkpointing(checkpoint, checkpoint_every, resume, args.steps)
    dev = resolve_device(device)
    hist = History()
    with Recovery(model, loss_fn, hist, args.steps, absorb_interrupt=args.on_interrupt == "return") as rec:
        run = build_run(model, loss_fn, train, val, optimizer, dev, args)
        describe_run(hist, run, seed=args.seed, steps=args.steps, lr=args.lr, loss_lr=args.loss_lr,
                     optimizer=optimizer)
        val_every = args.val_every or max(1, args.steps // 10)
        torch.manual_seed(args.seed)
        batches = BatchOrder(run.data.n, run.batch_size, args.seed)
        start = ckpt.restore(run, batches, hist, args, optimizer) if ckpt else 0

        from tqdm.auto import tqdm

        rec.bar = bar = tqdm(total=args.steps, desc=args.desc or "training", disable=not args.progress,
                             leave=False, dynamic_ncols=True, mininterval=0.5, initial=start)
        postfix_every = max(1, args.steps // 50)
        rec.t0 = time.perf_counter()
        last = args.steps - 1
        for step in range(start, args.steps):
            rec.step = step
            low, high = run.data.batch(batches.next())
            lrs = run.set_lr(step)
            measure = bool(args.grad_norm_every) and step % args.grad_norm_every == 0
            result = train_step(run, low, high, step, measure)
            record_step(hist, run, step, result, lrs, logged=step % args.log_every == 0 or step == last)
            if run.val_data is not None and ((step + 1) % val_every == 0 or step == last):
                validate(run, hist, step)
            bar.update(1)
            if args.progress and (step % postfix_every == 0 or step == last):
                bar.set_postfix(loss=f"{result.values[0]:.4g}", refresh=False)
            if ckpt:
                ckpt.after_step(step, run, batches, hist, args, optimizer)
    return hist
