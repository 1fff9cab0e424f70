"""Checks for exercise 03: soft histograms (any smooth kernel: :func:`check_soft_histogram`; the
triangular kernel the exercise asks for: :func:`check_triangular_histogram`), the bin-mass prediction,
and the tone-curve task (open-ended).

Exercise 03 varies Lecture 3: the lecture's soft histogram has a Gaussian kernel; the exercise's
has a *triangular* one (linear interpolation between the two nearest bin centres), so the check
holds the learner to that kernel and recognises the lecture's Gaussian as a mistake here.
"""
from __future__ import annotations

from typing import Callable

import torch

from ._core import (CheckResult, Mistake, _Fail, _call, _gen, _grad, _photo_pair, _run, _same, _tensor,
                    check_answer)

__all__ = ["check_soft_histogram", "check_triangular_histogram", "check_histogram_prediction",
           "check_tone_curve", "reference_triangular_histogram", "histogram_distance",
           "SOFT_HISTOGRAM_MISTAKES", "TRIANGULAR_MISTAKES"]

_BUILD = "Lecture 3, section 2 (A soft histogram, from scratch)"
_DEAD = "Lecture 3, section 1 (The article's histogram term has no gradient)"
_BANDWIDTH = "Lecture 3, section 3 (The bandwidth trade-off)"
_TRAIN = "Lecture 3, section 5 (Training with a histogram loss: alone, and next to L1)"


# ---------------------------------------------------------------------------------------------
# Kernels with switches for each known mistake
# ---------------------------------------------------------------------------------------------
def _centres(bins, dtype, how="mid"):
    j = torch.arange(bins, dtype=dtype)
    return {"mid": (j + 0.5) / bins, "edge": j / bins, "linspace": torch.linspace(0, 1, bins, dtype=dtype)}[how]


def _hist(x, bins=16, *, kernel="triangular", width=1.0, centres="mid", per_pixel=True, reduce="mean",
          value_scale=1.0, dtype=torch.float64):
    """Per-image, per-channel histograms (B, C, bins) of ``x`` in [0, 1], computed in ``dtype``."""
    v = (x.to(dtype) / value_scale).clamp(0, 1).flatten(2)[..., None]        # (B, C, N, 1)
    d = (v - _centres(bins, dtype, centres)) * bins                          # offsets in bins
    if kernel == "triangular":
        k = (1 - d.abs() / width).clamp_min(0)
    else:  # Gaussian with a bandwidth of `width` / 2 bins (the lecture's half-bin Gaussian at width 1)
        k = torch.exp(-d ** 2 / (2 * (0.5 * width) ** 2))
    if per_pixel:
        k = k / k.sum(-1, keepdim=True).clamp_min(1e-30)
    return k.sum(2) if reduce == "sum" else k.mean(2)


