"""Checks for exercise 06: noise in flat dark regions. See :mod:`lowlight_course.checks`.

- :func:`check_noise_estimator`: the build, ``noise_in_flat_dark_patches(img, ref, patch_size=8, dark=0.25)``;
- :func:`check_gain_prediction`: the prediction (how much a 4x gain multiplies the noise);
- :func:`check_denoise_choice`: the open task (less noise in the dark without losing the detail).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch

from ._core import CheckResult, Mistake, _Fail, _call, _run, _scalar, _close, _gen, _tensor
from .balancing import check_prediction

__all__ = ["check_noise_estimator", "reference_noise_in_flat_dark_patches", "NOISE_MISTAKES",
           "check_gain_prediction", "measured_gain_ratio", "check_denoise_choice", "denoise_metrics",
           "DENOISE_TARGETS", "night_pair"]

REREAD_06 = "Lecture 6, section 4.2 (noise and detail: what actually moves them)"
_LUMA = (0.2126, 0.7152, 0.0722)


def reference_noise_in_flat_dark_patches(img, ref, patch_size: int = 8, dark: float = 0.25) -> float:
    """Reference for exercise 06: :func:`lowlight_course.metrics.noise_level` with a reference.

    Non-overlapping ``patch_size`` patches (the incomplete border dropped); a patch is used where the
    *reference's* luma (Rec. 709) has mean < ``dark`` and std < 0.02; the noise is the std of
    ``img - ref`` in each used patch, its mean removed, root-mean-squared over patches and channels;
    ``nan`` when no patch is used."""
    from ..metrics import noise_level

    return float(noise_level(img, ref, patch_size=patch_size, dark_threshold=dark))


def _scratch(img, ref, patch_size=8, dark=0.25, *, reduce="rms", mask_from="ref", weights="luma", stride=None,
             threshold=None, demean=True, empty=float("nan"), variance=False):
    """A parametrised from-scratch estimator: the reference with defaults, each mistake by one switch."""
    k = int(patch_size)
    step = k if stride is None else int(stride)
    thr = dark if threshold is None else threshold
    w = torch.tensor(_LUMA if weights == "luma" else (1 / 3, 1 / 3, 1 / 3), dtype=img.dtype).view(1, 3, 1, 1)
    src = ref if mask_from == "ref" else img
    y = (src * w).sum(1, keepdim=True)
    d = img - ref
    yp = y.unfold(2, k, step).unfold(3, k, step).flatten(-2)
    dp = d.unfold(2, k, step).unfold(3, k, step).flatten(-2)
    use = (yp.mean(-1) < thr) & (yp.std(-1, unbiased=False) < 0.02)
    if not bool(use.any()):
        return empty
    var = dp.var(-1, unbiased=False) if demean else (dp ** 2).mean(-1)
    per_patch = var.mean(1, keepdim=True)[use]  # channel-mean variance of each used patch
    if reduce == "rms":
        v = float(per_patch.mean())
        return v if variance else math.sqrt(v)
    sd = per_patch.sqrt()
    return float(sd.mean() if reduce == "mean" else sd.median())


def _m(name, why, **switches):
    return Mistake(name, why, REREAD_06, fn=lambda img, ref, patch_size=8, dark=0.25: _scratch(
        img, ref, patch_size, dark, **switches))


NOISE_MISTAKES = (
    _m("the mean of the per-patch deviations", "averaging standard deviations under-weights the noisiest patches; "
       "noise powers (variances) add, so average the variances and take the root.", reduce="mean"),
    _m("the median of the per-patch deviations", "the median ignores the noisiest patches altogether.", reduce="median"),
    _m("channel mean instead of luma", "the eye's brightness is luma (0.2126 R + 0.7152 G + 0.0722 B); a plain channel "
       "mean calls a dark blue patch bright.", weights="mean"),
    _m("the dark/flat mask taken from the noisy image", "noise makes flat patches look textured and an offset makes "
       "dark ones look bright: choose the patches on the clean reference.", mask_from="img"),
    _m("overlapping patches", "sliding windows reach into the border that does not fill a whole patch and count "
       "pixels several times.", stride=1),
    _m("half-overlapping patches", "windows must not overlap: each pixel belongs to one patch.", stride=4),
    _m("dark threshold 0.5", "a patch is dark below a mean luma of `dark` (0.25 by default).", threshold=0.5),
    _m("dark threshold 0.2", "a patch is dark below a mean luma of `dark` (0.25 by default).", threshold=0.2),
    _m("the dark argument ignored", "use the threshold the caller passes.", threshold=0.25),
    _m("a brightness offset counted as noise", "remove each patch's mean error first: an offset is an error, not "
       "noise.", demean=False),
    _m("0 instead of nan when no patch qualifies", "0 claims a perfectly clean image; nan says 'not measurable'.",
       empty=0.0),
    _m("a variance instead of a standard deviation", "take the square root at the end.", variance=True),
)


def check_noise_estimator(noise_in_flat_dark_patches: Callable, verbose: bool = True) -> CheckResult:
    """Check ``noise_in_flat_dark_patches(img, ref, patch_size=8, dark=0.25) -> float`` against
    :func:`reference_noise_in_flat_dark_patches` (5 % tolerance: sample or population std both pass).
    Cases built so that each of :data:`NOISE_MISTAKES` gives a different number: patches with
    different noise levels (mean/median vs RMS), a dark blue region (luma vs channel mean), strong
    noise and an offset on a flat reference (mask from the noisy image), a border strip that does not
    fill a patch (overlap), regions at mean luma 0.1 / 0.22 / 0.3 (threshold), ``dark=0.15``."""

    def get(img, ref, **kw):
        return _scalar(_call(noise_in_flat_dark_patches, img, ref, **kw))

    def compare(img, ref, what, **kw):
        want = reference_noise_in_flat_dark_patches(img, ref, **kw)
        got = get(img, ref, **kw)
        if math.isnan(want):
            if not math.isnan(got):
                raise _Fail(f"{what}: got {got:.4g}, expected nan (no flat dark patch).")
            return
        if math.isnan(got):
            raise _Fail(f"{what}: got nan, expected {want:.4g}.")
        _close(got, want, rtol=0.05, what=what)

    def noise(shape, sigma, seed):
        return sigma * torch.randn(shape, generator=_gen(seed))

    def flat_dark():
        ref = torch.full((1, 3, 32, 32), 0.1)
        compare(ref + noise(ref.shape, 0.02, 0), ref, "noise of std 0.02 on a flat dark image")

    def uneven():
        ref = torch.full((1, 3, 32, 32), 0.1)
        n = noise(ref.shape, 0.01, 7)
        n[..., :8, :] *= 4  # one row of patches in four is four times noisier
        compare(ref + n, ref, "std 0.01 in three rows of patches, 0.04 in the fourth")

    def offset():
        ref = torch.full((1, 3, 32, 32), 0.1)
        compare(ref + 0.05 + noise(ref.shape, 0.02, 1), ref, "noise of std 0.02 plus a 0.05 brightness offset")

    def strong_noise():
        ref = torch.full((1, 3, 32, 32), 0.15)
        compare((ref + 0.12 + noise(ref.shape, 0.04, 8)).clamp(0, 1), ref,
                "strong noise (std 0.04) and an offset of 0.12 on a flat dark reference")

    def blue():
        ref = torch.full((1, 3, 32, 32), 0.1)
        ref[:, :, :, 16:] = torch.tensor([0.05, 0.05, 0.7]).view(3, 1, 1)  # dark in luma, not in channel mean
        n = noise(ref.shape, 0.01, 9)
        n[..., 16:] *= 3
        compare(ref + n, ref, "a dark grey half (std 0.01) and a dark blue half (std 0.03)")

    def thresholds():
        ref = torch.full((1, 3, 48, 32), 0.1)
        ref[:, :, 16:32] = 0.22 / sum(_LUMA)
        ref[:, :, 32:] = 0.3 / sum(_LUMA)
        n = noise(ref.shape, 0.01, 10)
        n[:, :, 16:32] *= 2
        n[:, :, 32:] *= 4
        img = ref + n
        compare(img, ref, "regions of mean luma 0.1, 0.22 and 0.3 with std 0.01, 0.02, 0.04")
        compare(img, ref, "the same with dark=0.15", dark=0.15)

    def border():
        ref = torch.full((1, 3, 36, 36), 0.1)
        n = noise(ref.shape, 0.01, 11)
        n[..., 32:, :] *= 5
        n[..., :, 32:] *= 5
        compare(ref + n, ref, "a 36 x 36 image whose 4-pixel border (outside whole patches) is noisier")

    def dark_only():
        ref = torch.full((1, 3, 32, 32), 0.1)
        ref[..., 16:] = 0.8
        n = noise(ref.shape, 0.01, 2)
        n[..., 16:] *= 5
        compare((ref + n).clamp(0, 1), ref, "std 0.01 in the dark half, 0.05 in the bright half")

    def flat_only():
        ref = torch.full((1, 3, 32, 32), 0.1)
        checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2
        ref[..., 16:] = 0.05 + 0.15 * checker[:, 16:]
        n = noise(ref.shape, 0.01, 3)
        n[..., 16:] *= 5
        compare((ref + n).clamp(0, 1), ref, "std 0.01 in flat dark patches, 0.05 in dark textured ones")

    def none_qualify():
        ref = torch.full((1, 3, 16, 16), 0.7)
        got = get(ref + noise(ref.shape, 0.01, 4), ref)
        if not math.isnan(got):
            raise _Fail(f"a bright image has no flat dark patch, expected nan, got {got:.4g}.")

    def night():
        from ..data import procedural_scene

        ref = procedural_scene("night", 64, seed=0)[None]
        img = (ref + noise(ref.shape, 0.02, 6)).clamp(0, 1)
        compare(img, ref, "noise of std 0.02 on a night scene")
        compare(img, ref, "the same with patch_size=16", patch_size=16)

    return _run("check_noise_estimator", noise_in_flat_dark_patches, [
        ("flat dark image", flat_dark, "the spread of the error inside each patch"),
        ("patches with different noise levels", uneven, "noise powers add: combine patches as variances"),
        ("a brightness offset is not noise", offset, "remove each patch's mean error before measuring its spread"),
        ("patches chosen on the reference", strong_noise, "the clean reference says where the scene is flat and dark"),
        ("dark means dark in luma", blue, "luma weights the channels as the eye does"),
        ("the dark threshold and the dark argument", thresholds, "dark: mean luma below `dark`"),
        ("non-overlapping patches, incomplete border dropped", border, "each pixel in at most one whole patch"),
        ("only dark patches count", dark_only, ""),
        ("only flat patches count", flat_only, "flat: the reference's luma varies little inside the patch"),
        ("no usable patch gives nan", none_qualify, "not measurable is nan, not 0"),
        ("a night scene, two patch sizes", night, ""),
    ], verbose, mistakes=NOISE_MISTAKES, reference=reference_noise_in_flat_dark_patches, reread=REREAD_06,
        same=lambda a, b: _close_or_nan(a, b))


def _close_or_nan(a, b) -> bool:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 0.02 * abs(b) + 1e-9


# ---------------------------------------------------------------------------------------------
# prediction and open task on one night scene
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _night_pair_cached(size: int):
    from ..data import procedural_scene, simulate_low_light

    ref = procedural_scene("night", size, seed=0)[None]
    low = simulate_low_light(ref, "outdoor_daylight", seed=0, exposure=0.1, out_bits=None)
    return ref, low


def night_pair(size: int = 64):
    """(ref, low): the exercise's night scene (procedural, seed 0) and its version at exposure 0.1."""
    ref, low = _night_pair_cached(int(size))
    return ref.clone(), low.clone()


