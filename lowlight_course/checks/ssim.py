"""Check for exercise 02: Gaussian window and SSIM. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

from typing import Callable

import torch

from ._core import CheckResult, _grad, _Fail, _call, _run, _tensor, _scalar, _close, _photo_pair, _gen

__all__ = ['check_gaussian_window', 'check_ssim']


# ---------------------------------------------------------------------------------------------
# 02: Gaussian window and SSIM
# ---------------------------------------------------------------------------------------------
def check_gaussian_window(gaussian_window: Callable, verbose: bool = True) -> CheckResult:
    """Check ``gaussian_window(window_size, sigma)``: a 1-D tensor of ``window_size`` taps
    ``exp(-d^2 / (2 sigma^2))`` at offsets ``d`` from the centre, normalised to sum 1. Rejects an
    unnormalised window, a wrong sigma convention, an off-centre or even-length window, and the
    ``torch.exp`` of a Python float."""
    from ..losses import gaussian_window as ref

    def get(size, sigma):
        out = _tensor(_call(gaussian_window, size, sigma), f"gaussian_window({size}, {sigma})")
        if not out.is_floating_point():
            raise _Fail(f"gaussian_window({size}, {sigma}) has dtype {out.dtype}, expected floating point.")
        if tuple(out.shape) != (size,):
            raise _Fail(f"gaussian_window({size}, {sigma}) has shape {tuple(out.shape)}, expected ({size},).")
        return out.detach().double()

    def sums_to_one():
        w = get(11, 1.5)
        _close(float(w.sum()), 1.0, atol=1e-5, what="the sum of gaussian_window(11, 1.5)")

    def centred():
        w = get(11, 1.5)
        if int(w.argmax()) != 5 or not torch.allclose(w, w.flip(0), atol=1e-7):
            raise _Fail("gaussian_window(11, 1.5) is not symmetric with its peak on tap 5.")

    def values(size, sigma):
        def case():
            w = get(size, sigma)
            want = ref(size, sigma, dtype=torch.float64)
            err = float((w - want).abs().max())
            if err > 1e-6:
                raise _Fail(f"largest difference from the reference is {err:.3g}. Got "
                            f"{[round(v, 4) for v in w.tolist()]}, expected {[round(v, 4) for v in want.tolist()]}.")
        return case

    return _run("check_gaussian_window", gaussian_window, [
        ("gaussian_window(11, 1.5) has shape (11,)", lambda: get(11, 1.5),
         "one tap per pixel: offsets torch.arange(window_size) - (window_size - 1) / 2"),
        ("it sums to 1", sums_to_one, "divide by the sum"),
        ("it is symmetric, peak in the middle", centred, "centre the offsets: arange(n) - (n - 1) / 2"),
        ("values of gaussian_window(11, 1.5)", values(11, 1.5), "exp(-d ** 2 / (2 * sigma ** 2)), then normalise"),
        ("values of gaussian_window(7, 1.0)", values(7, 1.0), "use the arguments, not hard-coded 11 and 1.5"),
        ("values of gaussian_window(5, 3.0)", values(5, 3.0), "use the arguments, not hard-coded 11 and 1.5"),
    ], verbose)


def check_ssim(ssim: Callable, verbose: bool = True) -> CheckResult:
    """Check ``ssim(pred, target)`` for images in [0, 1] against :func:`lowlight_course.losses.ssim`
    (Gaussian 11 x 11 window, sigma 1.5, 'valid' filtering, population statistics, C1 = (0.01)^2,
    C2 = (0.03)^2). Rejects a data range of 255, zero padding, a uniform window, C1 = C2 = 0,
    sample instead of population (co)variance, and an implementation without gradient."""
    from ..losses import ssim as ref

    def compare(p, t, what, tol=2e-4):
        _close(_scalar(_call(ssim, p, t)), float(ref(p, t)), atol=tol, what=what)

    def photo():
        low, clean = _photo_pair("coffee", 48)
        compare(low, clean, "SSIM of a low-light photo against the clean one")

    def enhanced():
        from ..pitfalls import sample_pair

        pred, target = sample_pair("chelsea", 48)
        compare(pred, target, "SSIM of a dull, noisy 'enhancement' of a photo")

    def unrelated():
        g = _gen(3)
        a, b = torch.rand(2, 3, 32, 40, generator=g), torch.rand(2, 3, 32, 40, generator=g)
        compare(a, b, "SSIM of two unrelated random batches (2, 3, 32, 40)")

    def gray():
        _, clean = _photo_pair("astronaut", 32)
        g = clean.mean(1, keepdim=True)
        compare((0.8 * g + 0.05).clamp(0, 1), g, "SSIM of a one-channel pair")

    def identical():
        _, clean = _photo_pair("coffee", 48)
        _close(_scalar(_call(ssim, clean, clean.clone())), 1.0, atol=1e-4, what="SSIM of an image with itself")

    def flat():
        a, b = torch.full((1, 3, 24, 24), 0.2), torch.full((1, 3, 24, 24), 0.3)
        compare(a, b, "SSIM of two flat images (0.2 and 0.3)", tol=1e-4)
        _close(_scalar(_call(ssim, a, a.clone())), 1.0, atol=1e-4, what="SSIM of a flat image with itself")

    def gradient():
        low, clean = _photo_pair("coffee", 48)
        p = low.clone().requires_grad_(True)
        grad = _grad(_call(ssim, p, clean), p)
        p2 = low.clone().requires_grad_(True)
        (want,) = torch.autograd.grad(ref(p2, clean), p2)
        if not torch.isfinite(grad).all():
            raise _Fail("the gradient contains NaN or Inf.")
        cos = float(torch.nn.functional.cosine_similarity(grad.flatten(), want.flatten(), dim=0))
        ratio = float(grad.norm() / want.norm())
        if cos < 0.99 or not 0.9 < ratio < 1.1:
            raise _Fail(f"the gradient differs from the reference (cosine {cos:.3f}, norm ratio {ratio:.3f}).")

    hint_const = "C1 = (0.01 * L) ** 2 and C2 = (0.03 * L) ** 2 with L = 1 for images in [0, 1]"
    return _run("check_ssim", ssim, [
        ("a photo under simulated low light vs the clean photo", photo,
         f"Gaussian window (11, sigma 1.5), no padding, population variances, {hint_const}"),
        ("a dull, noisy enhancement vs the clean photo", enhanced,
         "filter with padding=0 ('valid'): zero padding darkens the local means at the border"),
        ("two unrelated random images score near 0", unrelated, hint_const + " (not L = 255)"),
        ("works for one channel", gray, "filter each channel separately: conv2d(..., groups=C)"),
        ("an image against itself gives 1", identical, ""),
        ("flat regions (zero variance)", flat, "keep C1 and C2 > 0: they stop 0 / 0 in flat regions"),
        ("differentiable, with the right gradient", gradient, "use torch operations only"),
    ], verbose)
