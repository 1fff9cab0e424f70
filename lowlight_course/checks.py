"""Checks for the exercise notebooks: one ``check_*`` per exercise, friendly verdicts, no tracebacks.

Each check runs the learner's function on several cases (real photographs under simulated low
light from :mod:`lowlight_course.data`, edge cases, gradients where the function must be
differentiable), compares it with the package's reference (with a tolerance wide enough for any
correct implementation), prints one line per case and a hint for each failure, and returns a
:class:`CheckResult` with ``passed`` and ``message``.

A check never raises because of the learner's code: an unimplemented stub
(``NotImplementedError``) gives "not implemented yet", any other exception, a wrong shape or a
wrong value gives ``passed=False`` and a message naming the case, the problem and a fix.

=========================  ===========  ==============================================================
check                      exercise     the function it calls
=========================  ===========  ==============================================================
:func:`check_mse`          01           ``mse(pred, target) -> scalar tensor``
:func:`check_psnr`         01           ``psnr(pred, target) -> dB`` (per image, averaged over batch)
:func:`check_gaussian_window` 02        ``gaussian_window(window_size, sigma) -> (window_size,)``
:func:`check_ssim`         02           ``ssim(pred, target) -> mean SSIM`` (images in [0, 1])
:func:`check_soft_histogram` 03         ``soft_histogram(x, bins) -> (B, C, bins)``, rows sum to 1
:func:`check_balanced_weights` 04       ``balanced_weights(terms, pred, target) -> {name: weight}``
:func:`check_augmentation` 05           ``augment(clean, seed) -> low-light batch``
:func:`check_noise_estimator` 06        ``noise_in_flat_dark_patches(img, ref, patch_size=8) -> std``
:func:`check_stalled_terms` 07          ``find_stalled_terms(history, window=10) -> {name: reason}``
=========================  ===========  ==============================================================

:func:`use_or_reference` lets a notebook go on with the package's reference while a learner's
function is still a stub, with a visible note.

Example:
    >>> import torch
    >>> def my_mse(pred, target):
    ...     return ((pred - target) ** 2).mean()
    >>> check_mse(my_mse, verbose=False).passed
    True
    >>> def stub(pred, target):
    ...     raise NotImplementedError("square the difference")
    >>> r = check_mse(stub, verbose=False)
    >>> r.passed, r.message.splitlines()[0]
    (False, 'check_mse: not implemented yet (square the difference).')
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = [
    "CheckResult", "use_or_reference", "check_mse", "check_psnr", "check_gaussian_window", "check_ssim",
    "check_soft_histogram", "check_balanced_weights", "check_augmentation", "check_noise_estimator",
    "check_stalled_terms", "reference_balanced_weights", "reference_augment",
    "reference_noise_in_flat_dark_patches", "reference_find_stalled_terms",
]

PASS, FAIL = "[ok]  ", "[FAIL]"


# ---------------------------------------------------------------------------------------------
# Machinery
# ---------------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """What a check found. ``bool(result)`` is ``result.passed``.

    Attributes:
        name: the check, e.g. ``"check_mse"``.
        passed: True when every case passed.
        message: the verdict as printed (one line per case, hints for the failures).
        implemented: False when the function is still a ``NotImplementedError`` stub.
        cases: ``(case, passed, detail)`` for every case that ran.
    """

    name: str
    passed: bool
    message: str
    implemented: bool = True
    cases: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        state = "passed" if self.passed else ("not implemented yet" if not self.implemented else "failed")
        return f"CheckResult({self.name}: {state})"


class _Fail(Exception):
    """A case failed; the message is for the learner."""


class _NotImplemented(Exception):
    """The learner's function is still a stub."""


