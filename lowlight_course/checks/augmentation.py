"""Check for exercise 05: augmentation across illumination domains. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

from typing import Callable

import torch

from ._core import CheckResult, _Fail, _call, _run, _tensor, _photo_pair

__all__ = ['check_augmentation', 'reference_augment']


# ---------------------------------------------------------------------------------------------
# 05: augmentation across illumination domains
# ---------------------------------------------------------------------------------------------
def reference_augment(clean: torch.Tensor, seed: int) -> torch.Tensor:
    """Reference for exercise 05: :func:`~lowlight_course.data.simulate_low_light` with the
    ``"randomized"`` domain (random light colour, exposure and noise, each image its own draw)."""
    from ..data import simulate_low_light

    return simulate_low_light(clean, "randomized", seed=seed)


def check_augmentation(augment: Callable, verbose: bool = True) -> CheckResult:
    """Check ``augment(clean, seed) -> low`` for (B, 3, H, W) images in [0, 1]: same shape, values
    in [0, 1], darker, deterministic for a seed and independent of the global RNG, different across
    seeds, noisy, and covering a range of exposures and of warm and cool colour casts. Rejects the
    identity, a fixed (neutral) light colour, the global RNG, an ignored seed, missing clamping and
    missing noise."""

    def get(x, seed):
        out = _tensor(_call(augment, x.clone(), seed))
        if tuple(out.shape) != tuple(x.shape):
            raise _Fail(f"returned shape {tuple(out.shape)} for input {tuple(x.shape)}: keep the shape.")
        if not torch.isfinite(out).all():
            raise _Fail("the output contains NaN or Inf.")
        return out.detach().float()

    def photos():
        return torch.cat([_photo_pair("coffee", 32)[1], _photo_pair("chelsea", 32)[1]])

    def shape_range():
        out = get(photos(), 0)
        lo, hi = float(out.min()), float(out.max())
        if lo < 0 or hi > 1:
            raise _Fail(f"values span [{lo:.3f}, {hi:.3f}], expected within [0, 1]: clamp after adding noise.")

    def darker():
        x = photos()
        out = get(x, 0)
        if float(out.mean()) > 0.7 * float(x.mean()):
            raise _Fail(f"mean {float(out.mean()):.3f} vs {float(x.mean()):.3f} for the clean photos: a "
                        f"low-light augmentation must darken (exposure well below 1).")

    def deterministic():
        x = photos()
        torch.manual_seed(123)
        a = get(x, 7)
        torch.manual_seed(456)
        b = get(x, 7)
        if not torch.equal(a, b):
            raise _Fail("two calls with seed=7 differ: draw all randomness from the seed (a "
                        "torch.Generator or simulate_low_light(..., seed=seed)), not the global RNG.")

    def seeds_differ():
        x = photos()
        if torch.equal(get(x, 1), get(x, 2)):
            raise _Fail("seed=1 and seed=2 give the same output: use the seed.")

    def grey_stats(n=16):
        grey = torch.full((1, 3, 16, 16), 0.5)
        outs = torch.cat([get(grey, s) for s in range(n)])
        means = outs.mean(dim=(2, 3)).double().clamp_min(1e-4)  # (n, 3)
        return outs, means

    def casts():
        _, means = grey_stats()
        rb = torch.log(means[:, 0] / means[:, 2])
        lo, hi = float(rb.min()), float(rb.max())
        if lo > -0.05 or hi < 0.05:
            raise _Fail(f"over 16 seeds, log(R / B) of a grey image spans [{lo:.3f}, {hi:.3f}]: expected "
                        f"both warm (> 0.05) and cool (< -0.05) casts.")

    def exposures():
        _, means = grey_stats()
        y = means.mean(1)
        if float(y.max() / y.min()) < 2.0:
            raise _Fail(f"over 16 seeds the brightness of a grey image only varies from "
                        f"{float(y.min()):.3f} to {float(y.max()):.3f}: draw the exposure from a range.")

    def noisy():
        outs, _ = grey_stats(4)
        sd = outs.std(dim=(2, 3)).mean()
        if float(sd) < 0.5 / 255:
            raise _Fail(f"a flat grey image stays flat (pixel std {float(sd):.2e}): add sensor noise.")

    def untouched():
        x = photos()
        before = x.clone()
        _call(augment, x, 3)
        if not torch.equal(x, before):
            raise _Fail("the input batch was modified in place: work on a copy.")

    return _run("check_augmentation", augment, [
        ("same shape, values in [0, 1]", shape_range, "clamp to [0, 1] after noise"),
        ("darker than the clean photos", darker, "scale exposure in linear light by well under 1"),
        ("same seed, same output (whatever the global RNG)", deterministic,
         "pass seed to simulate_low_light, or use torch.Generator().manual_seed(seed)"),
        ("different seeds, different outputs", seeds_differ, ""),
        ("warm and cool colour casts across seeds", casts,
         "draw a random illuminant per image (the 'randomized' domain does)"),
        ("a range of exposures across seeds", exposures, ""),
        ("sensor noise", noisy, "add Poisson-Gaussian noise (simulate_low_light does, with noise=True)"),
        ("the input is not modified", untouched, ""),
    ], verbose)
