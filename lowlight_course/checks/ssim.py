"""Checks for exercise 02: the Gaussian window, per-image SSIM with a data range and a window
(build), the misregistration prediction, and fooling SSIM (the open-ended task).

Exercise 02 asks for a variant of Lecture 2's SSIM: one value **per image** (shape (B,)), with
``data_range``, ``window_size`` and ``sigma`` arguments. The build checks hold their known-wrong
variants (:class:`~._core.Mistake`) and name the ones a failing function matches.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ._core import (CheckResult, Mistake, _Fail, _call, _close, _gen, _grad, _photo_pair, _run, _same, _tensor,
                    check_answer)

__all__ = ["check_gaussian_window", "check_ssim", "check_shift_prediction", "check_fool_ssim", "SHIFT_CHOICES",
           "reference_ssim_per_image", "WINDOW_MISTAKES", "SSIM_MISTAKES"]

_WINDOW = "Lecture 2, section 1 (The Gaussian window)"
_STATS = "Lecture 2, section 2 (Local statistics, the constants, the map)"
_RANGE = "Lecture 2, section 4 (Defect 1: the data range)"
_PADDING = "Lecture 2, section 5 (Defect 2: zero padding at the borders)"
_DRIFT = "Lecture 2, section 7 (What SSIM alone lets drift: brightness and colour)"


def _window(n, sigma, *, normalise=True, two=2.0, centre=None, offsets=None):
    d = torch.arange(n, dtype=torch.float64) - ((n - 1) / 2 if centre is None else centre)
    if offsets == "linspace":
        d = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    w = torch.exp(-d ** 2 / (two * sigma ** 2))
    return w / w.sum() if normalise else w


WINDOW_MISTAKES = (
    Mistake("not normalised to sum 1", "an unnormalised window scales every local mean and variance, so SSIM "
            "no longer compares like with like.", _WINDOW, fn=lambda n, s: _window(n, s, normalise=False)),
    Mistake("exp(-d^2 / sigma^2): the 2 is missing", "the window is narrower than sigma says (its standard "
            "deviation is sigma / sqrt 2).", _WINDOW, fn=lambda n, s: _window(n, s, two=1.0)),
    Mistake("sigma where sigma^2 belongs", "the exponent divides by 2 sigma^2; with sigma alone the width is "
            "wrong for every sigma but 1.", _WINDOW, fn=lambda n, s: _window(n, s, two=2.0 / s)),
    Mistake("offsets not centred", "the offsets must run symmetrically from -(n - 1)/2 to (n - 1)/2, so the "
            "peak sits on the middle tap.", _WINDOW, fn=lambda n, s: _window(n, s, centre=n / 2)),
    Mistake("offsets counted from the first tap", "the Gaussian is then centred on tap 0, not the middle.",
            _WINDOW, fn=lambda n, s: _window(n, s, centre=0.0)),
    Mistake("offsets from -1 to 1 instead of in pixels", "sigma is measured in pixels; squeezing the offsets "
            "into [-1, 1] makes the window almost flat.", _WINDOW, fn=lambda n, s: _window(n, s, offsets="linspace")),
    Mistake("the arguments are ignored (11 taps, sigma 1.5 always)", "the function must build the window it is "
            "asked for.", _WINDOW, fn=lambda n, s: _window(11, 1.5)),
)


def check_gaussian_window(gaussian_window: Callable, verbose: bool = True) -> CheckResult:
    """Check ``gaussian_window(window_size, sigma)``: a 1-D tensor of ``window_size`` taps
    ``exp(-d^2 / (2 sigma^2))`` at offsets ``d`` from the centre, normalised to sum 1.
    Known mistakes: :data:`WINDOW_MISTAKES` (the ``torch.exp`` of a Python float shows as its TypeError)."""
    def get(size, sigma):
        out = _tensor(_call(gaussian_window, size, sigma), f"gaussian_window({size}, {sigma})")
        if not out.is_floating_point():
            raise _Fail(f"gaussian_window({size}, {sigma}) has dtype {out.dtype}, expected floating point.")
        if tuple(out.shape) != (size,):
            raise _Fail(f"gaussian_window({size}, {sigma}) has shape {tuple(out.shape)}, expected ({size},).")
        return out.detach().double()

    def sums_to_one():
        _close(float(get(11, 1.5).sum()), 1.0, atol=1e-5, what="the sum of gaussian_window(11, 1.5)")

    def centred():
        w = get(11, 1.5)
        if int(w.argmax()) != 5 or not torch.allclose(w, w.flip(0), atol=1e-7):
            raise _Fail("gaussian_window(11, 1.5) is not symmetric with its peak on tap 5.")

    def values(size, sigma):
        def case():
            w = get(size, sigma)
            want = _window(size, sigma)
            err = float((w - want).abs().max())
            if err > 1e-6:
                raise _Fail(f"largest difference from the expected taps is {err:.3g}. Got "
                            f"{[round(v, 4) for v in w.tolist()]}, expected {[round(v, 4) for v in want.tolist()]}.")
        return case

    return _run("check_gaussian_window", gaussian_window, [
        ("gaussian_window(11, 1.5) has shape (11,)", lambda: get(11, 1.5), ""),
        ("it sums to 1", sums_to_one, ""),
        ("it is symmetric, peak in the middle", centred, ""),
        ("values of gaussian_window(11, 1.5)", values(11, 1.5), ""),
        ("values of gaussian_window(7, 1.0)", values(7, 1.0), ""),
        ("values of gaussian_window(5, 3.0)", values(5, 3.0), ""),
    ], verbose, mistakes=WINDOW_MISTAKES, reference=lambda n, s: _window(n, s), reread=_WINDOW,
        same=lambda a, b: _same(a, b, rtol=0, atol=1e-6))


# ---------------------------------------------------------------------------------------------
# SSIM per image
# ---------------------------------------------------------------------------------------------
def _ssim(p, t, data_range=1.0, window_size=11, sigma=1.5, *, L=None, padding=0, window="gauss",
          constants="squared", unbiased=False, reduce="image", grey=False):
    """A plain SSIM with switches for each known mistake (double precision)."""
    p, t = p.double(), t.double()
    if grey:
        p, t = p.mean(1, keepdim=True), t.mean(1, keepdim=True)
    L = data_range if L is None else L
    c, n = p.shape[1], window_size
    w1 = _window(n, sigma) if window == "gauss" else torch.full((n,), 1.0 / n, dtype=torch.float64)
    w = (w1[:, None] * w1[None, :]).expand(c, 1, n, n)

    def blur(x):
        return F.conv2d(x, w, padding=padding, groups=c)

    mx, my = blur(p), blur(t)
    corr = n * n / (n * n - 1) if unbiased else 1.0
    sxx, syy, sxy = [(blur(a * b) - ma * mb) * corr for a, b, ma, mb in
                     ((p, p, mx, mx), (t, t, my, my), (p, t, mx, my))]
    c1, c2 = {"squared": ((0.01 * L) ** 2, (0.03 * L) ** 2), "none": (0.0, 0.0),
              "unsquared": (0.01 * L, 0.03 * L)}[constants]
    smap = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    if reduce == "all":
        return smap.mean()
    if reduce == "channel":
        return smap.mean(dim=(2, 3))
    return smap.flatten(1).mean(1)


def reference_ssim_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                             window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Reference for exercise 02: SSIM (Wang et al. 2004) of each image, (B, C, H, W) x 2 -> (B,).

    Gaussian window (``window_size`` taps, ``sigma``), 'valid' filtering, population statistics,
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range``; the map averaged over channels
    and pixels of each image. Equal to ``lowlight_course.losses.ssim(..., reduction="none")``.
    """
    from ..losses import ssim

    return ssim(pred, target, data_range=data_range, window_size=window_size, sigma=sigma, reduction="none")


