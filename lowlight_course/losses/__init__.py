"""Losses for low-light image enhancement, each a function plus an ``nn.Module`` class.

* pixel losses: :func:`mse`, :func:`l1`, :func:`charbonnier` (:mod:`.pixel`)
* structure: :func:`ssim`, :class:`SSIMLoss`, :func:`gaussian_window` (:mod:`.ssim`)
* tone: :func:`soft_histogram`, :class:`HistogramLoss` (:mod:`.histogram`)
* non-reference terms of Zero-DCE (:mod:`.zero_dce`)
* a weighted combination that reports each term's gradient: :class:`WeightedLoss` (:mod:`.weighted`)

All take (B, C, H, W) float tensors in [0, 1] and validate them; see ``docs/CONTRACTS.md``.
"""
from .histogram import HistogramLoss, hard_histogram, soft_histogram
from .pixel import CharbonnierLoss, L1Loss, MSELoss, charbonnier, l1, mse
from .ssim import SSIMLoss, gaussian_window, ssim
from .weighted import BALANCE_STRATEGIES, LossReport, WeightedLoss
from .zero_dce import (
    ZERO_DCE_WEIGHTS,
    ColorConstancyLoss,
    ExposureControlLoss,
    IlluminationSmoothnessLoss,
    SpatialConsistencyLoss,
    color_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    spatial_consistency_loss,
)

__all__ = [
    "mse", "l1", "charbonnier", "MSELoss", "L1Loss", "CharbonnierLoss",
    "ssim", "SSIMLoss", "gaussian_window",
    "soft_histogram", "hard_histogram", "HistogramLoss",
    "ZERO_DCE_WEIGHTS", "spatial_consistency_loss", "exposure_control_loss", "color_constancy_loss",
    "illumination_smoothness_loss", "SpatialConsistencyLoss", "ExposureControlLoss",
    "ColorConstancyLoss", "IlluminationSmoothnessLoss",
    "WeightedLoss", "LossReport", "BALANCE_STRATEGIES",
]
