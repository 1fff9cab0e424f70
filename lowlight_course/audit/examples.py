"""The losses Chapter 8 audits, in the form the auditor takes.

The article's three losses, as written (re-created in :mod:`lowlight_course.pitfalls`; like the article's code
they check shapes but not the value range):

- :func:`article_mse`: plain MSE;
- :func:`article_mse_ssim`: ``{"mse": MSE, "ssim": 1 - SSIM}`` with the article's SSIM (L = 255, zero padding);
- :func:`article_combined`: ``{"mse": 0.3 MSE, "ssim": 0.3 (1 - SSIM), "hist": 0.4 histc histogram}``,
  the terms of :func:`lowlight_course.pitfalls.naive_combined_loss` (the mapping ``fit`` takes).

The course's fixes: :func:`course_l1_ssim` (Chapter 1: 0.16 L1 + 0.84 (1 - SSIM), Zhao et al. 2017) and
:func:`course_l1_ssim_hist` (plus a soft-histogram term, Chapter 3).
"""
from __future__ import annotations

import torch

from .. import pitfalls
from ..losses import HistogramLoss, l1, ssim

__all__ = ["article_mse", "article_mse_ssim", "article_combined", "course_l1_ssim", "course_l1_ssim_hist",
           "ARTICLE_LOSSES", "COURSE_LOSSES"]


def article_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The article's first loss: ``mean((pred - target)^2)``, no range check. (B, C, H, W) -> scalar."""
    return ((pred - target) ** 2).mean()


def article_mse_ssim(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """The article's second loss, term by term: ``{"mse": MSE, "ssim": 1 - SSIM}``, SSIM with L = 255 and zero
    padding. (Summed into one scalar, the flat SSIM term is invisible to every probe: MSE dominates.)"""
    return {"mse": ((pred - target) ** 2).mean(),
            "ssim": 1 - pitfalls.naive_ssim(pred, target, data_range=255.0, zero_padding=True)}


def article_combined(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """The article's combined loss 0.3 MSE + 0.3 (1 - SSIM) + 0.4 histc histogram, term by term."""
    t = pitfalls.naive_combined_loss(pred, target, terms=True)
    return {"mse": 0.3 * t["mse"], "ssim": 0.3 * t["ssim"], "hist": 0.4 * t["hist"]}


def course_l1_ssim(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Chapter 1's fix: ``{"l1": 0.16 L1, "ssim": 0.84 (1 - SSIM)}`` (SSIM with L = 1, 'valid' filtering)."""
    return {"l1": 0.16 * l1(pred, target), "ssim": 0.84 * (1 - ssim(pred, target))}


_HIST = HistogramLoss()


def course_l1_ssim_hist(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Chapter 1's fix plus Chapter 3's differentiable soft-histogram term (weight 0.1)."""
    return {**course_l1_ssim(pred, target), "hist": 0.1 * _HIST(pred, target)}


ARTICLE_LOSSES = {"MSE": article_mse, "MSE + SSIM": article_mse_ssim, "MSE + SSIM + histogram": article_combined}
COURSE_LOSSES = {"L1 + SSIM": course_l1_ssim, "L1 + SSIM + soft histogram": course_l1_ssim_hist}
