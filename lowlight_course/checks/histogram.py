"""Check for exercise 03: soft histogram. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

from typing import Callable

import torch

from ._core import CheckResult, _grad, _Fail, _call, _run, _tensor, _photo_pair, _gen

__all__ = ['check_soft_histogram']


# ---------------------------------------------------------------------------------------------
# 03: soft histogram
# ---------------------------------------------------------------------------------------------
def check_soft_histogram(soft_histogram: Callable, verbose: bool = True) -> CheckResult:
    """Check ``soft_histogram(x, bins)``: per-image, per-channel histograms (B, C, bins) over
    equal bins on [0, 1], each summing to 1, close to the hard histogram on photographs, and
    differentiable. Any reasonable smooth kernel of width about one bin passes. Rejects
    ``torch.histc`` (no gradient), unnormalised counts, histograms pooled over channels or images,
    and a kernel so wide (or so misplaced) that the histogram no longer resembles the image's."""
    from ..losses import hard_histogram, soft_histogram as ref

    def get(x, bins):
        out = _tensor(_call(soft_histogram, x, bins))
        want = (x.shape[0], x.shape[1], bins)
        if tuple(out.shape) != want:
            raise _Fail(f"returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)} and "
                        f"bins={bins}, expected {want}.")
        if not torch.isfinite(out).all():
            raise _Fail("the histogram contains NaN or Inf.")
        return out

    def photos():
        low, clean = _photo_pair("coffee", 48)
        return torch.cat([clean, low, _photo_pair("chelsea", 48)[1]])

    def shape():
        get(photos(), 16)
        get(torch.rand(2, 1, 16, 20, generator=_gen(4)), 8)

    def normalised():
        h = get(photos(), 16).detach()
        if float(h.min()) < -1e-6:
            raise _Fail(f"a bin is negative ({float(h.min()):.3g}): masses must be >= 0.")
        sums = h.sum(-1)
        if float((sums - 1).abs().max()) > 1e-3:
            raise _Fail(f"histograms sum to {sums.flatten()[:4].tolist()} ..., expected 1 each: "
                        f"divide each (image, channel) row by its total.")

    def close_to_hard():
        x = photos()
        h = get(x, 16).detach().double()
        hard = hard_histogram(x, 16).double()
        dist = float((h - hard).abs().sum(-1).mean())
        limit = 0.35  # the reference (half-bin Gaussian) is at about 0.1
        if dist > limit:
            raise _Fail(f"mean L1 distance to the hard histogram is {dist:.3f} (reference "
                        f"{float((ref(x, 16).double() - hard).abs().sum(-1).mean()):.3f}, limit {limit}).")
        centroid = (h * (torch.arange(16, dtype=h.dtype) + 0.5) / 16).sum(-1)
        mean = x.double().mean(dim=(2, 3))
        err = float((centroid - mean).abs().max())
        if err > 1 / 16:
            raise _Fail(f"the histogram's centre of mass is off the mean pixel value by {err:.3f} "
                        f"(more than one bin): are the bins in increasing order over [0, 1]?")

    def peaked():
        x = torch.full((1, 1, 8, 8), 8.5 / 16)  # the centre of bin 8 of 16
        h = get(x, 16).detach()[0, 0]
        near = float(h[7:10].sum())
        if int(h.argmax()) != 8 or near < 0.8:
            raise _Fail(f"a flat image at the centre of bin 8 gives argmax bin {int(h.argmax())} and "
                        f"{near:.2f} of the mass in bins 7-9 (expected bin 8 and > 0.8).")

    def extremes():
        x = torch.zeros(1, 1, 4, 4)
        x[..., 2:, :] = 1.0
        h = get(x, 4).detach()[0, 0]
        if float(h[0]) < 0.3 or float(h[-1]) < 0.3:
            raise _Fail(f"pixels at 0 and 1 give {[round(v, 3) for v in h.tolist()]}: half of the mass "
                        f"should sit in the first bin and half in the last.")

    def gradient():
        x = photos()[:1].clone().requires_grad_(True)
        out = get(x, 16)
        if not out.requires_grad:
            raise _Fail("the histogram has no gradient (no grad_fn): torch.histc and counting with "
                        "comparisons are not differentiable.")
        grad = _grad(out, x, torch.linspace(-1, 1, 16), what="the histogram")
        if float(grad.abs().max()) == 0.0:
            raise _Fail("the gradient with respect to the pixels is zero, None or not finite.")
        frac = float((grad.abs() > 0).float().mean())
        if frac < 0.5:
            raise _Fail(f"only {frac:.0%} of the pixels get a gradient: the kernel must be smooth "
                        f"for every pixel, not only near the bin edges.")

    return _run("check_soft_histogram", soft_histogram, [
        ("shape (B, C, bins)", shape, "one histogram per image and per channel: (B, C, bins)"),
        ("each histogram is non-negative and sums to 1", normalised,
         "divide by the number of pixels (or by the row's sum)"),
        ("close to the hard histogram on photographs", close_to_hard,
         "a Gaussian kernel with a bandwidth of about half a bin, bins of width 1 / bins over [0, 1]"),
        ("a flat image puts its mass in its own bin", peaked,
         "bin j spans [j / bins, (j + 1) / bins]; the kernel is centred on the pixel value"),
        ("values 0 and 1 land in the outer bins", extremes, "do not let mass fall off the ends"),
        ("differentiable: pixels get a gradient", gradient, "replace torch.histc by a smooth kernel"),
    ], verbose)