def _ssim_args(fn):
    return lambda p, t, data_range=1.0, window_size=11, sigma=1.5: fn(p, t, data_range, window_size, sigma)


SSIM_MISTAKES = (
    Mistake("one SSIM for the whole batch instead of one per image", "averaging over the batch too hides a bad "
            "image behind good ones; the task asks for shape (B,).", _STATS, fn=_ssim_args(
                lambda p, t, L, n, s: _ssim(p, t, L, n, s, reduce="all"))),
    Mistake("one SSIM per image *and channel*", "average the map over the channels too: shape (B,), not (B, C).",
            _STATS, fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, reduce="channel"))),
    Mistake("the data_range argument is ignored (L = 1 always)", "on 8-bit values (L = 255) the constants are "
            "then 65 025 times too small and flat regions dominate.", _RANGE,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, 1.0, n, s))),
    Mistake("L = 255 whatever the data range", "the article's defect: on [0, 1] images C1 and C2 swamp every "
            "statistic and unrelated images score near 1.", _RANGE,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, 255.0, n, s))),
    Mistake("C1 = 0.01 L and C2 = 0.03 L, not squared", "the constants are (K L)^2; unsquared they are far too "
            "large and SSIM creeps towards 1.", _STATS,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, constants="unsquared"))),
    Mistake("no constants (C1 = C2 = 0)", "without them a flat region gives 0 / 0.", _STATS,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, constants="none"))),
    Mistake("zero padding (padding = window_size // 2)", "padding with zeros darkens the local means at the "
            "border; the reference filters 'valid' only.", _PADDING,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, padding=n // 2))),
    Mistake("a uniform (box) window", "SSIM weights the neighbourhood with a Gaussian.", _WINDOW,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, window="uniform"))),
    Mistake("sample (N - 1) instead of population statistics", "the weighted local variances are population "
            "statistics.", _STATS, fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, unbiased=True))),
    Mistake("window_size and sigma ignored (11 and 1.5 always)", "the function must use the window it is "
            "asked for.", _WINDOW, fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L))),
    Mistake("the images turned grey first", "SSIM here is computed on each colour channel and averaged; a grey "
            "conversion is blind to colour changes.", _STATS,
            fn=_ssim_args(lambda p, t, L, n, s: _ssim(p, t, L, n, s, grey=True))),
    Mistake("the result has no gradient", "a Python number, a detached tensor or numpy cuts the autograd graph.",
            _STATS, test=lambda a, k, v: a[0].requires_grad and not (isinstance(v, torch.Tensor) and v.requires_grad)),
)


