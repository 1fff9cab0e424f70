"""The four non-reference losses of Zero-DCE.

Zero-DCE (C. Guo, C. Li, J. Guo, C. C. Loy, J. Hou, S. Kwong, R. Cong, "Zero-Reference Deep Curve
Estimation for Low-Light Image Enhancement", CVPR 2020, arXiv:2001.06826) trains a curve-estimation
network with *no* ground-truth image. Each term compares the enhanced image ``enhanced`` with
itself, with the low-light input ``low``, or looks at the curve-parameter maps ``A``:

* :func:`spatial_consistency_loss` (L_spa): the contrast between neighbouring 4 x 4 regions of the
  enhanced image should match the contrast between the same regions of the input.
* :func:`exposure_control_loss` (L_exp): the mean intensity of each 16 x 16 patch should be near
  a well-exposedness level E = 0.6.
* :func:`color_constancy_loss` (L_col): Gray-World assumption, the mean of each colour channel over
  the whole image should be equal.
* :func:`illumination_smoothness_loss` (L_tvA): the curve-parameter maps A should vary smoothly
  (a total-variation penalty), so neighbouring pixels keep their order.

Paper versus released code. The paper writes the total loss as
``L = L_spa + L_exp + W_col L_col + W_tvA L_tvA`` with absolute values in L_spa and L_exp, a plain
sum of squared channel-mean differences in L_col and ``(|grad_x A| + |grad_y A|)^2`` in L_tvA. The
authors' released training code (github.com/Li-Chongyi/Zero-DCE, ``Zero-DCE_code/Myloss.py`` and
``lowlight_train.py``) computes squared differences in L_spa and L_exp, the square root of the sum
of *squared* squared-differences in L_col, and ``2 (mean grad_x^2 + mean grad_y^2)`` summed over
the curve channels in L_tvA, and weights the sum ``1 * L_spa + 10 * L_exp + 5 * L_col +
200 * L_tvA``. Weights only make sense together with the form they were tuned for, so the
functions here follow the **released code's forms**, and :data:`ZERO_DCE_WEIGHTS` holds the
released code's weights. One deliberate difference: the released L_spa zero-pads the pooled maps
(``padding=1``), which compares each border region with a phantom black neighbour and so penalises
brightening the image border; here only real neighbours are compared (the same lesson as SSIM's
zero padding in :mod:`lowlight_course.pitfalls`).

All functions take (B, C, H, W) float tensors and return a scalar (``reduction="mean"``) or one
value per image (``reduction="none"``, shape (B,)).
"""
from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import ImageInputError, check_channels, check_image, check_pair, check_reduction

__all__ = [
    "ZERO_DCE_WEIGHTS", "spatial_consistency_loss", "exposure_control_loss", "color_constancy_loss",
    "illumination_smoothness_loss", "SpatialConsistencyLoss", "ExposureControlLoss",
    "ColorConstancyLoss", "IlluminationSmoothnessLoss",
]

#: Weights of the four terms in the authors' released training script
#: (github.com/Li-Chongyi/Zero-DCE, ``Zero-DCE_code/lowlight_train.py``:
#: ``loss = 200*Loss_TV + loss_spa + 5*loss_col + 10*loss_exp``), verified against that file.
#: The CVPR paper's text gives different numbers for W_col and W_tvA (as we read it, 0.5 and 20,
#: with no weight on L_exp) for its own written forms of the terms; we could not reconcile the two,
#: so we use the released code's weights together with the released code's forms.
ZERO_DCE_WEIGHTS: dict[str, float] = {"spa": 1.0, "exp": 10.0, "col": 5.0, "tvA": 200.0}


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    return per_image.mean() if reduction == "mean" else per_image


