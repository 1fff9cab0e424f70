"""sRGB <-> linear light, and luminance.

Pixel values in an 8-bit photograph are *gamma-encoded*: the sRGB transfer curve spends more code
values on dark tones, where the eye is most sensitive. Light adds up, and sensor noise behaves, in
*linear* units, so every physical step of the low-light simulation happens on linear values.

Reference: IEC 61966-2-1:1999, "Multimedia systems and equipment - Colour measurement and
management - Part 2-1: Default RGB colour space - sRGB". The curve is piecewise: a straight line
near black (slope 12.92) joined to a 2.4 power law.
"""
from __future__ import annotations

import torch

__all__ = ["srgb_to_linear", "linear_to_srgb", "luminance", "REC709_LUMA"]

#: Relative luminance weights of linear sRGB / Rec. 709 primaries (IEC 61966-2-1, ITU-R BT.709).
REC709_LUMA = (0.2126, 0.7152, 0.0722)

_SRGB_THRESHOLD = 0.04045      # encoded value where the line meets the power law
_LINEAR_THRESHOLD = 0.0031308  # the same point in linear units (0.04045 / 12.92)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Decode sRGB values in [0, 1] to linear light (IEC 61966-2-1).

    ``L = V / 12.92`` for ``V <= 0.04045``, else ``L = ((V + 0.055) / 1.055) ** 2.4``.
    Values are clamped to [0, 1] first. Works on any shape.

    Example:
        >>> srgb_to_linear(torch.tensor([0.0, 0.5, 1.0]))
        tensor([0.0000, 0.2140, 1.0000])
    """
    x = x.clamp(0.0, 1.0)
    low = x / 12.92
    high = ((x + 0.055) / 1.055) ** 2.4
    return torch.where(x <= _SRGB_THRESHOLD, low, high)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Encode linear light in [0, 1] as sRGB (IEC 61966-2-1), the inverse of :func:`srgb_to_linear`.

    ``V = 12.92 L`` for ``L <= 0.0031308``, else ``V = 1.055 L ** (1 / 2.4) - 0.055``.
    Values are clamped to [0, 1] first (the power of a negative number is undefined).
    """
    x = x.clamp(0.0, 1.0)
    low = 12.92 * x
    # clamp_min keeps the unused branch finite for x == 0 (its gradient would be inf)
    high = 1.055 * x.clamp_min(_LINEAR_THRESHOLD) ** (1.0 / 2.4) - 0.055
    return torch.where(x <= _LINEAR_THRESHOLD, low, high)


def luminance(linear: torch.Tensor) -> torch.Tensor:
    """Relative luminance Y of *linear* RGB, channel dimension -3: shape (..., 3, H, W) -> (..., H, W)."""
    if not isinstance(linear, torch.Tensor) or linear.dim() < 3 or linear.shape[-3] != 3:
        shape = tuple(linear.shape) if isinstance(linear, torch.Tensor) else type(linear).__name__
        raise ValueError(f"luminance needs linear RGB of shape (..., 3, H, W), got {shape}: drop an alpha "
                         f"channel with x[..., :3, :, :], or repeat a grey one with x.expand(..., 3, H, W).")
    w = torch.tensor(REC709_LUMA, dtype=linear.dtype, device=linear.device).view(3, 1, 1)
    return (linear * w).sum(dim=-3)