def _call(fn: Callable, *args, what: str = "your function", **kwargs):
    """Call the learner's ``fn``; turn its exceptions into :class:`_Fail` / :class:`_NotImplemented`."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise _NotImplemented(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any learner error becomes a message
        raise _Fail(f"{what} raised {type(exc).__name__}: {exc}") from None


def _run(name: str, fn, cases, verbose: bool) -> CheckResult:
    """Run ``cases`` (``(description, function, hint)``); build, print and return the verdict."""
    if not callable(fn):
        msg = f"{name}: expected a function, got {type(fn).__name__}. Pass the function itself, without ()."
        if verbose:
            print(msg)
        return CheckResult(name, False, msg)
    rows, lines = [], []
    for desc, case, hint in cases:
        try:
            case()
        except _NotImplemented as exc:
            detail = str(exc).strip()
            msg = (f"{name}: not implemented yet" + (f" ({detail})" if detail else "") + ".\n"
                   f"  Replace the `raise NotImplementedError(...)` line with your code, then run this cell again.")
            if verbose:
                print(msg)
            return CheckResult(name, False, msg, implemented=False, cases=rows)
        except _Fail as exc:
            rows.append((desc, False, str(exc)))
            lines.append(f"  {FAIL} {desc}: {exc}" + (f"\n         hint: {hint}" if hint else ""))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be compared
            rows.append((desc, False, f"{type(exc).__name__}: {exc}"))
            lines.append(f"  {FAIL} {desc}: the result could not be checked ({type(exc).__name__}: {exc})"
                         + (f"\n         hint: {hint}" if hint else ""))
            continue
        rows.append((desc, True, ""))
        lines.append(f"  {PASS} {desc}")
    failed = sum(not ok for _, ok, _ in rows)
    head = (f"{name}: all {len(rows)} cases passed. Well done!" if not failed
            else f"{name}: {failed} of {len(rows)} cases failed.")
    msg = head + "\n" + "\n".join(lines)
    if verbose:
        print(msg)
    return CheckResult(name, failed == 0, msg, cases=rows)


def _tensor(out, what="your function") -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out))
    raise _Fail(f"{what} returned {type(out).__name__}, expected a torch.Tensor.")


def _scalar(out, what="your function") -> float:
    t = _tensor(out, what)
    if t.numel() != 1:
        raise _Fail(f"{what} returned shape {tuple(t.shape)}, expected a single number (a scalar). "
                    f"Average over every dimension (batch, channels, pixels).")
    return float(t.detach().reshape(()))


def _close(got: float, want: float, *, rtol: float = 0.0, atol: float = 0.0, what: str = "value"):
    if math.isnan(want) and math.isnan(got):
        return
    if not math.isfinite(got) and got != want:
        raise _Fail(f"{what} is {got}, expected {want:.6g}.")
    if abs(got - want) > atol + rtol * abs(want):
        raise _Fail(f"{what} is {got:.6g}, expected {want:.6g}.")


@functools.lru_cache(maxsize=None)
def _photo_pair_cached(name: str, size: int, domain: str, seed: int):
    from .data import load_image, simulate_low_light

    clean = load_image(name, size)[None]
    low = simulate_low_light(clean, domain, seed=seed)
    return low, clean


def _photo_pair(name="coffee", size=48, domain="indoor_tungsten", seed=0):
    """(low, clean) of a bundled photograph under simulated low light, both (1, 3, size, size)."""
    low, clean = _photo_pair_cached(name, size, domain, seed)
    return low.clone(), clean.clone()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def use_or_reference(learner_fn: Callable, reference_fn: Callable, name: str = "your function",
                     result: CheckResult | None = None) -> Callable:
    """Your function where it works, the package's reference where it is still a stub.

    Returns a function with the same arguments. While ``learner_fn`` raises ``NotImplementedError``
    (the exercise stub), the reference is used instead, with a one-time note, so the cells below
    run either way. With ``result`` (the :class:`CheckResult` of your function's check), a function
    that has not passed its check is not used at all: the reference is, with a note saying so.

    Example:
        >>> from lowlight_course.losses import mse
        >>> def my_mse(pred, target):
        ...     raise NotImplementedError
        >>> f = use_or_reference(my_mse, mse, "mse")
        >>> import torch; x = torch.zeros(1, 1, 2, 2)
        >>> float(f(x, x + 0.5))
        Note: your mse is not implemented yet; using the reference lowlight_course.losses.pixel.mse instead.
        0.25
    """
    ref_name = f"{getattr(reference_fn, '__module__', '')}.{getattr(reference_fn, '__name__', 'reference')}"
    ref_name = ref_name.lstrip(".")
    if result is not None and not result.passed:
        why = "is not implemented yet" if not result.implemented else "did not pass its check yet"
        print(f"Note: your {name} {why}; using the reference {ref_name} below.")
        return reference_fn
    noted = []

    @functools.wraps(learner_fn)
    def wrapper(*args, **kwargs):
        try:
            return learner_fn(*args, **kwargs)
        except NotImplementedError:
            if not noted:
                noted.append(True)
                print(f"Note: your {name} is not implemented yet; using the reference {ref_name} instead.")
            return reference_fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# 01: MSE and PSNR
# ---------------------------------------------------------------------------------------------
def check_mse(mse: Callable, verbose: bool = True) -> CheckResult:
    """Check ``mse(pred, target)``: the mean over every element of ``(pred - target) ** 2``, a scalar
    tensor, differentiable. Rejects a sum instead of a mean, a missing square, a square root (RMSE),
    a mean over some dimensions only, and an implementation without gradient."""
    from .losses import mse as ref

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
        out = _tensor(_call(mse, p, t))
        if not out.requires_grad:
            raise _Fail("the result has no gradient (no grad_fn): keep the computation in torch "
                        "(no .item(), numpy or float()).")
        (grad,) = torch.autograd.grad(out.sum(), p)
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
    from .metrics import psnr as ref

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


# ---------------------------------------------------------------------------------------------
# 02: Gaussian window and SSIM
# ---------------------------------------------------------------------------------------------
def check_gaussian_window(gaussian_window: Callable, verbose: bool = True) -> CheckResult:
    """Check ``gaussian_window(window_size, sigma)``: a 1-D tensor of ``window_size`` taps
    ``exp(-d^2 / (2 sigma^2))`` at offsets ``d`` from the centre, normalised to sum 1. Rejects an
    unnormalised window, a wrong sigma convention, an off-centre or even-length window, and the
    ``torch.exp`` of a Python float."""
    from .losses import gaussian_window as ref

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
    from .losses import ssim as ref

    def compare(p, t, what, tol=2e-4):
        _close(_scalar(_call(ssim, p, t)), float(ref(p, t)), atol=tol, what=what)

    def photo():
        low, clean = _photo_pair("coffee", 48)
        compare(low, clean, "SSIM of a low-light photo against the clean one")

    def enhanced():
        from .pitfalls import sample_pair

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
        out = _tensor(_call(ssim, p, clean))
        if not out.requires_grad:
            raise _Fail("the result has no gradient: keep the computation in torch.")
        (grad,) = torch.autograd.grad(out.sum(), p)
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


# ---------------------------------------------------------------------------------------------
# 03: soft histogram
# ---------------------------------------------------------------------------------------------
def check_soft_histogram(soft_histogram: Callable, verbose: bool = True) -> CheckResult:
    """Check ``soft_histogram(x, bins)``: per-image, per-channel histograms (B, C, bins) over
    equal bins on [0, 1], each summing to 1, close to the hard histogram on photographs, and
    differentiable. Any reasonable smooth kernel of width about one bin passes. Rejects
    ``torch.histc`` (no gradient), unnormalised counts, histograms pooled over channels or images,
    and a kernel so wide (or so misplaced) that the histogram no longer resembles the image's."""
    from .losses import hard_histogram, soft_histogram as ref

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
        weights = torch.linspace(-1, 1, 16)
        try:
            (grad,) = torch.autograd.grad((out * weights).sum(), x, allow_unused=True)
        except RuntimeError as exc:
            raise _Fail(f"backward failed: {exc}") from None
        if grad is None or not torch.isfinite(grad).all() or float(grad.abs().max()) == 0.0:
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


# ---------------------------------------------------------------------------------------------
# 04: balancing a weighted loss by gradient norms
# ---------------------------------------------------------------------------------------------
def reference_balanced_weights(terms: dict, pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Reference for exercise 04: ``w_i = mean_j(g_j) / g_i``, ``g_i = |d L_i / d pred|``.

    Every weighted term then has the same gradient norm (the mean of the terms'), so each gets an
    equal share of the update and the total gradient budget ``sum_i g_i`` is kept. Terms with no
    gradient keep weight 1.0 (they cannot be balanced; see ``WeightedLoss.report``). Equal to
    :class:`lowlight_course.losses.WeightedLoss` with ``balance="gradnorm"`` and equal weights.
    """
    from .losses import WeightedLoss

    loss = WeightedLoss({name: (fn, 1.0) for name, fn in terms.items()}, balance="gradnorm", warn_dead=False)
    return {row["name"]: row["effective_weight"] for row in loss.report(pred, target)}


def _grad_norms(terms, pred, target):
    p = pred.detach().clone().requires_grad_(True)
    norms = {}
    for name, fn in terms.items():
        v = fn(p, target)
        if not v.requires_grad:
            norms[name] = 0.0
            continue
        (g,) = torch.autograd.grad(v, p, allow_unused=True)
        norms[name] = 0.0 if g is None else float(g.norm())
    return norms


def _sample_terms(dead: bool = False):
    from .losses import HistogramLoss, mse, ssim

    hist = HistogramLoss(bins=16)
    terms = {"mse": lambda p, t: mse(p, t), "ssim": lambda p, t: 1 - ssim(p, t), "hist": lambda p, t: hist(p, t)}
    if dead:
        from .pitfalls import histogram_loss_histc

        terms["histc"] = lambda p, t: histogram_loss_histc(p, t)
    return terms


def check_balanced_weights(balanced_weights: Callable, verbose: bool = True) -> CheckResult:
    """Check ``balanced_weights(terms, pred, target) -> {name: weight}`` (gradient-norm balancing).

    ``terms`` maps names to ``loss_fn(pred, target) -> scalar``. The weights must be plain numbers
    (or tensors without gradient) such that every weighted term has the same gradient norm with
    respect to ``pred`` (shares within 1/n +- 0.02) and the summed gradient norm is unchanged
    (within 2 %). Rejects equal weights, weights ``1 / L_i`` (initial-value normalisation),
    ``1 / g_i`` without rescaling, weights ``g_i`` (inverted), weights that carry gradients, and a
    division by zero for a term with no gradient."""

    def get(terms, pred, target):
        out = _call(balanced_weights, terms, pred, target)
        if not isinstance(out, dict):
            raise _Fail(f"returned {type(out).__name__}, expected a dict name -> weight.")
        if set(out) != set(terms):
            raise _Fail(f"returned the keys {sorted(out)}, expected {sorted(terms)}.")
        weights = {}
        for k, v in out.items():
            if isinstance(v, torch.Tensor) and v.requires_grad:
                raise _Fail(f"the weight of {k!r} carries a gradient: detach it (float(...) or "
                            f".detach()), or the optimiser will also shrink the weights.")
            w = _scalar(v, f"the weight of {k!r}")
            if not math.isfinite(w) or w < 0:
                raise _Fail(f"the weight of {k!r} is {w}: weights must be finite and >= 0.")
            weights[k] = w
        return weights

    def sample():
        from .pitfalls import sample_pair

        return sample_pair("astronaut", 48)

    def shares(dead=False):
        def case():
            pred, target = sample()
            terms = _sample_terms(dead)
            w = get(terms, pred, target)
            g = _grad_norms(terms, pred, target)
            live = [k for k in terms if g[k] > 0]
            weighted = {k: w[k] * g[k] for k in live}
            total = sum(weighted.values())
            if total <= 0:
                raise _Fail("all weighted gradient norms are 0.")
            share = {k: weighted[k] / total for k in live}
            bad = {k: round(s, 3) for k, s in share.items() if abs(s - 1 / len(live)) > 0.02}
            if bad:
                raise _Fail(f"gradient shares {({k: round(s, 3) for k, s in share.items()})}, "
                            f"expected {1 / len(live):.3f} each.")
            budget = sum(g[k] for k in live)
            if abs(total - budget) > 0.02 * budget:
                raise _Fail(f"the weighted gradient norms sum to {total:.4g}, expected the unweighted "
                            f"sum {budget:.4g}: scale the weights so the total gradient is kept.")
        return case

    def no_side_effects():
        pred, target = sample()
        before = pred.clone()
        get(_sample_terms(), pred, target)
        if not torch.equal(pred, before) or pred.requires_grad or pred.grad is not None:
            raise _Fail("pred was modified (values, requires_grad or .grad): work on "
                        "pred.detach().clone().requires_grad_(True).")

    return _run("check_balanced_weights", balanced_weights, [
        ("MSE, 1 - SSIM and histogram get equal gradient shares", shares(False),
         "measure g_i = |d L_i / d pred| with torch.autograd.grad, then w_i = mean(g) / g_i"),
        ("a dead term (torch.histc) does not break the others", shares(True),
         "a term whose value has no grad_fn has g = 0: leave its weight at 1.0 (do not divide by 0)"),
        ("pred is left untouched", no_side_effects, "work on a detached copy of pred"),
    ], verbose)


# ---------------------------------------------------------------------------------------------
# 05: augmentation across illumination domains
# ---------------------------------------------------------------------------------------------
def reference_augment(clean: torch.Tensor, seed: int) -> torch.Tensor:
    """Reference for exercise 05: :func:`~lowlight_course.data.simulate_low_light` with the
    ``"randomized"`` domain (random light colour, exposure and noise, each image its own draw)."""
    from .data import simulate_low_light

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


# ---------------------------------------------------------------------------------------------
# 06: noise in flat dark patches
# ---------------------------------------------------------------------------------------------
def reference_noise_in_flat_dark_patches(img, ref, patch_size: int = 8) -> float:
    """Reference for exercise 06: :func:`lowlight_course.metrics.noise_level` with a reference."""
    from .metrics import noise_level

    return float(noise_level(img, ref, patch_size=patch_size))


def check_noise_estimator(noise_in_flat_dark_patches: Callable, verbose: bool = True) -> CheckResult:
    """Check ``noise_in_flat_dark_patches(img, ref, patch_size=8) -> float`` against
    :func:`lowlight_course.metrics.noise_level` (conventions: non-overlapping patches; a patch is
    used where the reference's luma has mean < 0.25 and std < 0.02; noise = std of ``img - ref``
    in the patch, its mean removed; root-mean-square over patches and channels; ``nan`` when no
    patch qualifies). Sample or population std both pass (5 % tolerance). Rejects: counting a
    brightness offset as noise, using bright or textured patches, returning 0 instead of nan,
    returning a variance."""
    from .metrics import noise_level

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
        from .data import load_image

        ref = load_image("astronaut", 64)[None] * 0.25
        compare((ref + noise(ref.shape, 0.03, 5)).clamp(0, 1), ref, "noise of std 0.03 on a dark photograph")

    def night():
        from .data import procedural_scene

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


# ---------------------------------------------------------------------------------------------
# 07: dead terms and plateaus in a training history
# ---------------------------------------------------------------------------------------------
def reference_find_stalled_terms(history, window: int = 10, grad_tol: float = 1e-8,
                                 min_rel_decrease: float = 0.01) -> dict:
    """Reference for exercise 07. For each term of ``history.terms``:

    * ``"dead"`` when its last ``window`` recorded gradient norms are all <= ``grad_tol``;
    * else ``"plateau"`` when over its last ``window`` recorded values it fell by less than
      ``min_rel_decrease`` of its value at the start of that window (or rose);
    * healthy terms are left out.
    """
    out = {}
    for name, values in history.terms.items():
        grads = history.grad_norms.get(name, [])[-window:]
        if grads and max(abs(float(g)) for g in grads) <= grad_tol:
            out[name] = "dead"
            continue
        vals = [float(v) for v in values[-window:]]
        if len(vals) < 2:
            continue
        start, end = vals[0], vals[-1]
        if start - end < min_rel_decrease * abs(start):
            out[name] = "plateau"
    return out


def _history(terms: dict, grads: dict, grad_every: int = 1):
    from .train import History

    n = len(next(iter(terms.values()))) if terms else 0
    h = History()
    h.steps = list(range(n))
    h.terms = {k: [float(x) for x in v] for k, v in terms.items()}
    h.loss = [sum(v[i] for v in h.terms.values()) for i in range(n)]
    h.grad_norm_steps = list(range(0, n, grad_every))
    h.grad_norms = {k: [float(x) for x in v] for k, v in grads.items()}
    return h


def check_stalled_terms(find_stalled_terms: Callable, verbose: bool = True) -> CheckResult:
    """Check ``find_stalled_terms(history, window=10) -> {name: "dead" | "plateau"}`` on synthetic
    :class:`~lowlight_course.train.History` objects: a healthy decaying term is not flagged; a term
    with zero gradient is ``"dead"`` even when its value still changes; a term that fell early and
    then flattened is a ``"plateau"`` (only the last ``window`` records count); a healthy term at a
    tiny scale is not flagged (the decrease is relative); a rising term is a plateau; short and
    empty histories work. Rejects: checking only the gradient or only the values, looking at the
    whole history, an absolute threshold, and returning a list instead of a dict."""
    n = 40
    t = torch.arange(n, dtype=torch.float64)
    healthy = (0.05 * torch.exp(-t / 15) + 0.001).tolist()
    healthy_g = (0.3 * torch.exp(-t / 30)).tolist()

    def get(history, **kw):
        out = _call(find_stalled_terms, history, **kw)
        if not isinstance(out, dict):
            raise _Fail(f"returned {type(out).__name__}, expected a dict name -> 'dead' or 'plateau'.")
        return out

    def expect(history, want, what, **kw):
        got = get(history, **kw)
        if got != want:
            raise _Fail(f"{what}: got {got}, expected {want}.")

    def dead_vs_healthy():
        h = _history({"mse": healthy, "histc": [3e-4] * n}, {"mse": healthy_g, "histc": [0.0] * n})
        expect(h, {"histc": "dead"}, "a healthy term and a constant term with zero gradient")

    def dead_but_moving():
        moving = (3e-4 * torch.exp(-t / 20)).tolist()  # its value changes with the model, no gradient
        h = _history({"mse": healthy, "histc": moving}, {"mse": healthy_g, "histc": [0.0] * n})
        expect(h, {"histc": "dead"}, "a term whose value falls but whose gradient is 0")

    def plateau():
        flat = [0.2 * math.exp(-i / 3) + 0.01 if i < 15 else 0.2 * math.exp(-5) + 0.01 for i in range(n)]
        h = _history({"mse": healthy, "ssim": flat}, {"mse": healthy_g, "ssim": [0.05] * n})
        expect(h, {"ssim": "plateau"}, "a term that fell during 15 steps and then stayed flat")

    def tiny_scale():
        small = (1e-5 * torch.exp(-t / 10)).tolist()
        h = _history({"hist": small}, {"hist": (1e-4 * torch.ones(n)).tolist()})
        expect(h, {}, "a healthy term of size 1e-5 (falling by 60 % per window)")

    def rising():
        up = (0.01 + 0.001 * t).tolist()
        h = _history({"mse": healthy, "tv": up}, {"mse": healthy_g, "tv": [0.1] * n})
        expect(h, {"tv": "plateau"}, "a term that rises")

    def sparse_grads():
        h = _history({"mse": healthy, "histc": [3e-4] * n},
                     {"mse": healthy_g[::5], "histc": [0.0] * (n // 5)}, grad_every=5)
        expect(h, {"histc": "dead"}, "gradient norms recorded every 5 steps only")

    def window_arg():
        flat = [0.1 * math.exp(-i / 4) if i < 30 else 0.1 * math.exp(-30 / 4) for i in range(n)]
        h = _history({"a": flat}, {"a": [0.1] * n})
        expect(h, {"a": "plateau"}, "flat for the last 10 records, window=8", window=8)
        expect(h, {}, "the same history with window=20 (still falling at its start)", window=20)

    def short_and_empty():
        h = _history({"mse": healthy[:4]}, {"mse": healthy_g[:4]})
        expect(h, {}, "a 4-step healthy history (shorter than the window)")
        expect(_history({}, {}), {}, "an empty history")

    return _run("check_stalled_terms", find_stalled_terms, [
        ("a dead term next to a healthy one", dead_vs_healthy,
         "dead: every gradient norm in the last `window` records is <= grad_tol"),
        ("dead means no gradient, even if the value moves", dead_but_moving,
         "test the gradient norms first, then the values"),
        ("a term that stopped decreasing", plateau, "compare the first and last value of the last `window` records"),
        ("a healthy term at a tiny scale", tiny_scale, "use a relative decrease: (start - end) / |start|"),
        ("a rising term is a plateau", rising, "a rise is 'not decreasing' too"),
        ("gradient norms recorded every few steps", sparse_grads, "history.grad_norms[name] is its own list"),
        ("the window argument", window_arg, "use the last `window` records only"),
        ("short and empty histories", short_and_empty, "use what there is when fewer than `window` records exist"),
    ], verbose)
