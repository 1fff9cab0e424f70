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
from ._core import *  # noqa: F401,F403
from .mse_psnr import *  # noqa: F401,F403
from .ssim import *  # noqa: F401,F403
from .histogram import *  # noqa: F401,F403
from .balancing import *  # noqa: F401,F403
from .augmentation import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .plateaus import *  # noqa: F401,F403

from . import _core, mse_psnr, ssim, histogram, balancing, augmentation, noise, plateaus

__all__ = [name for mod in (_core, mse_psnr, ssim, histogram, balancing, augmentation, noise, plateaus) for name in mod.__all__]
