"""High-dynamic-range helpers: dark-region weighting, total variation, and clipping near lights.

Night scenes with point lights span a huge range: most pixels sit near black while lamp cores clip
at 1. Three tools for the HDR chapter (``notebooks/06_hdr_detail_vs_noise.ipynb``):

* :func:`dark_weights` and :func:`dark_weighted_l1` (:class:`DarkWeightedL1Loss`): an L1 loss whose
  per-pixel weight is the inverse target luma raised to a ``strength``, ``w = (Y' + eps)^-strength``
  (normalised to mean 1 per image). ``strength = 0`` is plain L1; larger values move the loss's
  attention into the shadows, in the spirit of the luminance-adaptive weights of HDR
  reconstruction losses (e.g. the tone-mapped, mu-law losses of Kalantari & Ramamoorthi,
  "Deep High Dynamic Range Imaging of Dynamic Scenes", SIGGRAPH 2017, which also emphasise dark
  values relative to bright ones).
* :func:`total_variation` (:class:`TVLoss`): the anisotropic total variation of an image
  (Rudin, Osher & Fatemi, "Nonlinear total variation based noise removal algorithms", Physica D
  1992), a smoothness prior that suppresses noise and, with it, real fine detail.
* :func:`light_masks` and :func:`clipped_fraction`: where the lamps are in a target, the ring of
  pixels around them, and the share of a ring's pixels that an enhanced image blows out to white.

All take (B, C, H, W) float tensors in [0, 1] and validate them (``docs/CONTRACTS.md``).
"""
from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import ImageInputError, check_image, check_pair, check_reduction
from .metrics import luma

__all__ = ["dark_weights", "dark_weighted_l1", "DarkWeightedL1Loss", "total_variation", "TVLoss",
           "light_masks", "clipped_fraction"]