def check_ssim(ssim: Callable, verbose: bool = True) -> CheckResult:
    """Check ``ssim(pred, target, data_range=1.0, window_size=11, sigma=1.5) -> (B,)``: one SSIM per image
    (Wang et al. 2004: Gaussian window, 'valid' filtering, population statistics, C1 = (0.01 L)^2,
    C2 = (0.03 L)^2 with L = data_range), on photographs, batches, one channel, flat images, 8-bit
    values and another window, with the right gradient. Known mistakes: :data:`SSIM_MISTAKES`.
    """
    def per_image(p, t, what, tol=2e-4, **kw):
        out = _tensor(_call(ssim, p, t, **kw))
        if tuple(out.shape) != (p.shape[0],):
            raise _Fail(f"for a batch of {p.shape[0]} the result has shape {tuple(out.shape)}, expected "
                        f"({p.shape[0]},): one SSIM per image.")
        want = reference_ssim_per_image(p, t, **kw).double()
        err = float((out.detach().double() - want).abs().max())
        if not err <= tol:
            raise _Fail(f"{what}: got {[round(v, 4) for v in out.detach().flatten().tolist()]}, expected "
                        f"{[round(v, 4) for v in want.tolist()]}.")

    def photo():
        low, clean = _photo_pair("coffee", 48)
        per_image(low, clean, "SSIM of a low-light photo against the clean one")

    def batch():
        from ..pitfalls import sample_pair

        low, clean = _photo_pair("coffee", 48)
        pred, target = sample_pair("chelsea", 48)
        per_image(torch.cat([low, pred, clean]), torch.cat([clean, target, clean]),
                  "per-image SSIM of a batch of three pairs")

    def unrelated():
        g = _gen(3)
        a, b = torch.rand(2, 3, 32, 40, generator=g), torch.rand(2, 3, 32, 40, generator=g)
        per_image(a, b, "SSIM of two unrelated random batches (2, 3, 32, 40)")

    def gray():
        _, clean = _photo_pair("astronaut", 32)
        g = clean.mean(1, keepdim=True)
        per_image((0.8 * g + 0.05).clamp(0, 1), g, "SSIM of a one-channel pair")

    def flat():
        a, b = torch.full((1, 3, 24, 24), 0.2), torch.full((1, 3, 24, 24), 0.3)
        per_image(a, b, "SSIM of two flat images (0.2 and 0.3)", tol=1e-4)
        per_image(a, a.clone(), "SSIM of a flat image with itself", tol=1e-4)

    def eight_bit():
        low, clean = _photo_pair("chelsea", 40)
        per_image((low * 255).round(), (clean * 255).round(), "SSIM of 8-bit values with data_range=255",
                  data_range=255.0)

    def other_window():
        low, clean = _photo_pair("astronaut", 40, domain="night_point_lights")
        per_image(low, clean, "SSIM with window_size=7, sigma=1.0", window_size=7, sigma=1.0)

    def gradient():
        low, clean = _photo_pair("coffee", 48)
        p = low.clone().requires_grad_(True)
        grad = _grad(_call(ssim, p, clean), p)
        p2 = low.clone().requires_grad_(True)
        (want,) = torch.autograd.grad(reference_ssim_per_image(p2, clean).sum(), p2)
        cos = float(F.cosine_similarity(grad.flatten().double(), want.flatten().double(), dim=0))
        ratio = float(grad.norm() / want.norm())
        if cos < 0.99 or not 0.9 < ratio < 1.1:
            raise _Fail(f"the gradient differs from the reference (cosine {cos:.3f}, norm ratio {ratio:.3f}).")

    return _run("check_ssim", ssim, [
        ("a photo under simulated low light vs the clean photo", photo, ""),
        ("one value per image for a batch of three", batch, ""),
        ("two unrelated random images score near 0", unrelated, ""),
        ("works for one channel", gray, ""),
        ("flat regions (zero variance)", flat, ""),
        ("data_range=255 on 8-bit values", eight_bit, ""),
        ("window_size=7, sigma=1.0", other_window, ""),
        ("differentiable, with the right gradient", gradient, ""),
    ], verbose, mistakes=SSIM_MISTAKES, reference=reference_ssim_per_image, reread=_STATS,
        same=lambda a, b: _same(a, b, rtol=0, atol=3e-4))


