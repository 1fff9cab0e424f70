"""Check for exercise 01: MSE and PSNR. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import CheckResult, _grad, _Fail, _call, _run, _tensor, _scalar, _close, _photo_pair, _gen

__all__ = ['check_mse', 'check_psnr']


# ---------------------------------------------------------------------------------------------
# 01: MSE and PSNR
# ---------------------------------------------------------------------------------------------
def check_mse(mse: Callable, verbose: bool = True) -> CheckResult:
    """Check ``mse(pred, target)``: the mean over every element of ``(pred - target) ** 2``, a scalar
    tensor, differentiable. Rejects a sum instead of a mean, a missing square, a square root (RMSE),
    a mean over some dimensions only, and an implementation without gradient."""
    from ..losses import mse as ref

    def value_on_photo():
        low, clean = _photo_pair()
        _close(_scalar(_call(mse, low, clean)), float(ref(low, clean)), rtol=1e-4, atol=1e-9,
               what="MSE of a low-light photo against the clean one")

    def scalar():
        low, clean = _photo_pair()
        out = _tensor(_call(mse, low, clean))
        if out.dim() != 0:
            raise _Fail(f"returned shape {tuple(out.shape)}, expected a scalar (shape ()).")

    def batch_rect():
        g = _gen(1)
        a, b = torch.rand(3, 2, 8, 12, generator=g), torch.rand(3, 2, 8, 12, generator=g)
        _close(_scalar(_call(mse, a, b)), float(ref(a, b)), rtol=1e-4, what="MSE of a random (3, 2, 8, 12) batch")

    def signs():
        a = torch.zeros(1, 1, 4, 4)
        b = a.clone()
        b[..., :2, :] = 0.5
        b[..., 2:, :] = 0.0
        a[..., 2:, :] = 0.5  # errors of +0.5 and -0.5 that cancel without the square
        _close(_scalar(_call(mse, a, b)), 0.25, rtol=1e-5, what="MSE with errors +0.5 and -0.5")

    def identical():
        _, clean = _photo_pair()
        _close(_scalar(_call(mse, clean, clean.clone())), 0.0, atol=1e-12, what="MSE of an image with itself")

    def gradient():
        g = _gen(2)
        p = torch.rand(2, 3, 8, 8, generator=g).requires_grad_(True)
        t = torch.rand(2, 3, 8, 8, generator=g)
        grad = _grad(_call(mse, p, t), p)
        want = 2 * (p.detach() - t) / p.numel()
        if not torch.allclose(grad, want, rtol=1e-4, atol=1e-8):
            raise _Fail("the gradient differs from 2 (pred - target) / N.")

    return _run("check_mse", mse, [
        ("a photo under simulated low light vs the clean photo", value_on_photo,
         "average the squared differences over all elements: ((pred - target) ** 2).mean()"),
        ("returns a scalar tensor", scalar, "reduce with .mean() over every dimension, not along one axis"),
        ("a random batch of shape (3, 2, 8, 12)", batch_rect, "no assumption about batch size, channels or shape"),
        ("positive and negative errors do not cancel", signs, "square the difference before averaging"),
        ("an image against itself gives 0", identical, ""),
        ("differentiable, with the right gradient", gradient, "use torch operations only, so autograd can follow"),
    ], verbose)


def check_psnr(psnr: Callable, verbose: bool = True) -> CheckResult:
    """Check ``psnr(pred, target)``: ``10 log10(1 / MSE)`` in dB for images in [0, 1], computed per
    image and averaged over the batch (as :func:`lowlight_course.metrics.psnr`). Rejects a data
    range of 255, the natural log, ``20 log10`` of the MSE, and PSNR of the pooled batch MSE."""
    from ..metrics import psnr as ref

    def value_on_photo():
        low, clean = _photo_pair()
        _close(_scalar(_call(psnr, low, clean)), float(ref(low, clean)), atol=1e-3,
               what="PSNR (dB) of a low-light photo against the clean one")

    def known():
        x = torch.full((1, 3, 8, 8), 0.3)
        _close(_scalar(_call(psnr, x + 0.1, x)), 20.0, atol=1e-3, what="PSNR of an error of 0.1 everywhere")

    def per_image():
        x = torch.full((2, 3, 8, 8), 0.3)
        y = x.clone()
        y[0] += 0.1   # 20 dB
        y[1] += 0.01  # 40 dB
        _close(_scalar(_call(psnr, y, x)), 30.0, atol=1e-3,
               what="PSNR of a batch of a 20 dB and a 40 dB image")

    def identical():
        _, clean = _photo_pair()
        v = _scalar(_call(psnr, clean, clean.clone()))
        if math.isnan(v) or v < 80:
            raise _Fail(f"PSNR of an image with itself is {v}, expected inf (or > 80 dB with an epsilon).")

    return _run("check_psnr", psnr, [
        ("a photo under simulated low light vs the clean photo", value_on_photo,
         "10 * log10(L ** 2 / MSE) with L = 1 for images in [0, 1] (not 255, not the natural log)"),
        ("an error of 0.1 everywhere gives 20 dB", known, "MSE = 0.01 there: 10 * log10(1 / 0.01) = 20"),
        ("per image, then averaged over the batch", per_image,
         "compute the MSE of each image (mean over dims 1, 2, 3), its PSNR, then the mean over the batch"),
        ("an image against itself gives inf", identical, "division by an MSE of 0 gives inf: that is fine"),
    ], verbose)
