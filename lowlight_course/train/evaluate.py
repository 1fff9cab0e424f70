"""Validation during :func:`~lowlight_course.train.fit`: loss terms and PSNR on held-out pairs."""
from __future__ import annotations

import torch

from .history import History
from .run import Run
from .step import as_terms, forward

__all__ = ["validate"]


@torch.no_grad()
def validate(run: Run, hist: History, step: int) -> None:
    """Measure every loss term, the total and PSNR (dB, ``pred`` clamped to [0, 1]) on ``run.val_data``.

    Image-weighted means over the whole set, in eval mode; appended to ``hist.val`` at ``step``.
    """
    model, val_data, batch_size = run.model, run.val_data, run.batch_size
    was_training = model.training
    model.eval()
    sums, count = {}, 0
    for start in range(0, val_data.n, batch_size):
        idx = torch.arange(start, min(start + batch_size, val_data.n))
        low, high = val_data.batch(idx)
        pred = forward(run, low)
        terms = as_terms(run.loss_fn(pred, high, low), pred.device)
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
