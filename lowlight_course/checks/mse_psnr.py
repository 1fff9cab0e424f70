"""Checks for exercise 01: MSE and PSNR (build), the 8-bit prediction, the PSNR/SSIM rank reversal.

Each build check holds the known-wrong variants a learner writes (:class:`~._core.Mistake`) and,
when a case fails, names the ones the learner's results match, with the lecture section to reread.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import (CheckResult, Mistake, _Fail, _call, _close, _gen, _grad, _photo_pair, _run, _scalar,
                    _tensor, check_answer)

__all__ = ["check_mse", "check_psnr", "check_psnr_prediction", "check_rank_reversal", "reference_psnr",
           "MSE_MISTAKES", "PSNR_MISTAKES"]

_LECTURE_1 = "Lecture 1, section 1 (Build: MSE and PSNR by hand)"
_LECTURE_1_MEASURE = "Lecture 1, section 2 (Measure: six distortions, one MSE)"


def _mse_ref(pred, target):
    return ((pred.double() - target.double()) ** 2).mean()


MSE_MISTAKES = (
    Mistake("a sum instead of a mean", "the loss grows with the image size and the batch size, so one "
            "learning rate cannot fit every size.", _LECTURE_1, fn=lambda p, t: ((p - t) ** 2).sum()),
    Mistake("the difference is not squared", "positive and negative errors cancel: an image brighter in one "
            "half and darker in the other scores 0.", _LECTURE_1, fn=lambda p, t: (p - t).mean()),
    Mistake("the absolute difference (L1) instead of its square", "that is the L1 loss, another loss with "
            "another gradient; MSE squares each error.", _LECTURE_1, fn=lambda p, t: (p - t).abs().mean()),
    Mistake("a square root at the end (RMSE)", "the root of the MSE has other units and another gradient; "
            "PSNR and the lectures use the MSE itself.", _LECTURE_1, fn=lambda p, t: ((p - t) ** 2).mean().sqrt()),
    Mistake("the square of the mean error", "squaring after averaging lets errors of opposite sign cancel "
            "first: square each error, then average.", _LECTURE_1, fn=lambda p, t: (p - t).mean() ** 2),
    Mistake("the prediction clamped to [0, 1] before the loss", "a network's raw output can leave [0, 1]; "
            "clamping hides those errors from the loss and gives them no gradient, so nothing pulls such "
            "pixels back. The loss must see the prediction as it is.", _LECTURE_1,
            fn=lambda p, t: ((p.clamp(0, 1) - t) ** 2).mean()),
    Mistake("the mean over the pixels only", "that leaves one value per image and channel; the loss is one "
            "number, the mean over every element.", _LECTURE_1,
            fn=lambda p, t: ((p - t) ** 2).mean(dim=(-2, -1))),
    Mistake("divided by the number of pixels instead of the number of elements", "summing over batch and "
            "channels but dividing by H x W makes the loss B x C times too large.", _LECTURE_1,
            fn=lambda p, t: ((p - t) ** 2).sum() / (p.shape[-1] * p.shape[-2])),
    Mistake("the result has no gradient", "a Python number, a detached tensor or numpy cuts the autograd "
            "graph, so training cannot use it.", _LECTURE_1,
            test=lambda a, k, v: a[0].requires_grad and not (isinstance(v, torch.Tensor) and v.requires_grad)),
)


def check_mse(mse: Callable, verbose: bool = True) -> CheckResult:
    """Check ``mse(pred, target) -> scalar tensor``: the mean over every element of the squared
    difference, differentiable, on the prediction as it is (values outside [0, 1] included).

    Known mistakes it names: :data:`MSE_MISTAKES`.
    """
    def value_on_photo():
        low, clean = _photo_pair()
        _close(_scalar(_call(mse, low, clean)), float(_mse_ref(low, clean)), rtol=1e-4, atol=1e-9,
               what="MSE of a low-light photo against the clean one")

    def scalar():
        low, clean = _photo_pair()
        out = _tensor(_call(mse, low, clean))
        if out.dim() != 0:
            raise _Fail(f"returned shape {tuple(out.shape)}, expected a scalar (shape ()).")

    def batch_rect():
        g = _gen(1)
        a, b = torch.rand(3, 2, 8, 12, generator=g), torch.rand(3, 2, 8, 12, generator=g)
        _close(_scalar(_call(mse, a, b)), float(_mse_ref(a, b)), rtol=1e-4, what="MSE of a random (3, 2, 8, 12) batch")

    def signs():
        a = torch.zeros(1, 1, 4, 4)
        b = a.clone()
        b[..., :2, :] = 0.5
        a[..., 2:, :] = 0.5  # errors of +0.5 and -0.5 that cancel without the square
        _close(_scalar(_call(mse, a, b)), 0.25, rtol=1e-5, what="MSE with errors +0.5 and -0.5")

    def unclamped():
        _, clean = _photo_pair()
        raw = 1.6 * clean - 0.3  # a network's raw output: values below 0 and above 1
        _close(_scalar(_call(mse, raw, clean)), float(_mse_ref(raw, clean)), rtol=1e-4,
               what="MSE of a raw prediction with values outside [0, 1]")

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
            raise _Fail("the gradient differs from 2 (pred - target) / N, the gradient of the mean squared error.")

    return _run("check_mse", mse, [
        ("a photo under simulated low light vs the clean photo", value_on_photo, ""),
        ("returns a scalar tensor", scalar, ""),
        ("a random batch of shape (3, 2, 8, 12)", batch_rect, ""),
        ("positive and negative errors do not cancel", signs, ""),
        ("a raw prediction outside [0, 1] is scored as it is", unclamped, ""),
        ("an image against itself gives 0", identical, ""),
        ("differentiable, with the right gradient", gradient, ""),
    ], verbose, mistakes=MSE_MISTAKES, reference=_mse_ref, reread=_LECTURE_1)


# ---------------------------------------------------------------------------------------------
# PSNR with a data range
# ---------------------------------------------------------------------------------------------
def reference_psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Reference for exercise 01: ``10 log10(L^2 / MSE)`` per image (L = ``data_range``), mean over the batch.

    Shapes: (B, C, H, W), (B, C, H, W) -> scalar. Identical images give ``inf``.
    """
    per_image = ((pred.double() - target.double()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(data_range ** 2 / per_image)).mean().float()


def _psnr(p, t, data_range=1.0, *, L=None, log=torch.log10, factor=10.0, pooled=False, err="mse", power=2,
          peak=None):
    L = data_range if L is None else L
    if peak == "max":
        L = t.max()
    d = (p - t).double()
    e = d ** 2 if err == "mse" else d.abs()
    per = e.mean() if pooled else e.flatten(1).mean(1)
    if err == "rmse":
        per = (d ** 2).flatten(1).mean(1).sqrt()
    return (factor * log(L ** power / per)).mean()


PSNR_MISTAKES = (
    Mistake("L instead of L^2", "PSNR is 10 log10(L^2 / MSE); with L = 1 the two agree, so the mistake only "
            "shows for another data range (here it costs 10 log10(L) dB).", _LECTURE_1,
            fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, power=1)),
    Mistake("the data_range argument is ignored (L = 1 always)", "8-bit images (L = 255) then score 48 dB "
            "too low.", _LECTURE_1, fn=lambda p, t, data_range=1.0: _psnr(p, t, L=1.0)),
    Mistake("L = 255 whatever the data range", "on [0, 1] images this adds 20 log10(255) = 48.1 dB.", _LECTURE_1,
            fn=lambda p, t, data_range=1.0: _psnr(p, t, L=255.0)),
    Mistake("the peak taken from the image (its maximum) instead of data_range", "the peak is the largest "
            "value the format can hold, not the largest in this image.", _LECTURE_1,
            fn=lambda p, t, data_range=1.0: _psnr(p, t, peak="max")),
    Mistake("the natural logarithm", "ln x = 2.303 log10 x, so every value comes out 2.3 times too large.",
            _LECTURE_1, fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, log=torch.log)),
    Mistake("20 log10 of L^2 / MSE", "20 log10 goes with the root (L / RMSE); with L^2 / MSE the factor is 10: "
            "every value comes out doubled.", _LECTURE_1,
            fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, factor=20.0)),
    Mistake("the PSNR of the batch's pooled MSE", "papers (and lowlight_course.metrics.psnr) average the "
            "per-image PSNRs; one bad image then weighs as much as a good one.", _LECTURE_1,
            fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, pooled=True)),
    Mistake("the mean absolute error instead of the MSE", "PSNR is defined on the mean *squared* error.",
            _LECTURE_1, fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, err="mae")),
    Mistake("the RMSE in 10 log10(L^2 / ...)", "either 10 log10(L^2 / MSE) or 20 log10(L / RMSE); mixing them "
            "gives neither.", _LECTURE_1, fn=lambda p, t, data_range=1.0: _psnr(p, t, data_range, err="rmse")),
    Mistake("the ratio upside down (MSE / L^2)", "PSNR grows as the error falls: the signal's peak power goes "
            "on top.", _LECTURE_1, fn=lambda p, t, data_range=1.0: -_psnr(p, t, data_range)),
    Mistake("NaN for identical images", "an MSE of 0 gives a PSNR of +inf (or a large number with an epsilon), "
            "never NaN.", _LECTURE_1,
            test=lambda a, k, v: torch.equal(a[0], a[1]) and isinstance(v, torch.Tensor) and bool(torch.isnan(v).any())),
)


