"""Check for exercise 06: noise in flat dark patches. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import CheckResult, _Fail, _call, _run, _scalar, _close, _gen

__all__ = ['check_noise_estimator', 'reference_noise_in_flat_dark_patches']


# ---------------------------------------------------------------------------------------------
# 06: noise in flat dark patches
# ---------------------------------------------------------------------------------------------
def reference_noise_in_flat_dark_patches(img, ref, patch_size: int = 8) -> float:
    """Reference for exercise 06: :func:`lowlight_course.metrics.noise_level` with a reference."""
    from ..metrics import noise_level

    return float(noise_level(img, ref, patch_size=patch_size))


def check_noise_estimator(noise_in_flat_dark_patches: Callable, verbose: bool = True) -> CheckResult:
    """Check ``noise_in_flat_dark_patches(img, ref, patch_size=8) -> float`` against
    :func:`lowlight_course.metrics.noise_level` (conventions: non-overlapping patches; a patch is
    used where the reference's luma has mean < 0.25 and std < 0.02; noise = std of ``img - ref``
    in the patch, its mean removed; root-mean-square over patches and channels; ``nan`` when no
    patch qualifies). Sample or population std both pass (5 % tolerance). Rejects: counting a
    brightness offset as noise, using bright or textured patches, returning 0 instead of nan,
    returning a variance."""
    from ..metrics import noise_level

    def get(img, ref, **kw):
        return _scalar(_call(noise_in_flat_dark_patches, img, ref, **kw))

    def compare(img, ref, what, **kw):
        want = float(noise_level(img, ref, **kw))
        got = get(img, ref, **kw)
        if math.isnan(want):
            if not math.isnan(got):
                raise _Fail(f"{what}: got {got:.4g}, expected nan (no flat dark patch).")
            return
        _close(got, want, rtol=0.05, what=what)

    def noise(shape, sigma, seed):
        return sigma * torch.randn(shape, generator=_gen(seed))

    def flat_dark():
        ref = torch.full((1, 3, 32, 32), 0.1)
        compare(ref + noise(ref.shape, 0.02, 0), ref, "noise of std 0.02 on a flat dark image")

    def offset():
        ref = torch.full((1, 3, 32, 32), 0.1)
        compare(ref + 0.05 + noise(ref.shape, 0.02, 1), ref, "noise of std 0.02 plus a 0.05 brightness offset")

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

    def photo():
        from ..data import load_image

        ref = load_image("astronaut", 64)[None] * 0.25
        compare((ref + noise(ref.shape, 0.03, 5)).clamp(0, 1), ref, "noise of std 0.03 on a dark photograph")

    def night():
        from ..data import procedural_scene

        ref = procedural_scene("night", 64, seed=0)[None]
        img = (ref + noise(ref.shape, 0.02, 6)).clamp(0, 1)
        compare(img, ref, "noise of std 0.02 on a night scene")
        compare(img, ref, "the same with patch_size=16", patch_size=16)

    return _run("check_noise_estimator", noise_in_flat_dark_patches, [
        ("flat dark image", flat_dark, "std of img - ref inside each patch, root-mean-square over patches"),
        ("a brightness offset is not noise", offset, "remove each patch's mean difference before the std"),
        ("only dark patches count", dark_only, "use a patch only where the reference's mean luma < 0.25"),
        ("only flat patches count", flat_only, "use a patch only where the reference's luma std < 0.02"),
        ("no usable patch gives nan", none_qualify, "return float('nan') when no patch qualifies, not 0"),
        ("a dark photograph", photo, "luma = 0.2126 R + 0.7152 G + 0.0722 B of the reference"),
        ("a night scene, two patch sizes", night, "cut non-overlapping patch_size x patch_size patches"),
    ], verbose)