def _check_real(name: str, value, *, low: float, fix: str, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not (value > low if strict else value >= low):
        op = ">" if strict else ">="
        raise ImageInputError(f"{name} must be a number {op} {low:g}, got {value!r}: {fix}.")
    return float(value)


def dark_weights(target: torch.Tensor, strength: float = 1.0, eps: float = 0.05) -> torch.Tensor:
    """Per-pixel weights ``(Y' + eps)^-strength`` of ``target``, normalised to mean 1 per image.

    ``Y'`` is the target's luma (Rec. 709 weights on the sRGB values). With ``eps = 0.05`` and
    ``strength = 1`` a black pixel weighs ``1.05 / 0.05 = 21`` times a white one; with
    ``strength = 2``, 441 times. The weights carry no gradient (they depend on the target only).

    Args:
        target: (B, C, H, W) in [0, 1].
        strength: the exponent, >= 0 (0 gives all ones).
        eps: > 0, keeps the weight of black pixels finite.

    Returns:
        (B, 1, H, W) weights with mean 1 over each image.

    Example:
        >>> t = torch.cat([torch.zeros(1, 3, 4, 2), torch.ones(1, 3, 4, 2)], dim=-1)
        >>> w = dark_weights(t, strength=1.0, eps=0.05)
        >>> round(float(w[0, 0, 0, 0] / w[0, 0, 0, -1]), 3)
        21.0
    """
    check_image(target, "target")
    strength = _check_real("strength", strength, low=0.0, fix="use 0 (plain L1) to 2")
    eps = _check_real("eps", eps, low=0.0, strict=True, fix="use 0.05")
    w = (luma(target.detach()) + eps) ** (-strength)
    return w / w.mean(dim=(2, 3), keepdim=True)


def dark_weighted_l1(pred: torch.Tensor, target: torch.Tensor, strength: float = 1.0, eps: float = 0.05,
                     reduction: str = "mean") -> torch.Tensor:
    """L1 loss with each pixel weighted by :func:`dark_weights` of the target.

    ``loss = mean_{c, pixels} w |pred - target|`` with ``w = (Y'_target + eps)^-strength / mean``.
    Because the weights have mean 1, ``strength`` only *moves* emphasis between dark and bright
    pixels; it does not change the overall scale of the loss.

    Args:
        pred, target: (B, C, H, W) in [0, 1].
        strength: >= 0; 0 is plain L1.
        eps: > 0.
        reduction: ``"mean"`` (scalar) or ``"none"`` ((B,)).

    Example:
        >>> t = torch.rand(2, 3, 8, 8)
        >>> bool(torch.isclose(dark_weighted_l1(t + 0.1, t, strength=0.0), torch.tensor(0.1)))
        True
    """
    check_pair(pred, target)
    check_reduction(reduction)
    w = dark_weights(target, strength, eps)
    per_image = (w * (pred - target).abs()).flatten(1).mean(1)
    return per_image.mean() if reduction == "mean" else per_image


class DarkWeightedL1Loss(nn.Module):
    """Module form of :func:`dark_weighted_l1`: ``DarkWeightedL1Loss(strength, eps)(pred, target)``.

    Example:
        >>> loss = DarkWeightedL1Loss(strength=1.0)
        >>> float(loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)))
        0.0
    """

    def __init__(self, strength: float = 1.0, eps: float = 0.05, reduction: str = "mean"):
        super().__init__()
        self.strength = _check_real("strength", strength, low=0.0, fix="use 0 (plain L1) to 2")
        self.eps = _check_real("eps", eps, low=0.0, strict=True, fix="use 0.05")
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dark_weighted_l1(pred, target, self.strength, self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"strength={self.strength:g}, eps={self.eps:g}"


def total_variation(img: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Anisotropic total variation: ``mean |x[i+1, j] - x[i, j]| + mean |x[i, j+1] - x[i, j]|``.

    Averaged over channels and pixel pairs, so it does not grow with the image size. A flat image
    has TV 0; white noise of std sigma has TV about ``2 * 2 sigma / sqrt(pi)`` (each difference has
    std ``sigma sqrt 2``). Rudin, Osher & Fatemi (1992).

    Args:
        img: (B, C, H, W), H and W at least 2.
        reduction: ``"mean"`` or ``"none"`` ((B,)).

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:] = 1.0     # one vertical edge
        >>> round(float(total_variation(x)), 4)              # 4 of 12 horizontal pairs differ by 1
        0.3333
    """
    check_image(img, "img")
    check_reduction(reduction)
    if img.shape[-1] < 2 or img.shape[-2] < 2:
        raise ImageInputError(f"img must be at least 2x2 for total variation, got shape {tuple(img.shape)}.")
    dv = (img[..., 1:, :] - img[..., :-1, :]).abs().flatten(1).mean(1)
    dh = (img[..., :, 1:] - img[..., :, :-1]).abs().flatten(1).mean(1)
    per_image = dv + dh
    return per_image.mean() if reduction == "mean" else per_image


class TVLoss(nn.Module):
    """Module form of :func:`total_variation` (of the prediction alone): ``TVLoss()(pred)``."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor) -> torch.Tensor:
        return total_variation(pred, self.reduction)


def light_masks(target: torch.Tensor, core_threshold: float = 0.97, ring: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the lamp cores of ``target`` and of the ring of pixels around them.

    A *core* pixel has target luma >= ``core_threshold`` (a clipped lamp). The *ring* holds every
    pixel within ``ring`` pixels (Chebyshev distance: a max-pool dilation) of a core pixel that is
    not itself a core pixel: the surroundings a lamp lights up, where an over-brightening loss
    blows the image out.

    Args:
        target: (B, C, H, W) in [0, 1].
        core_threshold: luma threshold of a core, in (0, 1].
        ring: ring width in pixels (default ``max(1, W // 16)``).

    Returns:
        ``(core, ring)``, boolean tensors of shape (B, 1, H, W).

    Example:
        >>> t = torch.zeros(1, 3, 9, 9); t[..., 4, 4] = 1.0
        >>> core, ring = light_masks(t, ring=1)
        >>> int(core.sum()), int(ring.sum())
        (1, 8)
    """
    check_image(target, "target")
    core_threshold = _check_real("core_threshold", core_threshold, low=0.0, strict=True, fix="use 0.97")
    if core_threshold > 1:
        raise ImageInputError(f"core_threshold must be at most 1, got {core_threshold!r}: use 0.97.")
    if ring is None:
        ring = max(1, target.shape[-1] // 16)
    if isinstance(ring, bool) or not isinstance(ring, int) or ring < 1:
        raise ImageInputError(f"ring must be a positive integer (pixels), got {ring!r}.")
    core = luma(target.detach()) >= core_threshold
    grown = F.max_pool2d(core.float(), 2 * ring + 1, stride=1, padding=ring) > 0
    return core, grown & ~core


def clipped_fraction(img: torch.Tensor, mask: torch.Tensor | None = None, threshold: float = 0.99) -> float:
    """Share of the pixels in ``mask`` where ``img`` is blown out (any channel >= ``threshold``).

    Args:
        img: (B, C, H, W) in [0, 1].
        mask: boolean (B, 1, H, W) (e.g. the ring from :func:`light_masks`); ``None`` = all pixels.
        threshold: a channel at or above it counts as clipped (0.99: the top 3 codes of 8 bits).

    Returns:
        A float in [0, 1]; ``nan`` if the mask is empty.

    Example:
        >>> x = torch.zeros(1, 3, 2, 2); x[0, 0, 0, 0] = 1.0
        >>> clipped_fraction(x)
        0.25
    """
    check_image(img, "img")
    threshold = _check_real("threshold", threshold, low=0.0, strict=True, fix="use 0.99")
    clipped = (img.detach() >= threshold).any(dim=1, keepdim=True)
    if mask is None:
        return float(clipped.float().mean())
    if not isinstance(mask, torch.Tensor) or mask.shape != clipped.shape:
        raise ImageInputError(f"mask must be a boolean tensor of shape {tuple(clipped.shape)}, got "
                              f"{getattr(mask, 'shape', type(mask).__name__)}: use light_masks(target).")
    n = int(mask.sum())
    return float((clipped & mask.bool()).sum()) / n if n else float("nan")