def check_psnr(psnr: Callable, verbose: bool = True) -> CheckResult:
    """Check ``psnr(pred, target, data_range=1.0)``: ``10 log10(L^2 / MSE)`` in dB with ``L = data_range``,
    per image, averaged over the batch (as :func:`lowlight_course.metrics.psnr`), on [0, 1] images,
    on images in [0, 2] and on 8-bit values (``data_range=255``). Known mistakes: :data:`PSNR_MISTAKES`.
    """
    def value_on_photo():
        low, clean = _photo_pair()
        _close(_scalar(_call(psnr, low, clean)), float(reference_psnr(low, clean)), atol=1e-3,
               what="PSNR (dB) of a low-light photo against the clean one")

    def known():
        x = torch.full((1, 3, 8, 8), 0.3)
        _close(_scalar(_call(psnr, x + 0.1, x)), 20.0, atol=1e-3, what="PSNR of an error of 0.1 everywhere")

    def per_image():
        x = torch.full((2, 3, 8, 8), 0.3)
        y = x.clone()
        y[0] += 0.1   # 20 dB
        y[1] += 0.01  # 40 dB
        _close(_scalar(_call(psnr, y, x)), 30.0, atol=1e-3, what="PSNR of a batch of a 20 dB and a 40 dB image")

    def range_two():
        x = torch.full((1, 3, 8, 8), 0.6)
        # values in [0, 2], error 0.2: MSE 0.04, PSNR = 10 log10(4 / 0.04) = 20 dB
        _close(_scalar(_call(psnr, x + 0.2, x, data_range=2.0)), 20.0, atol=1e-3,
               what="PSNR with data_range=2 of an error of 0.2 everywhere")

    def eight_bit():
        low, clean = _photo_pair("chelsea", 32)
        a, b = (low * 255).round(), (clean * 255).round()
        want = float(reference_psnr(a, b, 255.0))
        _close(_scalar(_call(psnr, a, b, data_range=255.0)), want, atol=1e-3,
               what="PSNR with data_range=255 of 8-bit values (0 to 255)")

    def identical():
        _, clean = _photo_pair()
        v = _scalar(_call(psnr, clean, clean.clone()))
        if math.isnan(v) or v < 80:
            raise _Fail(f"PSNR of an image with itself is {v}, expected inf (or > 80 dB with an epsilon).")

    return _run("check_psnr", psnr, [
        ("a photo under simulated low light vs the clean photo", value_on_photo, ""),
        ("an error of 0.1 everywhere gives 20 dB", known, ""),
        ("per image, then averaged over the batch", per_image, ""),
        ("data_range=2: an error of 0.2 gives 20 dB", range_two, ""),
        ("data_range=255 on 8-bit values", eight_bit, ""),
        ("an image against itself gives inf", identical, ""),
    ], verbose, mistakes=PSNR_MISTAKES, reference=reference_psnr, reread=_LECTURE_1,
        same=lambda a, b: _same_db(a, b))