def measured_gain_ratio(low_gain: float = 4.0, high_gain: float = 8.0) -> float:
    """Noise in flat dark patches of ``(low * high_gain).clamp(0, 1)`` over that of
    ``(low * low_gain).clamp(0, 1)`` on the night pair (both against the clean reference)."""
    ref, low = night_pair()
    n_lo = reference_noise_in_flat_dark_patches((low * low_gain).clamp(0, 1), ref)
    n_hi = reference_noise_in_flat_dark_patches((low * high_gain).clamp(0, 1), ref)
    return n_hi / n_lo


def check_gain_prediction(predict: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 06's prediction: ``predict() -> factor`` by which going from a 4x to an 8x gain
    multiplies the noise in flat dark patches (within 0.3 of the measured factor)."""
    r = measured_gain_ratio(4.0, 8.0)
    return check_prediction(
        "check_gain_prediction", predict, r, tol=0.3, verbose=verbose,
        explain=f"measured {r:.2f}: a gain multiplies signal and noise alike, so the noise's standard deviation "
                f"doubles with the gain (dark patches never reach the clamp at 1). Brightening alone never "
                f"improves the signal-to-noise ratio (Lecture 6, section 4.2). (From 1x the ratio is smaller: "
                f"far from the reference, the error in a patch also holds the reference's own faint texture.)")


#: exercise 06's targets for :func:`check_denoise_choice`, relative to the plain 8x gain.
DENOISE_TARGETS = {"gain": 8.0, "noise_ratio": 0.25, "detail_ratio": 0.945}


def denoise_metrics(denoise: Callable) -> dict:
    """``enhanced = (low * 8).clamp(0, 1)`` on the night pair, then ``denoise(enhanced)``: returns
    ``{"noise": .., "detail": .., "noise_plain": .., "detail_plain": ..}`` where noise is measured in
    the reference's flat dark patches (:func:`reference_noise_in_flat_dark_patches`) and detail is the
    mean absolute error to the reference in its *textured* patches (luma std >= 0.02, 8 x 8)."""
    ref, low = night_pair()
    enhanced = (low * DENOISE_TARGETS["gain"]).clamp(0, 1)
    out = denoise(enhanced.clone())
    return _denoise_numbers(out, enhanced, ref)


def _detail_error(x, ref, k=8):
    w = torch.tensor(_LUMA, dtype=ref.dtype).view(1, 3, 1, 1)
    y = (ref * w).sum(1, keepdim=True).unfold(2, k, k).unfold(3, k, k).flatten(-2)
    err = (x - ref).abs().unfold(2, k, k).unfold(3, k, k).flatten(-2).mean(-1).mean(1, keepdim=True)
    textured = y.std(-1, unbiased=False) >= 0.02
    return float(err[textured].mean())


def _denoise_numbers(out, enhanced, ref):
    return {"noise": reference_noise_in_flat_dark_patches(out, ref),
            "detail": _detail_error(out, ref),
            "noise_plain": reference_noise_in_flat_dark_patches(enhanced, ref),
            "detail_plain": _detail_error(enhanced, ref)}


def check_denoise_choice(denoise: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 06's open task: ``denoise(enhanced) -> image`` (same shape, in [0, 1]) must bring the
    noise in flat dark patches of the 8x-brightened night scene to at most 25 % of the plain gain's
    while its error in the textured patches drops to at most 94.5 % of the plain gain's
    (``DENOISE_TARGETS``): too little smoothing misses the first, too much the second. The function
    never sees the reference."""
    ref, low = night_pair()
    enhanced = (low * DENOISE_TARGETS["gain"]).clamp(0, 1)

    def case():
        out = _tensor(_call(denoise, enhanced.clone(), what="your denoise"))
        if tuple(out.shape) != tuple(enhanced.shape):
            raise _Fail(f"returned shape {tuple(out.shape)}, expected {tuple(enhanced.shape)}.")
        out = out.detach().float()
        if not torch.isfinite(out).all() or float(out.min()) < -1e-6 or float(out.max()) > 1 + 1e-6:
            raise _Fail("the result must be finite and within [0, 1].")
        m = _denoise_numbers(out, enhanced, ref)
        problems = []
        if not m["noise"] <= DENOISE_TARGETS["noise_ratio"] * m["noise_plain"]:
            problems.append(f"noise in flat dark patches {m['noise']:.4f}, want <= "
                            f"{DENOISE_TARGETS['noise_ratio'] * m['noise_plain']:.4f} "
                            f"({DENOISE_TARGETS['noise_ratio']:.0%} of the plain gain's)")
        if not m["detail"] <= DENOISE_TARGETS["detail_ratio"] * m["detail_plain"]:
            problems.append(f"error in textured patches {m['detail']:.4f}, want <= "
                            f"{DENOISE_TARGETS['detail_ratio'] * m['detail_plain']:.4f} "
                            f"({DENOISE_TARGETS['detail_ratio']:.1%} of the plain gain's): too much smoothing erases "
                            f"real detail, too little leaves the noise in it")
        if problems:
            raise _Fail("; ".join(problems) + ".")

    return _run("check_denoise_choice", denoise, [
        ("a quarter of the noise in the dark, less error in the detail", case, ""),
    ], verbose, timeout=30.0)
