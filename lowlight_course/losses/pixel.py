"""Pixel-wise losses: mean squared error, mean absolute error and the Charbonnier loss.

Each compares ``pred`` and ``target`` pixel by pixel and averages. They are the baseline losses of
image restoration and the first thing the course measures: MSE is blind to *what kind* of error it
sees (Wang & Bovik, "Mean squared error: love it or leave it?", IEEE Signal Processing Magazine
26(1), 2009), and a model trained with it regresses to the mean.

* ``mse``: mean of ``(pred - target)^2``. Gradient ``2 (pred - target) / n``: large errors dominate.
* ``l1``: mean of ``|pred - target|``. Gradient of constant size ``sign(pred - target) / n``;
  less sensitive to outliers, favours the median.
* ``charbonnier``: mean of ``sqrt((pred - target)^2 + eps^2)``, a smooth L1 (Charbonnier, Blanc-Feraud,
  Aubert & Barlaud, "Two deterministic half-quadratic regularization algorithms for computed
  imaging", ICIP 1994; used as a loss by Lai et al., LapSRN, CVPR 2017). Quadratic for errors
  much smaller than ``eps``, linear for larger ones, differentiable everywhere. The value for a
  perfect prediction is ``eps`` (not 0); we follow LapSRN and do *not* subtract it.

``reduction``: ``"mean"`` -> scalar (mean over batch, channels, pixels); ``"none"`` -> (B,), one
value per image (mean over channels and pixels); ``"sum"`` -> scalar, the sum over every element.
"""
from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from .._validation import ImageInputError, check_pair, check_reduction

__all__ = ["mse", "l1", "charbonnier", "MSELoss", "L1Loss", "CharbonnierLoss"]

_REDUCTIONS = ("mean", "none", "sum")


def _reduce(err: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return err.mean()
    if reduction == "none":
        return err.flatten(1).mean(dim=1)
    return err.sum()


def _prepare(pred, target, data_range, reduction):
    check_pair(pred, target, data_range=data_range, range_arg="data_range")
    check_reduction(reduction, _REDUCTIONS)


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean", *,
        data_range: float | None = 1.0) -> torch.Tensor:
    """Mean squared error ``mean((pred - target)^2)``.

    Args:
        pred, target: (B, C, H, W) floating point images, values in [0, data_range].
        reduction: ``"mean"`` (scalar), ``"none"`` ((B,) per image) or ``"sum"`` (scalar).
        data_range: declared value range, used only to reject mis-scaled input (0-255 images into a
            [0, 1] loss); ``None`` skips that check.

    Example:
        >>> import torch
        >>> x = torch.zeros(2, 3, 8, 8); y = torch.full((2, 3, 8, 8), 0.5)
        >>> float(mse(x, y))
        0.25
        >>> mse(x, y, reduction="none").shape
        torch.Size([2])
    """
    _prepare(pred, target, data_range, reduction)
    return _reduce((pred - target) ** 2, reduction)


def l1(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean", *,
       data_range: float | None = 1.0) -> torch.Tensor:
    """Mean absolute error ``mean(|pred - target|)``. Arguments as in :func:`mse`.

    Example:
        >>> import torch
        >>> float(l1(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.25)))
        0.25
    """
    _prepare(pred, target, data_range, reduction)
    return _reduce((pred - target).abs(), reduction)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3, reduction: str = "mean", *,
                data_range: float | None = 1.0) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``, a smooth, robust L1.

    Args:
        eps: smoothing scale, > 0. Errors much smaller than ``eps`` are penalised quadratically.
            1e-3 as in LapSRN (Lai et al., CVPR 2017).
        Others as in :func:`mse`.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 8, 8)
        >>> round(float(charbonnier(x, x)), 6)    # eps for a perfect prediction
        0.001
    """
    if isinstance(eps, bool) or not isinstance(eps, Real) or not math.isfinite(eps) or eps <= 0:
        raise ImageInputError(f"eps must be a finite number > 0, got {eps!r}: use 1e-3.")
    _prepare(pred, target, data_range, reduction)
    return _reduce(torch.sqrt((pred - target) ** 2 + float(eps) ** 2), reduction)


class _PixelLoss(nn.Module):
    def __init__(self, reduction: str = "mean", data_range: float | None = 1.0):
        super().__init__()
        check_reduction(reduction, _REDUCTIONS)
        self.reduction = reduction
        self.data_range = data_range

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, data_range={self.data_range}"


class MSELoss(_PixelLoss):
    """Module form of :func:`mse`. Shapes: (B, C, H, W) x 2 -> scalar, or (B,) with ``"none"``.

    Example:
        >>> import torch
        >>> loss = MSELoss()(torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8))
        >>> loss.backward()
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse(pred, target, self.reduction, data_range=self.data_range)


class L1Loss(_PixelLoss):
    """Module form of :func:`l1`. Shapes as in :class:`MSELoss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l1(pred, target, self.reduction, data_range=self.data_range)


class CharbonnierLoss(_PixelLoss):
    """Module form of :func:`charbonnier`. Shapes as in :class:`MSELoss`.

    Example:
        >>> import torch
        >>> CharbonnierLoss(eps=1e-3)
        CharbonnierLoss(eps=0.001, reduction='mean', data_range=1.0)
    """

    def __init__(self, eps: float = 1e-3, reduction: str = "mean", data_range: float | None = 1.0):
        super().__init__(reduction, data_range)
        if isinstance(eps, bool) or not isinstance(eps, Real) or not math.isfinite(eps) or eps <= 0:
            raise ImageInputError(f"eps must be a finite number > 0, got {eps!r}: use 1e-3.")
        self.eps = float(eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier(pred, target, self.eps, self.reduction, data_range=self.data_range)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, " + super().extra_repr()
