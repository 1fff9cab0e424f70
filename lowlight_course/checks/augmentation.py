"""Checks for exercise 05: augmentation across illumination domains. See :mod:`lowlight_course.checks`.

- :func:`check_augmentation`: the build, ``augment(clean, seed) -> low-light batch``;
- :func:`check_gray_world_prediction`: the prediction (is the gray-world term 0 at the right answer?);
- :func:`check_domain_coverage`: the open task (an illuminant distribution that covers the indoor
  domains and keeps daylight common).

Randomness differs between any two correct augmentations, so these checks do not compare outputs
with a reference: each case measures one physical property on flat test images (means and
standard deviations over thousands of pixels) and, when it fails, names the mistake it proves.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import CheckResult, _Fail, _call, _run, _tensor, _photo_pair
from .balancing import check_prediction

__all__ = ["check_augmentation", "reference_augment", "check_gray_world_prediction", "measured_gray_world",
           "check_domain_coverage", "domain_casts", "COVERAGE_TARGETS"]

REREAD_05 = "Lecture 0 (the simulation steps, in linear light) and Lecture 5, section 5 (illuminant augmentation)"


def reference_augment(clean: torch.Tensor, seed: int) -> torch.Tensor:
    """Reference for exercise 05: :func:`~lowlight_course.data.simulate_low_light` with the
    ``"randomized"`` domain (random light colour, exposure and noise, each image its own draw)."""
    from ..data import simulate_low_light

    return simulate_low_light(clean, "randomized", seed=seed)


def _lin(x):
    from ..data import srgb_to_linear

    return srgb_to_linear(x.clamp(0, 1).double())


def _two_level(n=1, a=0.5, b=1.0, size=64):
    """(n, 3, size, size) flat images: left half sRGB ``a``, right half sRGB ``b``."""
    x = torch.full((n, 3, size, size), float(b))
    x[..., : size // 2] = float(a)
    return x


def check_augmentation(augment: Callable, verbose: bool = True) -> CheckResult:
    """Check ``augment(clean, seed) -> low`` for (B, 3, H, W) sRGB images in [0, 1].

    Cases: same shape and values in [0, 1]; darker; same seed same output whatever the global RNG;
    seeds differ; each image of a batch has its own draw; exposure and light act in linear light
    (the ratio of two flat regions' linear means is kept, whatever the exposure); the result is sRGB
    again; warm and cool casts on a bright-enough grey (not noise: means over 2048 pixels); a range
    of exposures; sensor noise that grows with the signal (shot noise), not a fixed level; the input
    untouched. Each failing case names the mistake it proves."""

    def get(x, seed):
        out = _tensor(_call(augment, x.clone(), seed))
        if tuple(out.shape) != tuple(x.shape):
            raise _Fail(f"returned shape {tuple(out.shape)} for input {tuple(x.shape)}: keep the shape.",
                        mistake="wrong shape")
        if not torch.isfinite(out).all():
            raise _Fail("the output contains NaN or Inf.")
        return out.detach().double()

    def photos():
        return torch.cat([_photo_pair("coffee", 32)[1], _photo_pair("chelsea", 32)[1]])

    def shape_range():
        out = get(photos(), 0)
        lo, hi = float(out.min()), float(out.max())
        if lo < 0 or hi > 1:
            raise _Fail(f"values span [{lo:.3f}, {hi:.3f}], expected within [0, 1]: noise can leave the valid "
                        f"range, so bring the values back into it.", mistake="no clamping")

    def darker():
        x = photos()
        out = get(x, 0)
        if float(out.mean()) > 0.7 * float(x.mean()):
            raise _Fail(f"mean {float(out.mean()):.3f} vs {float(x.mean()):.3f} for the clean photos: a "
                        f"low-light augmentation must darken (exposure well below 1).", mistake="no darkening")

    def deterministic():
        x = photos()
        torch.manual_seed(123)
        a = get(x, 7)
        torch.manual_seed(456)
        b = get(x, 7)
        if not torch.equal(a, b):
            raise _Fail("two calls with seed=7 differ: every random number must come from the seed, not from "
                        "torch's global random state.", mistake="global RNG instead of the seed")

    def seeds_differ():
        x = photos()
        if torch.equal(get(x, 1), get(x, 2)):
            raise _Fail("seed=1 and seed=2 give the same output: use the seed.", mistake="seed ignored")

    def per_image():
        x = _two_level(8)
        out = _lin(get(x, 5)).mean(dim=(1, 2, 3))
        if float(out.max() / out.min().clamp_min(1e-6)) < 1.5:
            raise _Fail(f"eight identical images in one batch came out equally bright (linear means "
                        f"{float(out.min()):.4f} to {float(out.max()):.4f}): each image needs its own exposure "
                        f"and light, or a batch teaches only one condition per step.",
                        mistake="one random draw for the whole batch")

    def usable(seeds=range(32)):
        """(seed, linear output, linear means of the dark and bright halves per channel, raw output) for
        the seeds where the bright half is well exposed (sRGB mean > 0.2) and the dark half's noise is
        small next to its mean (so clamping and 8-bit steps do not bias the means)."""
        rows = []
        for s in seeds:
            raw = get(_two_level(), s)[0]
            out = _lin(raw)
            dark, bright = out[..., :32].mean(dim=(1, 2)), out[..., 32:].mean(dim=(1, 2))
            cv = float((out[..., :32].std(dim=(1, 2)) / dark.clamp_min(1e-9)).max())
            if float(raw[..., 32:].mean()) > 0.2 and cv < 0.5:
                rows.append((s, out, dark, bright, raw))
        if len(rows) < 3:
            raise _Fail(f"only {len(rows)} of {len(seeds)} seeds leave a white region (sRGB 1.0) brighter than "
                        f"sRGB 0.2: either the exposures are too low (draw from about 1/100 to 1/3) or the result "
                        f"is still linear light (convert back to sRGB at the end).",
                        mistake="too dark: exposure range, or not converted back to sRGB")
        return rows

    def linear_light():
        want = float(_lin(torch.tensor(0.5)) / _lin(torch.tensor(1.0)))
        for s, _, dark, bright, raw in usable():
            r = float((dark / bright).mean())
            if abs(r / want - 1) <= 0.15:
                continue
            r_srgb = float(raw[..., :32].mean() / raw[..., 32:].mean())
            if abs(r_srgb - 0.5) < 0.05:
                raise _Fail(f"two flat regions of sRGB 0.5 and 1.0 keep their sRGB ratio 0.5 (seed {s}): the "
                            f"exposure and light were applied to sRGB values. They multiply *linear* light: "
                            f"convert from sRGB first (their linear ratio, {want:.3f}, must be kept).",
                            mistake="darkened sRGB values instead of linear light")
            if abs(r_srgb / want - 1) < 0.15:
                raise _Fail(f"the raw output keeps the *linear* ratio {want:.3f} of the two regions (seed {s}): "
                            f"it is still linear light. Convert back to sRGB at the end.",
                            mistake="not converted back to sRGB")
            raise _Fail(f"two flat regions of sRGB 0.5 and 1.0 should keep their ratio in linear light "
                        f"({want:.3f}) after darkening; seed {s} gives {r:.3f}. Exposure and light colour "
                        f"multiply linear light: convert from sRGB, darken, convert back.")

    def casts():
        rb = []
        for s in range(32):  # the bright half, wherever it is clearly above the noise floor
            raw = get(_two_level(), s)[0]
            bright = _lin(raw)[..., 32:].mean(dim=(1, 2))
            if float(raw[..., 32:].mean()) > 0.1:
                rb.append(math.log(float(bright[0]) / max(float(bright[2]), 1e-6)))
        if len(rb) < 3:
            return  # too dark to tell (named by the linear-light case)
        lo, hi = min(rb), max(rb)
        if lo > -0.1 or hi < 0.1:
            raise _Fail(f"over the seeds, log(R / B) of a bright grey (means over 2048 pixels, so not noise) spans "
                        f"[{lo:.3f}, {hi:.3f}]: expected both warm (> 0.1) and cool (< -0.1) light. Draw a light "
                        f"colour per image.", mistake="a fixed (neutral) light colour")

    def exposures():
        means = []
        for s in range(16):
            means.append(float(_lin(get(_two_level(), s)).mean()))
        if max(means) / max(min(means), 1e-9) < 3.0:
            raise _Fail(f"over 16 seeds the linear brightness only varies from {min(means):.4f} to "
                        f"{max(means):.4f}: draw the exposure from a range (log-uniform).", mistake="a fixed exposure")

    def shot_noise():
        ratios, floor = [], []
        for _, out, dark, bright, _ in usable():
            sd_dark = float(out[..., 4:28, 4:28].std(dim=(1, 2)).mean())
            sd_bright = float(out[..., 4:28, 36:60].std(dim=(1, 2)).mean())
            floor.append(sd_bright)
            if sd_dark > 0:
                ratios.append(sd_bright / sd_dark)
        if max(floor, default=0) < 2e-4:
            raise _Fail("a flat grey stays flat: add sensor noise (shot noise that grows with the signal, plus a "
                        "small read noise).", mistake="no noise")
        ratios.sort()
        median = ratios[len(ratios) // 2] if ratios else 1.0
        if median < 1.3:
            raise _Fail(f"the noise is as strong in a region 4.7x darker as in the bright one (median std ratio "
                        f"{median:.2f}): real sensor noise is mostly shot noise, whose variance grows with the "
                        f"signal.", mistake="fixed-level Gaussian noise instead of shot noise")

    def untouched():
        x = photos()
        before = x.clone()
        _call(augment, x, 3)
        if not torch.equal(x, before):
            raise _Fail("the input batch was modified in place: work on a copy.", mistake="modifies its input in place")

    return _run("check_augmentation", augment, [
        ("same shape, values in [0, 1]", shape_range, "after adding noise, keep values valid"),
        ("darker than the clean photos", darker, "a low-light version lets through a fraction of the light"),
        ("same seed, same output (whatever the global RNG)", deterministic,
         "make a generator from the seed and draw everything from it"),
        ("different seeds, different outputs", seeds_differ, ""),
        ("each image of a batch gets its own draw", per_image, "loop over the images, or draw one value per image"),
        ("exposure and light act in linear light", linear_light, "Lecture 0: sRGB to linear, multiply, back to sRGB"),
        ("warm and cool colour casts across seeds", casts, "a random light colour per image (Lecture 5, section 5)"),
        ("a range of exposures across seeds", exposures, ""),
        ("noise that grows with the signal", shot_noise, "shot noise: variance proportional to the linear signal"),
        ("the input is not modified", untouched, ""),
    ], verbose, reread=REREAD_05, timeout=20.0)


# ---------------------------------------------------------------------------------------------
# prediction: is the gray-world term zero at the right answer?
# ---------------------------------------------------------------------------------------------
def measured_gray_world() -> dict:
    """Zero-DCE's gray-world colour-constancy term at the *clean* coffee photo (the right answer
    for the model) and at its tungsten-lit low-light version brightened to the same mean:
    ``{"clean": value, "tungsten": value, "zero_at_clean": "yes" | "no"}``."""
    from ..data import load_image, simulate_low_light
    from ..losses import color_constancy_loss

    clean = load_image("coffee", 64)[None]
    low = simulate_low_light(clean, "indoor_tungsten", seed=0, noise=False, out_bits=None)
    low = (low * (clean.mean() / low.mean().clamp_min(1e-6))).clamp(0, 1)
    at_clean, at_low = float(color_constancy_loss(clean)), float(color_constancy_loss(low))
    return {"clean": at_clean, "tungsten": at_low, "zero_at_clean": "yes" if at_clean < 1e-6 else "no"}


def check_gray_world_prediction(predict: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 05's prediction: ``predict() -> "yes" | "no"``: is the gray-world term zero at the
    clean photo (the output we want)?"""
    m = measured_gray_world()
    return check_prediction(
        "check_gray_world_prediction", predict, m["zero_at_clean"], choices=("yes", "no"), verbose=verbose,
        explain=f"the term is {m['clean']:.4g} at the clean coffee photo (and {m['tungsten']:.4g} at its tungsten "
                f"version): gray-world assumes every scene averages to grey, so it penalises a scene's real colours "
                f"and pulls the right answer away from itself. Lecture 5, section 5 measured it: colour-constancy "
                f"terms did not close the gap; illuminant augmentation, a change of data, did.")


