"""Image-quality metrics used to *measure* what a loss did: fidelity, colour, per-region errors,
noise, and the image statistics that reveal regression to the mean.

All take (B, C, H, W) float tensors in [0, 1] (sRGB) and validate them with
:mod:`lowlight_course._validation`. ``reduction="mean"`` returns a scalar (mean over the batch),
``"none"`` one value per image (B,). None of them is meant as a loss (no care is taken to keep
gradients finite everywhere, although most are differentiable).

* :func:`psnr`: peak signal-to-noise ratio, ``10 log10(L^2 / MSE)`` per image.
* :func:`ssim`: re-exported from :mod:`lowlight_course.losses.ssim` (Wang et al. 2004).
* :func:`rgb_to_lab`, :func:`delta_e`: CIE76 colour difference in CIE L*a*b* (D65).
* :func:`luminance_band_errors`: mean absolute error in dark / mid / bright regions of the target.
* :func:`noise_level`: noise standard deviation measured in flat dark patches.
* :func:`contrast`, :func:`saturation`, :func:`high_frequency_energy`: statistics that drop when a
  model regresses to the mean (duller contrast, less saturation, softer detail).
"""
from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F

from ._validation import (DataRangeWarning, ImageInputError, check_channels, check_image, check_pair,
                          check_reduction, warn_if_below_range)
from .data.color import srgb_to_linear
from .losses.ssim import ssim

__all__ = [
    "psnr", "ssim", "rgb_to_lab", "delta_e", "luminance_band_errors", "noise_level", "contrast",
    "saturation", "high_frequency_energy", "luma", "REC709_LUMA", "DataRangeWarning",
]

#: Rec. ITU-R BT.709 weights, applied here to the gamma-encoded sRGB values (luma Y').
from .data.color import REC709_LUMA  # noqa: E402  (one definition, re-exported)

# sRGB (linear) -> CIE XYZ, D65 white, IEC 61966-2-1; the same matrix as scikit-image's rgb2xyz.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
#: D65 reference white (CIE 1931 2-degree observer), X, Y, Z with Y = 1.
D65_WHITE = (0.95047, 1.0, 1.08883)


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    return per_image.mean() if reduction == "mean" else per_image


def _check_rgb(x: torch.Tensor, name: str) -> None:
    check_channels(x, name, (3,), "this colour metric")


def luma(x: torch.Tensor) -> torch.Tensor:
    """Luma Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' of sRGB values: (B, 3, H, W) -> (B, 1, H, W).

    Single-channel images are returned as they are. Any other channel count (RGBA, grey + alpha)
    is rejected with the fix (drop the alpha channel).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        check_image(x, "x", data_range=None)
    check_channels(x, "x", (1, 3), "luma")
    if x.shape[1] == 1:
        return x
    w = torch.tensor(REC709_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


# ---------------------------------------------------------------------------------------------
def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
         ) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``, per image.

    The MSE is taken per image (over channels and pixels), then the PSNRs are averaged over the
    batch (``"mean"``), as in most papers; this is not the PSNR of the batch's pooled MSE.
    Identical images give ``inf``.

    Args:
        pred, target: (B, C, H, W) in [0, data_range].
        data_range: L, the span of values (1.0 for [0, 1]; 255 for 8-bit values).
        reduction: ``"mean"`` or ``"none"`` ((B,)).

    Warns:
        DataRangeWarning: ``data_range > 1`` while every value is at most ``data_range / 100``
            ([0, 1] images scored as 8-bit: about 48 dB too high).

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 3, 8, 8)
        >>> round(float(psnr(x + 0.1, x)), 4)     # MSE 0.01 -> 20 dB
        20.0
    """
    if isinstance(data_range, bool) or not isinstance(data_range, Real) or not math.isfinite(data_range) \
            or not data_range > 0:
        raise ImageInputError(f"data_range must be a finite number > 0, got {data_range!r}: use 1.0 for "
                              f"images in [0, 1] or 255 for 8-bit values.")
    check_pair(pred, target, data_range=data_range, range_arg="data_range")
    check_reduction(reduction)
    warn_if_below_range((pred, target), float(data_range), what="psnr")
    err = ((pred.double() - target.double()) ** 2).flatten(1).mean(1)
    out = 10.0 * torch.log10(float(data_range) ** 2 / err)
    return _reduce(out.to(pred.dtype), reduction)