# ---------------------------------------------------------------------------------------------
# Predict, then run; the open-ended task
# ---------------------------------------------------------------------------------------------
#: the answers to exercise 02's prediction: the letter, and the SSIM range it stands for.
SHIFT_CHOICES = {"A": "above 0.9", "B": "between 0.4 and 0.9", "C": "below 0.4"}


def _shift_photo():
    from ..data import load_image

    x = 0.2 + 0.6 * load_image("astronaut", 64)[None]
    y = torch.roll(x, 1, dims=-1)
    y[..., 0] = x[..., 0]
    return x, y


def check_shift_prediction(prediction: Callable, verbose: bool = True) -> CheckResult:
    """Check ``prediction() -> "A", "B" or "C"`` (:data:`SHIFT_CHOICES`): the SSIM of the exercise photo
    against itself shifted right by one pixel (measured here: about 0.72, so "B")."""
    from ..losses import ssim

    x, y = _shift_photo()
    value = float(ssim(y, x))
    expected = next(c for c, ok in zip(SHIFT_CHOICES, (value > 0.9, 0.4 <= value <= 0.9, value < 0.4)) if ok)
    return check_answer(prediction, expected, name="check_shift_prediction", choices=list(SHIFT_CHOICES),
                        why=f"({expected}: {SHIFT_CHOICES[expected]}.) SSIM compares local structure position by position: a one-pixel shift moves every "
                            f"edge out of place, so the structure term falls (here to {value:.2f}) although a "
                            f"person sees the same picture.", reread=_STATS, verbose=verbose)


def check_fool_ssim(fool: Callable, verbose: bool = True) -> CheckResult:
    """Check the open-ended task of exercise 02: ``fool(x) -> y`` for the photo ``x`` ((1, 3, 64, 64),
    values in [0.2, 0.8]) returns an image in [0, 1] with SSIM(y, x) >= 0.88 and PSNR(y, x) <= 13 dB:
    a large error SSIM barely sees."""
    from ..losses import ssim
    from .mse_psnr import reference_psnr

    x, _ = _shift_photo()
    got = {}

    def returns_image():
        y = _tensor(_call(fool, x.clone()), "fool(x)").detach().float()
        if tuple(y.shape) != tuple(x.shape):
            raise _Fail(f"fool(x) has shape {tuple(y.shape)}, expected {tuple(x.shape)} like x.")
        if not torch.isfinite(y).all() or float(y.min()) < 0 or float(y.max()) > 1:
            raise _Fail("fool(x) has values outside [0, 1] (or NaN): clamp it to [0, 1].")
        got["y"] = y

    def high_ssim():
        if "y" not in got:
            raise _Fail("no image to measure (see the case above).")
        s = float(ssim(got["y"], x))
        if not s >= 0.88:
            raise _Fail(f"SSIM(y, x) = {s:.3f}: it must stay at 0.88 or above.")

    def low_psnr():
        if "y" not in got:
            raise _Fail("no image to measure (see the first case).")
        p = float(reference_psnr(got["y"], x))
        if not p <= 13.0:
            raise _Fail(f"PSNR(y, x) = {p:.2f} dB: it must be 13 dB or less (a large error).")

    return _run("check_fool_ssim", fool, [
        ("returns an image like x, values in [0, 1]", returns_image, ""),
        ("SSIM(y, x) >= 0.88", high_ssim, ""),
        ("PSNR(y, x) <= 13 dB", low_psnr, ""),
    ], verbose, reread=_DRIFT)