def _same_db(a, b) -> bool:
    try:
        a, b = float(torch.as_tensor(a).double().mean()), float(torch.as_tensor(b).double().mean())
    except Exception:  # noqa: BLE001
        return False
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 2e-3


# ---------------------------------------------------------------------------------------------
# Predict, then run; the open-ended task
# ---------------------------------------------------------------------------------------------
def check_psnr_prediction(prediction: Callable, verbose: bool = True) -> CheckResult:
    """Check ``prediction() -> dB``: how many dB ``data_range=255`` adds to the PSNR of [0, 1] images
    (20 log10 255 = 48.13 dB; within 0.5 dB)."""
    return check_answer(prediction, 20 * math.log10(255), name="check_psnr_prediction", tol=0.5,
                        why="PSNR = 10 log10(L^2 / MSE) = 20 log10(L) - 10 log10(MSE): the MSE of [0, 1] images does "
                            "not change, so L = 255 adds 20 log10(255) dB to every value.",
                        reread=_LECTURE_1, verbose=verbose)


def _rank_reversal_photo(size: int = 64) -> torch.Tensor:
    from ..data import load_image

    return 0.2 + 0.6 * load_image("astronaut", size)[None]


def check_rank_reversal(make_pair: Callable, verbose: bool = True) -> CheckResult:
    """Check the open-ended task of exercise 01: ``make_pair(x) -> (a, b)``, two distortions of the photo
    ``x`` ((1, 3, 64, 64), values in [0.2, 0.8]) with values in [0, 1], such that ``a`` is at least 3 dB
    better than ``b`` by PSNR and yet at least 0.25 worse by SSIM (Wang et al. 2004, the package's
    :func:`lowlight_course.losses.ssim`)."""
    from ..losses import ssim

    x = _rank_reversal_photo()
    got = {}

    def returns_two_images():
        out = _call(make_pair, x.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Fail(f"make_pair returned {type(out).__name__}, expected a pair (a, b) of images.")
        for name, img in zip("ab", out):
            img = _tensor(img, f"image {name}").detach().float()
            if tuple(img.shape) != tuple(x.shape):
                raise _Fail(f"image {name} has shape {tuple(img.shape)}, expected {tuple(x.shape)} like x.")
            if not torch.isfinite(img).all() or float(img.min()) < 0 or float(img.max()) > 1:
                raise _Fail(f"image {name} has values outside [0, 1] (or NaN): clamp it to [0, 1].")
            got[name] = img

    def psnr_gap():
        if not got:
            raise _Fail("no images to measure (see the case above).")
        pa, pb = float(reference_psnr(got["a"], x)), float(reference_psnr(got["b"], x))
        if not pa >= pb + 3.0:
            raise _Fail(f"PSNR(a) = {pa:.2f} dB, PSNR(b) = {pb:.2f} dB: a must be at least 3 dB better than b.")

    def ssim_gap():
        if not got:
            raise _Fail("no images to measure (see the first case).")
        sa, sb = float(ssim(got["a"], x)), float(ssim(got["b"], x))
        if not sa <= sb - 0.25:
            raise _Fail(f"SSIM(a) = {sa:.3f}, SSIM(b) = {sb:.3f}: a must score at least 0.25 lower than b.")

    return _run("check_rank_reversal", make_pair, [
        ("returns two images like x, values in [0, 1]", returns_two_images, ""),
        ("a is at least 3 dB better than b by PSNR", psnr_gap, ""),
        ("and at least 0.25 worse by SSIM", ssim_gap, ""),
    ], verbose, reread=_LECTURE_1_MEASURE)