# ---------------------------------------------------------------------------------------------
def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE L*a*b* (D65, 2-degree observer): (B, 3, H, W) -> (B, 3, H, W).

    Steps: undo the sRGB curve (IEC 61966-2-1) to linear RGB, multiply by the sRGB -> XYZ matrix,
    divide by the D65 white, and apply the CIE 1976 L*a*b* function
    ``f(t) = t^(1/3)`` for ``t > (6/29)^3``, else ``t / (3 (6/29)^2) + 4/29``::

        L* = 116 f(Y) - 16,   a* = 500 (f(X) - f(Y)),   b* = 200 (f(Y) - f(Z))

    L* is in [0, 100]. Matches ``skimage.color.rgb2lab`` to ~1e-3.
    """
    check_image(x, "x")
    _check_rgb(x, "x")
    lin = srgb_to_linear(x)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    white = torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    t = xyz / white
    delta = 6.0 / 29.0
    f = torch.where(t > delta ** 3, t.clamp_min(delta ** 3) ** (1.0 / 3.0), t / (3 * delta ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def delta_e(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """CIE76 colour difference: Euclidean distance in CIE L*a*b* (D65), per pixel.

    ``Delta E*_ab = sqrt(dL*^2 + da*^2 + db*^2)``. About 2.3 is a just-noticeable difference
    (Sharma, "Digital Color Imaging Handbook", 2003); a colour cast from a wrong white balance is
    typically 5-20. CIE76 is the simplest Delta E; CIEDE2000 corrects its non-uniformity.

    Args:
        pred, target: (B, 3, H, W) sRGB in [0, 1].
        reduction: ``"mean"`` (scalar: mean over batch and pixels), ``"none"`` ((B,)) or ``"map"``
            ((B, H, W)).

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(delta_e(x, x))
        0.0
    """
    check_pair(pred, target)
    _check_rgb(pred, "pred")
    check_reduction(reduction, ("mean", "none", "map"))
    d2 = ((rgb_to_lab(pred) - rgb_to_lab(target)) ** 2).sum(dim=1)
    pos = d2 > 0
    de = torch.where(pos, torch.where(pos, d2, torch.ones_like(d2)).sqrt(), torch.zeros_like(d2))
    if reduction == "map":
        return de
    return _reduce(de.flatten(1).mean(1), reduction)


# ---------------------------------------------------------------------------------------------
def _band_names(bands) -> list[str]:
    if len(bands) == 4:
        return ["dark", "mid", "bright"]
    return [f"[{a:g}, {b:g})" for a, b in zip(bands[:-1], bands[1:])]


def luminance_band_errors(pred: torch.Tensor, target: torch.Tensor, bands=(0.0, 0.2, 0.6, 1.0)
                          ) -> dict[str, float]:
    """Mean absolute error of ``pred`` in dark, mid-tone and bright regions of ``target``.

    Each pixel is assigned to a band by the *target's* luma Y' (sRGB values, Rec. 709 weights):
    with the default edges, ``dark`` is Y' < 0.2, ``mid`` is 0.2 <= Y' < 0.6 and ``bright`` is
    Y' >= 0.6 (the last band includes its upper edge). The error is ``|pred - target|`` averaged
    over the pixels of the band (all images of the batch pooled) and over channels. An SSIM-only or
    MSE-only model can look fine on average and fail in the dark band.

    Args:
        pred, target: (B, C, H, W) in [0, 1], C = 3 (RGB) or 1 (grey).
        bands: increasing band edges in [0, 1]; ``n + 1`` edges give ``n`` bands. With 3 bands the
            keys are ``"dark"``, ``"mid"``, ``"bright"``, otherwise ``"[lo, hi)"``. The first and
            last bands are open-ended (a luma below the first edge counts as the first band, one
            above the last edge as the last band), so the fractions always sum to 1.

    Returns:
        ``{band: error}`` (floats) plus ``"<band>_fraction"`` keys with the share of pixels in each
        band. A band with no pixels has error ``nan``.

    Example:
        >>> import torch
        >>> t = torch.linspace(0, 1, 64).view(1, 1, 8, 8).expand(1, 3, 8, 8)
        >>> errs = luminance_band_errors(t + 0.1 * (t < 0.2), t)
        >>> round(errs["dark"], 3), errs["mid"], errs["bright"]
        (0.1, 0.0, 0.0)
    """
    check_pair(pred, target)
    check_channels(target, "target", (1, 3), "luminance bands")
    try:
        edges = [float(b) for b in bands]
    except (TypeError, ValueError):
        raise ImageInputError(f"bands must be a sequence of numbers, got {bands!r}.") from None
    if len(edges) < 2 or not all(map(math.isfinite, edges)) or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ImageInputError(f"bands must hold at least 2 strictly increasing edges, got {bands!r}: "
                              f"use (0.0, 0.2, 0.6, 1.0).")
    y = luma(target.detach())                            # (B, 1, H, W)
    err = (pred.detach() - target.detach()).abs().mean(dim=1, keepdim=True)
    out: dict[str, float] = {}
    names = _band_names(edges)
    n = y.numel()
    # The outer bands are open-ended: a target luma a little outside [edges[0], edges[-1]] (a
    # clamped network output, float rounding of the weights: 1 + 5e-4) counts in the first or
    # last band, so every pixel lands in exactly one band and the fractions sum to 1.
    index = torch.bucketize(y, torch.tensor(edges[1:-1], dtype=y.dtype, device=y.device), right=True)
    for i, name in enumerate(names):
        mask = index == i
        count = int(mask.sum())
        out[name] = float(err[mask].mean()) if count else float("nan")
        out[f"{name}_fraction"] = count / n
    return out


# ---------------------------------------------------------------------------------------------
def noise_level(img: torch.Tensor, ref: torch.Tensor | None = None, *, patch_size: int = 8,
                dark_threshold: float = 0.25, flat_threshold: float = 0.02, reduction: str = "mean"
                ) -> torch.Tensor:
    """Noise standard deviation of ``img`` measured in flat, dark patches.

    Noise is what low-light enhancement amplifies, and it is most visible where the scene is flat
    and dark. The image is cut into non-overlapping ``patch_size`` x ``patch_size`` patches.

    * With a reference ``ref`` (the clean ground truth): a patch is used when the reference there
      is dark (mean luma < ``dark_threshold``) and flat (std of its luma < ``flat_threshold``).
      The noise is the standard deviation of ``img - ref`` inside each used patch (its mean is
      removed first, so a brightness offset is not counted as noise), root-mean-squared over
      patches and channels.
    * Without a reference: a patch is used when ``img`` is dark there, and the noise is estimated
      from the high-pass residual ``r = img - box3(img)`` (3 x 3 mean filter). For white noise of
      std sigma, ``var(r) = sigma^2 (1 - 1/9)``, so sigma = ``std(r) * sqrt(9/8)``. Texture also
      passes the high-pass filter, so the *median* over patches is used (robust to the patches
      with edges). It over-estimates on textured images; prefer a reference when you have one.

    Args:
        img: (B, C, H, W) in [0, 1], C = 3 (RGB) or 1 (grey).
        ref: optional clean reference of the same shape.
        patch_size: patch side, >= 3 and <= min(H, W).
        dark_threshold: patches darker than this (mean luma) count as dark.
        flat_threshold: (with ``ref``) patches whose reference luma std is below this count as flat.
        reduction: ``"mean"`` (mean over images that have usable patches) or ``"none"`` ((B,)).

    Returns:
        Noise std in pixel-value units; ``nan`` for an image with no flat dark patch.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> ref = torch.full((1, 3, 64, 64), 0.1)
        >>> noisy = ref + 0.02 * torch.randn(1, 3, 64, 64, generator=g)
        >>> round(float(noise_level(noisy, ref)), 2)
        0.02
    """
    if ref is not None:
        check_pair(img, ref, names=("img", "ref"))
    else:
        check_image(img, "img")
    check_channels(img, "img", (1, 3), "noise_level (it measures luma)")
    check_reduction(reduction)
    for arg, value in (("dark_threshold", dark_threshold), ("flat_threshold", flat_threshold)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
            raise ImageInputError(f"{arg} must be a finite number > 0 (a luma level), got {value!r}: "
                                  f"use {0.25 if arg == 'dark_threshold' else 0.02}.")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 3:
        raise ImageInputError(f"patch_size must be an integer >= 3, got {patch_size!r}: use 8.")
    h, w = img.shape[-2:]
    if patch_size > min(h, w):
        raise ImageInputError(f"The {patch_size}x{patch_size} patch is larger than the {h}x{w} image: "
                              f"use a smaller patch_size or larger images.")
    img = img.detach()
    b, c = img.shape[:2]
    hp, wp = (h // patch_size) * patch_size, (w // patch_size) * patch_size

    def patches(t):  # (B, C, H, W) -> (B, C, P, patch_size^2)
        t = t[..., :hp, :wp]
        u = F.unfold(t.reshape(b * t.shape[1], 1, hp, wp), patch_size, stride=patch_size)
        return u.view(b, t.shape[1], patch_size * patch_size, -1).transpose(2, 3)

    if ref is not None:
        ref = ref.detach()
        y = patches(luma(ref))[:, 0]                          # (B, P, k)
        use = (y.mean(-1) < dark_threshold) & (y.std(-1, unbiased=False) < flat_threshold)
        var = patches(img - ref).var(dim=-1, unbiased=True).mean(dim=1)  # (B, P), mean over C
        out = []
        for i in range(b):
            v = var[i][use[i]]
            out.append(v.mean().sqrt() if v.numel() else torch.tensor(float("nan")))
    else:
        resid = img - F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        y = patches(luma(img))[:, 0]
        use = y.mean(-1) < dark_threshold
        sd = patches(resid).var(dim=-1, unbiased=True).mean(dim=1).sqrt() * math.sqrt(9.0 / 8.0)
        out = []
        for i in range(b):
            v = sd[i][use[i]]
            out.append(v.median() if v.numel() else torch.tensor(float("nan")))
    per_image = torch.stack([o.to(img.dtype).to(img.device) for o in out])
    if reduction == "mean":
        return per_image.nanmean() if torch.isfinite(per_image).any() else per_image.mean()
    return per_image


# ---------------------------------------------------------------------------------------------
def contrast(img: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """RMS contrast: standard deviation of the luma Y' over each image. (B, C, H, W) -> scalar / (B,).

    C = 3 (RGB) or 1 (grey).

    A model that regresses to the mean produces lower contrast than its targets.

    Example:
        >>> import torch
        >>> float(contrast(torch.full((1, 3, 8, 8), 0.5)))
        0.0
    """
    check_image(img, "img")
    check_channels(img, "img", (1, 3), "contrast (it measures luma)")
    check_reduction(reduction)
    return _reduce(luma(img).flatten(1).std(dim=1, unbiased=False), reduction)


def saturation(img: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean HSV saturation ``(max - min) / max`` over RGB, per image (0 where max is 0).

    Example:
        >>> import torch
        >>> red = torch.zeros(1, 3, 4, 4); red[:, 0] = 0.8
        >>> float(saturation(red)), float(saturation(torch.full((1, 3, 4, 4), 0.5)))
        (1.0, 0.0)
    """
    check_image(img, "img")
    _check_rgb(img, "img")
    check_reduction(reduction)
    mx = img.amax(dim=1)
    mn = img.amin(dim=1)
    pos = mx > 1e-8
    s = torch.where(pos, (mx - mn) / torch.where(pos, mx, torch.ones_like(mx)), torch.zeros_like(mx))
    return _reduce(s.flatten(1).mean(1), reduction)


def high_frequency_energy(img: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared 5-point Laplacian (valid, per channel), per image: fine detail and noise.

    ``lap = x[i-1, j] + x[i+1, j] + x[i, j-1] + x[i, j+1] - 4 x[i, j]``. Blurring lowers it; noise
    raises it, so compare it between a model's output and the clean target.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 32, 32)
        >>> bool(high_frequency_energy(x) > high_frequency_energy(x.mean(dim=(2, 3), keepdim=True).expand_as(x)))
        True
    """
    check_image(img, "img")
    check_reduction(reduction)
    if img.shape[-1] < 3 or img.shape[-2] < 3:
        raise ImageInputError(f"img must be at least 3x3 for the Laplacian, got shape {tuple(img.shape)}.")
    c = img[..., 1:-1, 1:-1]
    lap = img[..., :-2, 1:-1] + img[..., 2:, 1:-1] + img[..., 1:-1, :-2] + img[..., 1:-1, 2:] - 4 * c
    return _reduce((lap ** 2).flatten(1).mean(1), reduction)