# ---------------------------------------------------------------------------------------------
# open task: an illuminant distribution that covers the domains
# ---------------------------------------------------------------------------------------------
#: exercise 05's targets for :func:`check_domain_coverage` over 32 seeds.
COVERAGE_TARGETS = {"seeds": 32, "near_neutral": 0.25, "neutral_band": 0.1, "cool": -0.3}


def _cast(x, ref):
    from ..data import srgb_to_linear

    m = srgb_to_linear(x).mean(dim=(2, 3)).clamp_min(1e-6)
    c = srgb_to_linear(ref).mean(dim=(2, 3))
    return (torch.log(m[:, 0] / m[:, 2]) - torch.log(c[:, 0] / c[:, 2])).double()


def domain_casts() -> dict:
    """Colour cast (log R/B of the mean linear colour, relative to the clean photo) of the course's
    named domains on the coffee photo (48 px, no noise): ``{domain: cast}``."""
    from ..data import load_image, simulate_low_light

    clean = load_image("coffee", 48)[None]
    return {d: float(_cast(simulate_low_light(clean, d, seed=0, noise=False, out_bits=None), clean)[0])
            for d in ("outdoor_daylight", "indoor_tungsten", "indoor_fluorescent")}


def check_domain_coverage(augment: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 05's open task. Over 32 seeds on the coffee photo, the casts ``augment`` produces
    must reach past the warmest named domain's cast (tungsten) on the warm side and past -0.3 (or
    the coolest domain's) on the cool side (shade, blue hour), so both ends are inside the training
    distribution, while at least 25 % of the
    seeds stay within +-0.1 of neutral (daylight stays common: Lecture 5 found that randomising
    everything made the small model worse)."""
    from ..data import load_image

    target = domain_casts()

    def case():
        clean = load_image("coffee", 48)[None]
        casts = []
        for s in range(COVERAGE_TARGETS["seeds"]):
            out = _tensor(_call(augment, clean.clone(), s))
            if tuple(out.shape) != tuple(clean.shape):
                raise _Fail(f"returned shape {tuple(out.shape)}, expected {tuple(clean.shape)}.")
            casts.append(float(_cast(out.detach().clamp(0, 1), clean)[0]))
        lo, hi = min(casts), max(casts)
        near = sum(abs(c) <= COVERAGE_TARGETS["neutral_band"] for c in casts) / len(casts)
        warm, cool = max(target.values()), min(min(target.values()), COVERAGE_TARGETS["cool"])
        problems = []
        if hi < warm:
            problems.append(f"the warmest cast {hi:+.2f} does not reach the warmest domain's {warm:+.2f}")
        if lo > cool:
            problems.append(f"the coolest cast {lo:+.2f} does not reach the coolest domain's {cool:+.2f}")
        if near < COVERAGE_TARGETS["near_neutral"]:
            problems.append(f"only {near:.0%} of seeds are within +-{COVERAGE_TARGETS['neutral_band']} of neutral "
                            f"(want >= {COVERAGE_TARGETS['near_neutral']:.0%})")
        if problems:
            raise _Fail("; ".join(problems) + f". Domain casts: {({k: round(v, 2) for k, v in target.items()})}.")

    return _run("check_domain_coverage", augment, [
        ("covers the indoor casts and keeps daylight common", case, ""),
    ], verbose, timeout=30.0)