def _check_int(name: str, value, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImageInputError(f"{name} must be a positive integer, got {value!r}: {fix}.")
    return value


def _check_fits(size: int, h: int, w: int, what: str) -> None:
    if size > min(h, w):
        raise ImageInputError(f"The {size}x{size} {what} is larger than the {h}x{w} image: use a smaller "
                              f"size (at most {min(h, w)}) or larger images.")


def spatial_consistency_loss(enhanced: torch.Tensor, low: torch.Tensor, region: int = 4,
                             reduction: str = "mean") -> torch.Tensor:
    """Spatial consistency loss L_spa of Zero-DCE.

    Both images are averaged over channels and over non-overlapping ``region x region`` cells
    (giving Y for ``enhanced`` and I for ``low``). For each cell i and each of its 4 neighbours j
    (left, right, up, down; only neighbours that exist)::

        L_spa = 1/K  sum_i  sum_{j in N(i)}  ((Y_i - Y_j) - (I_i - I_j))^2

    with K the number of cells. The paper writes ``(|Y_i - Y_j| - |I_i - I_j|)^2``; the released
    code (followed here) drops the absolute values, so a flipped edge is also penalised.

    Args:
        enhanced: (B, C, H, W) enhanced image in [0, 1].
        low: (B, C, H, W) low-light input in [0, 1].
        region: cell side in pixels (4 in the paper). H and W are cropped to multiples of it.
        reduction: ``"mean"`` (scalar) or ``"none"`` ((B,)).

    Example:
        >>> import torch
        >>> low = torch.rand(2, 3, 32, 32) * 0.2
        >>> float(spatial_consistency_loss(low, low))   # unchanged image: contrast preserved
        0.0
        >>> bool(spatial_consistency_loss(low * 3, low) > 0)
        True
    """
    check_pair(enhanced, low, names=("enhanced", "low"))
    check_reduction(reduction)
    region = _check_int("region", region, "use 4 as in Zero-DCE")
    _check_fits(region, enhanced.shape[-2], enhanced.shape[-1], "spatial-consistency region")
    y = F.avg_pool2d(enhanced.mean(dim=1, keepdim=True), region)
    i = F.avg_pool2d(low.mean(dim=1, keepdim=True), region)
    d = y - i                                   # (Y_i - Y_j) - (I_i - I_j) = d_i - d_j
    dh = (d[..., :, 1:] - d[..., :, :-1]) ** 2  # horizontal neighbour pairs
    dv = (d[..., 1:, :] - d[..., :-1, :]) ** 2  # vertical neighbour pairs
    k = d.shape[-2] * d.shape[-1]
    # each pair (i, j) appears twice in sum_i sum_{j in N(i)}: once from i, once from j
    per_image = 2.0 * (dh.flatten(1).sum(1) + dv.flatten(1).sum(1)) / k
    return _reduce(per_image, reduction)


def exposure_control_loss(enhanced: torch.Tensor, patch_size: int = 16, level: float = 0.6,
                          reduction: str = "mean") -> torch.Tensor:
    """Exposure control loss L_exp of Zero-DCE.

    The image is averaged over channels and over non-overlapping ``patch_size`` x ``patch_size``
    patches (Y_k, M patches), and each patch mean is pulled towards the well-exposedness level E::

        L_exp = 1/M  sum_k  (Y_k - E)^2

    The paper writes ``|Y_k - E|``; the released code (followed here) squares the difference.
    E = 0.6 in the paper ("the results are similar for E in [0.4, 0.7]").

    Args:
        enhanced: (B, C, H, W) image in [0, 1].
        patch_size: patch side in pixels (16). Rows and columns beyond a multiple are ignored.
        level: the well-exposedness level E, in [0, 1] (0.6).
        reduction: ``"mean"`` or ``"none"``.

    Example:
        >>> import torch
        >>> float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.6))) < 1e-10
        True
        >>> round(float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.1))), 4)
        0.25
    """
    check_image(enhanced, "enhanced")
    check_reduction(reduction)
    patch_size = _check_int("patch_size", patch_size, "use 16 as in Zero-DCE")
    _check_fits(patch_size, enhanced.shape[-2], enhanced.shape[-1], "exposure patch")
    if isinstance(level, bool) or not isinstance(level, Real) or not (0.0 <= level <= 1.0):
        raise ImageInputError(f"level must be a number in [0, 1], got {level!r}: use 0.6 as in Zero-DCE.")
    y = F.avg_pool2d(enhanced.mean(dim=1, keepdim=True), patch_size)
    per_image = ((y - float(level)) ** 2).flatten(1).mean(1)
    return _reduce(per_image, reduction)


def color_constancy_loss(enhanced: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Colour constancy loss L_col of Zero-DCE (Gray-World assumption).

    With J^p the mean of channel p over the image and D_pq = (J^p - J^q)^2 for the pairs
    (R, G), (R, B), (G, B)::

        L_col = sqrt(D_RG^2 + D_RB^2 + D_GB^2)

    This is the released code's form; the paper writes ``sum D_pq``. The square root has an infinite
    derivative at 0, so for a perfectly grey-balanced image the gradient is set to 0 (no NaN).

    Args:
        enhanced: (B, 3, H, W) RGB image in [0, 1].
        reduction: ``"mean"`` or ``"none"``.

    Example:
        >>> import torch
        >>> float(color_constancy_loss(torch.full((1, 3, 8, 8), 0.5)))
        0.0
        >>> cast = torch.stack([torch.full((8, 8), v) for v in (0.6, 0.5, 0.5)])[None]
        >>> round(float(color_constancy_loss(cast)), 6)    # sqrt(2 * 0.01^2)
        0.014142
    """
    check_image(enhanced, "enhanced")
    check_reduction(reduction)
    check_channels(enhanced, "enhanced", (3,), "the Gray-World colour loss")
    m = enhanced.mean(dim=(2, 3))                 # (B, 3)
    r, g, b = m.unbind(dim=1)
    s = (r - g) ** 4 + (r - b) ** 4 + (g - b) ** 4  # sum of D_pq^2
    positive = s > 0
    safe = torch.where(positive, s, torch.ones_like(s))
    per_image = torch.where(positive, safe.sqrt(), torch.zeros_like(s))
    return _reduce(per_image, reduction)


def illumination_smoothness_loss(curves: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Illumination smoothness loss L_tvA of Zero-DCE: total variation of the curve maps A.

    For curve maps A of shape (B, 3 n, H, W) (one map per colour channel and iteration, values in
    [-1, 1])::

        L_tvA = 2 * sum_c ( mean (A_c[y+1, x] - A_c[y, x])^2 + mean (A_c[y, x+1] - A_c[y, x])^2 )

    summed over all 3 n maps (released code's form; the paper writes
    ``1/N sum_n sum_c (|grad_x A_n^c| + |grad_y A_n^c|)^2``). It does not look at the image at
    all: it only asks the network to predict smooth curves, so neighbouring pixels keep their order.

    Args:
        curves: (B, K, H, W) curve parameter maps, H, W >= 2 (``CurveNet(..., return_curves=True)``).
        reduction: ``"mean"`` or ``"none"``.

    Example:
        >>> import torch
        >>> float(illumination_smoothness_loss(torch.full((1, 24, 16, 16), 0.3)))   # constant A
        0.0
    """
    check_image(curves, "curves", data_range=None)
    check_reduction(reduction)
    if curves.shape[-2] < 2 or curves.shape[-1] < 2:
        raise ImageInputError(f"curves must be at least 2x2 to have neighbours, got shape "
                              f"{tuple(curves.shape)}.")
    dh = (curves[..., 1:, :] - curves[..., :-1, :]) ** 2
    dw = (curves[..., :, 1:] - curves[..., :, :-1]) ** 2
    per_image = 2.0 * (dh.mean(dim=(2, 3)) + dw.mean(dim=(2, 3))).sum(dim=1)
    return _reduce(per_image, reduction)


class SpatialConsistencyLoss(nn.Module):
    """Module form of :func:`spatial_consistency_loss`: ``forward(enhanced, low)``.

    Example:
        >>> import torch
        >>> low = torch.rand(1, 3, 16, 16) * 0.2
        >>> float(SpatialConsistencyLoss()(low, low))
        0.0
    """

    def __init__(self, region: int = 4, reduction: str = "mean"):
        super().__init__()
        _check_int("region", region, "use 4 as in Zero-DCE")
        check_reduction(reduction)
        self.region, self.reduction = region, reduction

    def forward(self, enhanced: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return spatial_consistency_loss(enhanced, low, self.region, self.reduction)

    def extra_repr(self) -> str:
        return f"region={self.region}, reduction={self.reduction!r}"


class ExposureControlLoss(nn.Module):
    """Module form of :func:`exposure_control_loss`: ``forward(enhanced)``."""

    def __init__(self, patch_size: int = 16, level: float = 0.6, reduction: str = "mean"):
        super().__init__()
        _check_int("patch_size", patch_size, "use 16 as in Zero-DCE")
        check_reduction(reduction)
        if isinstance(level, bool) or not isinstance(level, Real) or not (0.0 <= level <= 1.0) \
                or not math.isfinite(level):
            raise ImageInputError(f"level must be a number in [0, 1], got {level!r}: use 0.6.")
        self.patch_size, self.level, self.reduction = patch_size, float(level), reduction

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return exposure_control_loss(enhanced, self.patch_size, self.level, self.reduction)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, level={self.level:g}, reduction={self.reduction!r}"


class ColorConstancyLoss(nn.Module):
    """Module form of :func:`color_constancy_loss`: ``forward(enhanced)``."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return color_constancy_loss(enhanced, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class IlluminationSmoothnessLoss(nn.Module):
    """Module form of :func:`illumination_smoothness_loss`: ``forward(curves)``."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, curves: torch.Tensor) -> torch.Tensor:
        return illumination_smoothness_loss(curves, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