def reference_triangular_histogram(x: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """Reference for exercise 03: the triangular-kernel soft histogram, (B, C, H, W) -> (B, C, bins).

    Bin ``j`` has its centre at ``(j + 0.5) / bins``; a pixel of value ``v`` (clamped to [0, 1]) puts
    weight ``max(0, 1 - |v - c_j| * bins)`` on bin ``j`` (linear interpolation between the two nearest
    centres); each pixel's weights are normalised to sum 1 (this only matters in the outer half bins),
    then averaged over the pixels of each image and channel. Each row sums to 1.
    """
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    return _hist(x, bins, dtype=dtype)


def histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images and channels of the L1 distance between two (B, C, bins) histograms."""
    return float((a.double() - b.double()).abs().sum(-1).mean())


def _some_rows_normalised(args, kwargs, value) -> bool:
    if not isinstance(value, torch.Tensor) or value.dim() != 3:
        return False
    sums = value.detach().double().sum(-1).flatten()
    ok = (sums - 1).abs() < 1e-3
    return bool(ok.any()) and not bool(ok.all())


def _flat_offsets(calls_args, kwargs, value):
    """(v, offset in bins of the histogram's centre of mass from v) for a call on a flat image, else None."""
    x = calls_args[0]
    if not isinstance(value, torch.Tensor) or value.dim() != 3 or not isinstance(x, torch.Tensor):
        return None
    v = float(x.flatten()[0])
    bins = value.shape[-1]
    if not bool((x == v).all()) or not 1.0 / bins <= v <= 1 - 1.0 / bins:
        return None
    h = value.detach().double()[0, 0]
    if not bool(torch.isfinite(h).all()) or float(h.sum()) <= 0:
        return None
    centroid = float((h * torch.arange(bins, dtype=torch.float64)).sum() / h.sum())
    return v, centroid + 0.5 - v * bins


def _shifted_centres(args, kwargs, value) -> bool:
    found = _flat_offsets(args, kwargs, value)
    return found is not None and abs(found[1] - 0.5) < 0.06


def _linspace_centres(args, kwargs, value) -> bool:
    found = _flat_offsets(args, kwargs, value)  # centres j / (bins - 1) put v off by (0.5 - v) bins
    return found is not None and abs(found[0] - 0.5) >= 0.15 and abs(found[1] - (0.5 - found[0])) < 0.06


def _no_gradient(args, kwargs, value) -> bool:
    return args[0].requires_grad and not (isinstance(value, torch.Tensor) and value.requires_grad)


def _histc(x, bins=16):
    flat = x.detach().double().clamp(0, 1).reshape(-1, x.shape[2] * x.shape[3])
    h = torch.stack([torch.histc(r, bins=bins, min=0, max=1) for r in flat]).view(x.shape[0], x.shape[1], bins)
    return h / h.sum(-1, keepdim=True)


def _common_mistakes(kernel: str, reread: str, exact: bool):
    """The mistakes any soft histogram can have. ``exact``: replay them with ``kernel`` (a check that asks
    for one kernel); otherwise recognise the misplaced centres from flat images, whatever the kernel."""
    def h(**kw):
        return lambda x, bins=16: _hist(x, bins, kernel=kernel, **kw)

    return (
        Mistake("bin centres shifted by half a bin (j / bins)", "bin j covers [j / bins, (j + 1) / bins], so its "
                "centre is (j + 0.5) / bins; at j / bins every value lands half a bin too high.", reread,
                **({"fn": h(centres="edge")} if exact else {"test": _shifted_centres})),
        Mistake("bin centres from an evenly spaced grid from 0 to 1 inclusive", "that puts the first and last "
                "centres on 0 and 1 and spaces the others 1 / (bins - 1) apart, so values land up to half a bin "
                "off, more towards the ends.", reread,
                **({"fn": h(centres="linspace")} if exact else {"test": _linspace_centres})),
        Mistake("normalisation of only some rows", "every (image, channel) row must sum to 1; some of yours do "
                "and some do not.", reread, test=_some_rows_normalised),
        Mistake("each pixel's weights not normalised", "a pixel near 0 or 1 then loses part of its unit of mass "
                "off the ends of [0, 1], so rows of dark or bright images sum to less than 1.", reread,
                fn=h(per_pixel=False)),
        Mistake("counts instead of fractions (a sum over the pixels)", "the histogram then grows with the image "
                "size; average over the pixels so each row sums to 1.", reread, fn=h(reduce="sum")),
        Mistake("bins over [0, 255]", "the images are in [0, 1]: the bins must cover [0, 1].", reread,
                fn=h(value_scale=255.0)),
        Mistake("the bins in reverse order", "bin 0 holds the darkest values.", reread,
                fn=lambda x, bins=16: _hist(x, bins, kernel=kernel).flip(-1)),
        Mistake("a hard histogram (torch.histc or counting)", "counting has no gradient: the loss built on it is "
                "dead.", _DEAD, fn=lambda x, bins=16: _histc(x, bins)),
        Mistake("the result has no gradient", "a detached tensor, numpy or counting cuts the autograd graph.",
                _DEAD, test=_no_gradient),
    )


SOFT_HISTOGRAM_MISTAKES = _common_mistakes("gaussian", _BUILD, exact=False) + (
    Mistake("a kernel far too wide (several bins)", "the histogram blurs into a smooth bump that no longer "
            "resembles the image's.", _BANDWIDTH, fn=lambda x, bins=16: _hist(x, bins, kernel="gaussian", width=8.0)),
)

TRIANGULAR_MISTAKES = _common_mistakes("triangular", _BUILD, exact=True) + (
    Mistake("the lecture's Gaussian kernel instead of the triangular one", "the exercise asks for linear "
            "interpolation between the two nearest bin centres: weight 1 - |distance in bins|, zero beyond one "
            "bin.", _BUILD, fn=lambda x, bins=16: _lecture_histogram(x, bins)),
    Mistake("a Gaussian kernel evaluated at the bin centres", "the exercise asks for the triangular kernel: "
            "weight 1 - |distance in bins|, zero beyond one bin.", _BUILD,
            fn=lambda x, bins=16: _hist(x, bins, kernel="gaussian")),
    Mistake("a triangle two bins wide on each side", "the triangle reaches zero one bin width from its centre, so "
            "a value between two centres shares its mass between those two bins only.", _BANDWIDTH,
            fn=lambda x, bins=16: _hist(x, bins, width=2.0)),
    Mistake("a triangle half a bin wide", "narrower than one bin, a value midway between two centres gets no "
            "weight at all before normalising.", _BANDWIDTH, fn=lambda x, bins=16: _hist(x, bins, width=0.5)),
)


def _lecture_histogram(x, bins=16):
    from ..losses import soft_histogram

    return soft_histogram(x, bins)


def _photos():
    low, clean = _photo_pair("coffee", 48)
    return torch.cat([clean, low, _photo_pair("chelsea", 48)[1]])


def _get(fn, x, bins, *, what=None):
    out = _tensor(_call(fn, x, bins), what or "your function")
    want = (x.shape[0], x.shape[1], bins)
    if tuple(out.shape) != want:
        raise _Fail(f"returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)} and bins={bins}, "
                    f"expected {want}: one histogram per image and per channel.")
    if not torch.isfinite(out).all():
        raise _Fail("the histogram contains NaN or Inf.")
    return out


def _normalised_case(fn):
    def case():
        h = _get(fn, _photos(), 16).detach()
        if float(h.min()) < -1e-6:
            raise _Fail(f"a bin is negative ({float(h.min()):.3g}): masses must be >= 0.")
        sums = h.double().sum(-1).flatten()
        bad = (sums - 1).abs() > 1e-3
        if bad.any():
            raise _Fail(f"{int(bad.sum())} of {sums.numel()} rows do not sum to 1 (sums "
                        f"{[round(v, 3) for v in sums.tolist()]}).")
    return case


def _gradient_case(fn, check_values: bool):
    def case():
        x = _photos()[:1].clone().requires_grad_(True)
        out = _get(fn, x, 16)
        weights = torch.linspace(-1, 1, 16, dtype=out.dtype)
        grad = _grad(out, x, weights, what="the histogram")
        frac = float((grad.abs() > 0).float().mean())
        if frac < 0.5:
            raise _Fail(f"only {frac:.0%} of the pixels get a gradient: the kernel must change smoothly with "
                        f"the pixel value, for every pixel.")
        if check_values:
            x2 = x.detach().clone().requires_grad_(True)
            (want,) = torch.autograd.grad((reference_triangular_histogram(x2, 16) * weights).sum(), x2)
            if not torch.allclose(grad.double(), want.double(), rtol=1e-3, atol=1e-6):
                raise _Fail("the gradient differs from the triangular kernel's.")
    return case


# ---------------------------------------------------------------------------------------------
# Any smooth kernel (Lecture 3's soft histogram)
# ---------------------------------------------------------------------------------------------
def check_soft_histogram(soft_histogram: Callable, verbose: bool = True) -> CheckResult:
    """Check ``soft_histogram(x, bins)``: per-image, per-channel histograms (B, C, bins) over equal bins
    on [0, 1] with centres ``(j + 0.5) / bins``, each summing to 1, close to the hard histogram on
    photographs, centred on the pixel values, and differentiable. Any symmetric smooth kernel of width
    about one bin passes. Known mistakes: :data:`SOFT_HISTOGRAM_MISTAKES`."""
    from ..losses import hard_histogram

    def close_to_hard():
        x = _photos()
        h = _get(soft_histogram, x, 16).detach().double()
        dist = histogram_distance(h, hard_histogram(x, 16))
        if dist > 0.35:  # the lecture's half-bin Gaussian is at about 0.1
            raise _Fail(f"mean L1 distance to the hard histogram is {dist:.3f} (limit 0.35).")

    def centred():
        # a flat image at an interior value v: a symmetric kernel's centre of mass is v itself
        for v in (0.3, 0.55, 0.8):
            h = _get(soft_histogram, torch.full((1, 1, 6, 6), v), 16).detach().double()[0, 0]
            centroid = float((h * _centres(16, torch.float64)).sum() / h.sum())
            if abs(centroid - v) > 0.25 / 16:
                raise _Fail(f"a flat image at {v} gives a histogram whose centre of mass is {centroid:.4f} "
                            f"(bin centres at (j + 0.5) / bins), off by {abs(centroid - v) * 16:.2f} bins.")

    def peaked():
        h = _get(soft_histogram, torch.full((1, 1, 8, 8), 8.5 / 16), 16).detach()[0, 0]
        near = float(h[7:10].sum())
        if int(h.argmax()) != 8 or near < 0.8:
            raise _Fail(f"a flat image at the centre of bin 8 gives argmax bin {int(h.argmax())} and {near:.2f} "
                        f"of the mass in bins 7-9 (expected bin 8 and > 0.8).")

    def extremes():
        x = torch.zeros(1, 1, 4, 4)
        x[..., 2:, :] = 1.0
        h = _get(soft_histogram, x, 4).detach()[0, 0]
        if float(h[0]) < 0.3 or float(h[-1]) < 0.3:
            raise _Fail(f"pixels at 0 and 1 give {[round(v, 3) for v in h.tolist()]}: half of the mass should "
                        f"sit in the first bin and half in the last.")

    return _run("check_soft_histogram", soft_histogram, [
        ("shape (B, C, bins)", lambda: (_get(soft_histogram, _photos(), 16),
                                        _get(soft_histogram, torch.rand(2, 1, 16, 20, generator=_gen(4)), 8)), ""),
        ("each histogram is non-negative and sums to 1", _normalised_case(soft_histogram), ""),
        ("close to the hard histogram on photographs", close_to_hard, ""),
        ("flat images: mass centred on the value", centred, ""),
        ("a flat image puts its mass in its own bin", peaked, ""),
        ("values 0 and 1 land in the outer bins", extremes, ""),
        ("differentiable: pixels get a gradient", _gradient_case(soft_histogram, False), ""),
    ], verbose, mistakes=SOFT_HISTOGRAM_MISTAKES,
        reference=lambda x, bins=16: _hist(x, bins, kernel="gaussian"), reread=_BUILD,
        same=lambda a, b: _same(a, b, rtol=1e-4, atol=2e-3))


# ---------------------------------------------------------------------------------------------
# The triangular kernel (exercise 03)
# ---------------------------------------------------------------------------------------------
def check_triangular_histogram(triangular_histogram: Callable, verbose: bool = True) -> CheckResult:
    """Check ``triangular_histogram(x, bins=16) -> (B, C, bins)`` against
    :func:`reference_triangular_histogram` (values to 1e-4, and its gradient). Known mistakes:
    :data:`TRIANGULAR_MISTAKES` (the lecture's Gaussian kernel among them)."""
    fn = triangular_histogram

    def close(x, bins, what):
        h = _get(fn, x, bins).detach().double()
        want = _hist(x, bins)
        err = float((h - want).abs().max())
        if err > 1e-4:
            raise _Fail(f"{what}: largest difference from the triangular kernel's histogram is {err:.3g}.")

    def between_centres():
        # 8 bins, centres 0.0625 + 0.125 j: 0.3 lies 0.1 bin from centre 2 and 0.9 bin from centre 1
        h = _get(fn, torch.full((1, 1, 4, 4), 0.3), 8).detach().double()[0, 0]
        want = torch.zeros(8, dtype=torch.float64)
        want[1], want[2] = 0.1, 0.9
        if float((h - want).abs().max()) > 1e-4:
            raise _Fail(f"a flat image at 0.3 with 8 bins gives {[round(v, 3) for v in h.tolist()]}; the triangular "
                        f"kernel gives 0.1 to bin 1 and 0.9 to bin 2.")

    def midway():
        h = _get(fn, torch.full((1, 1, 4, 4), 0.5), 4).detach().double()[0, 0]
        if float((h - torch.tensor([0, 0.5, 0.5, 0], dtype=torch.float64)).abs().max()) > 1e-4:
            raise _Fail(f"a flat image at 0.5 with 4 bins gives {[round(v, 3) for v in h.tolist()]}, expected "
                        f"[0, 0.5, 0.5, 0]: midway between two centres, half to each.")

    def ends():
        x = torch.zeros(1, 1, 4, 4)
        x[..., 2:, :] = 1.0
        h = _get(fn, x, 4).detach().double()[0, 0]
        if float((h - torch.tensor([0.5, 0, 0, 0.5], dtype=torch.float64)).abs().max()) > 1e-4:
            raise _Fail(f"pixels at 0 and 1 give {[round(v, 3) for v in h.tolist()]}, expected [0.5, 0, 0, 0.5]: "
                        f"below the first centre (above the last) the whole unit goes to the outer bin.")

    return _run("check_triangular_histogram", fn, [
        ("shape (B, C, bins)", lambda: (_get(fn, _photos(), 16), _get(fn, torch.rand(2, 1, 16, 20, generator=_gen(4)), 8)), ""),
        ("each histogram is non-negative and sums to 1", _normalised_case(fn), ""),
        ("a value between two centres splits linearly (0.3, 8 bins)", between_centres, ""),
        ("a value midway between two centres (0.5, 4 bins)", midway, ""),
        ("values 0 and 1 go to the outer bins", ends, ""),
        ("photographs, 16 bins", lambda: close(_photos(), 16, "photographs with 16 bins"), ""),
        ("random images, 8 bins", lambda: close(torch.rand(2, 3, 10, 12, generator=_gen(5)), 8,
                                                "random images with 8 bins"), ""),
        ("differentiable, with the triangular kernel's gradient", _gradient_case(fn, True), ""),
    ], verbose, mistakes=TRIANGULAR_MISTAKES, reference=lambda x, bins=16: _hist(x, bins), reread=_BUILD,
        same=lambda a, b: _same(a, b, rtol=1e-4, atol=2e-4))


# ---------------------------------------------------------------------------------------------
# Predict, then run; the open-ended task
# ---------------------------------------------------------------------------------------------
def check_histogram_prediction(prediction: Callable, verbose: bool = True) -> CheckResult:
    """Check ``prediction() -> number``: the mass a flat image at 0.3 puts in bin 2 of an 8-bin
    triangular histogram (0.9, within 0.02)."""
    expected = float(_hist(torch.full((1, 1, 2, 2), 0.3), 8)[0, 0, 2])
    return check_answer(prediction, expected, name="check_histogram_prediction", tol=0.02,
                        why="the centres of 8 bins are 0.0625 + 0.125 j; 0.3 is 0.0125 (0.1 bin) from centre 2 "
                            "and 0.9 bin from centre 1, so bin 2 gets 1 - 0.1 = 0.9 and bin 1 gets 0.1.",
                        reread=_BUILD, verbose=verbose)


def _tone_pair():
    from ..data import load_image, simulate_low_light

    clean = load_image("chelsea", 64)[None]
    low = simulate_low_light(clean, "outdoor_daylight", seed=1).clamp_min(1e-3)
    return low, clean


TONE_TARGET = {"histogram_distance": 0.2, "psnr": 22.0}


def check_tone_curve(enhance: Callable, verbose: bool = True) -> CheckResult:
    """Check the open-ended task of exercise 03: ``enhance(low, target_hist) -> out`` brightens the dark
    photo ``low`` ((1, 3, 64, 64)) using only ``target_hist`` (the clean photo's 16-bin triangular
    histogram, (1, 3, 16)), so that the histogram distance to the target is <= 0.2 and the PSNR
    against the clean photo (which ``enhance`` never sees) is >= 22 dB. ``enhance`` may take up to
    60 s (it may run an optimisation); it runs with one torch thread, restored afterwards."""
    from .mse_psnr import reference_psnr

    low, clean = _tone_pair()
    target = _hist(clean, 16).float()
    got = {}

    def runs():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a fit of small tensors: 2 threads on a busy machine ran 20-40x slower
        try:
            out = _call(enhance, low.clone(), target.clone(), what="enhance")
        finally:
            torch.set_num_threads(threads)
        out = _tensor(out, "enhance").detach().float()
        if tuple(out.shape) != tuple(low.shape):
            raise _Fail(f"enhance returned shape {tuple(out.shape)}, expected {tuple(low.shape)} like low.")
        if not torch.isfinite(out).all() or float(out.min()) < 0 or float(out.max()) > 1:
            raise _Fail("enhance returned values outside [0, 1] (or NaN): clamp the output to [0, 1].")
        got["out"] = out

    def hist_close():
        if "out" not in got:
            raise _Fail("no output to measure (see the case above).")
        d = histogram_distance(_hist(got["out"], 16), target)
        if not d <= TONE_TARGET["histogram_distance"]:
            raise _Fail(f"histogram distance to the target is {d:.3f}; the target is <= 0.2.")

    def psnr_ok():
        if "out" not in got:
            raise _Fail("no output to measure (see the first case).")
        p = float(reference_psnr(got["out"], clean))
        if not p >= TONE_TARGET["psnr"]:
            raise _Fail(f"PSNR against the clean photo is {p:.2f} dB; the target is >= 22 dB.")

    return _run("check_tone_curve", enhance, [
        ("returns an image like low, values in [0, 1]", runs, ""),
        ("histogram distance to the target <= 0.2", hist_close, ""),
        ("PSNR against the clean photo >= 22 dB", psnr_ok, ""),
    ], verbose, reread=_TRAIN, timeout=60.0)
