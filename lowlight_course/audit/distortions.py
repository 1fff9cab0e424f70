"""Chapter 1's six distortions, each scaled to the same MSE, plus Chapter 5's light-colour and exposure changes.

:func:`equal_mse_panel` returns ``{name: distorted image}`` for mean shift, contrast, blur, noise, colour cast
and quantisation, each with one strength found by bisection so that its MSE against ``image`` is ``target_mse``
(within 1 %). :func:`illuminant_and_exposure` returns a tungsten-coloured and an under-exposed copy (both in
linear light, back to sRGB) at the same MSE.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["equal_mse_panel", "illuminant_and_exposure", "DISTORTIONS"]


def _mean_shift(x, s, _n):
    return (x + s).clamp(0, 1)


def _contrast(x, s, _n):
    m = x.mean(dim=(-2, -1), keepdim=True)
    return (m + (1 - s) * (x - m)).clamp(0, 1)


def _blur(x, s, _n):
    s = max(float(s), 1e-3)
    r = min(int(3 * s) + 1, x.shape[-1] // 2 - 1)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype) ** 2 / (2 * s * s))
    g = g / g.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _noise(x, s, n):
    return (x + s * n).clamp(0, 1)


def _cast(x, s, _n):
    return (x * torch.tensor([1 + s, 1.0, 1 - s], dtype=x.dtype).view(1, 3, 1, 1)).clamp(0, 1)


def _quantise(x, s, _n):
    s = max(float(s), 1e-4)
    return (torch.floor(x / s) * s + s / 2).clamp(0, 1)


#: name -> (function(x, strength, noise), lowest strength, highest strength)
DISTORTIONS = {"mean shift": (_mean_shift, 0.0, 0.5), "contrast": (_contrast, 0.0, 1.0), "blur": (_blur, 0.01, 8.0),
               "noise": (_noise, 0.0, 0.5), "colour cast": (_cast, 0.0, 1.0), "quantisation": (_quantise, 0.001, 0.6)}


def _calibrate(fn, x, lo, hi, target_mse, iterations=30):
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(((fn(x, mid) - x) ** 2).mean()) < target_mse else (lo, mid)
    return (lo + hi) / 2


def equal_mse_panel(image: torch.Tensor, noise: torch.Tensor, target_mse: float = 0.0025) -> dict:
    """``{name: distorted}`` for (B, 3, H, W) ``image`` in [0, 1]; ``noise`` is a N(0, 1) field of its shape."""
    out = {}
    for name, (fn, lo, hi) in DISTORTIONS.items():
        s = _calibrate(lambda x, v: fn(x, v, noise), image, lo, hi, target_mse)
        out[name] = fn(image, s, noise)
    return out


def illuminant_and_exposure(image: torch.Tensor, target_mse: float = 0.0025) -> dict:
    """``{"illuminant": ..., "exposure": ...}``: Chapter 5's tungsten light colour (its gains, raised to a
    strength) and a plain exposure drop, both applied in linear light, at the same MSE against ``image``."""
    from ..data import get_domain, linear_to_srgb, srgb_to_linear

    gains = torch.tensor(get_domain("indoor_tungsten").illuminant, dtype=image.dtype).view(1, 3, 1, 1)
    lin = srgb_to_linear(image)

    def illum(x, s):
        return linear_to_srgb((srgb_to_linear(x) * gains ** s).clamp(0, 1))

    def expo(x, s):
        return linear_to_srgb(srgb_to_linear(x) * (1 - s))

    del lin
    return {"illuminant": illum(image, _calibrate(illum, image, 0.0, 1.0, target_mse)),
            "exposure": expo(image, _calibrate(expo, image, 0.0, 1.0, target_mse))}
