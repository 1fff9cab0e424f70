"""Checks for the exercise notebooks: one ``check_*`` per task, friendly verdicts, no tracebacks.

Each check runs the learner's function on several cases (real photographs under simulated low
light from :mod:`lowlight_course.data`, edge cases, gradients where the function must be
differentiable), compares it with the package's reference (with a tolerance wide enough for any
correct implementation), prints one line per case and returns a :class:`CheckResult` with
``passed``, ``message`` and ``mistakes``. When a case fails, the check compares the learner's results
with the known-wrong variants it holds and names the mistake they match and the lecture section to
reread (:mod:`lowlight_course.checks._core`).

A check never raises because of the learner's code and never hangs: every call runs through
:func:`lowlight_course.guarded.run_guarded` with a time limit per call (``CALL_TIMEOUT``, 10 s,
unless a check states more). An unimplemented stub (``NotImplementedError``) gives "not implemented
yet"; an exception, ``sys.exit()``, a ``BaseException``, a time-out, an in-place change of an input,
a wrong shape or a wrong value gives ``passed=False`` and a message naming the case and the problem.

==================================  ========  =====================================================
check                               exercise  the function it calls
==================================  ========  =====================================================
:func:`check_mse`                   01        ``mse(pred, target) -> scalar tensor``
:func:`check_psnr`                  01        ``psnr(pred, target, data_range=1.0) -> dB`` (per image, mean)
:func:`check_psnr_prediction`       01        ``prediction() -> dB`` ("predict, then run")
:func:`check_rank_reversal`         01        ``make_pair(x) -> (a, b)`` (open-ended task)
:func:`check_gaussian_window`       02        ``gaussian_window(window_size, sigma) -> (window_size,)``
:func:`check_ssim`                  02        ``ssim(pred, target, data_range, window_size, sigma) -> (B,)``
:func:`check_shift_prediction`      02        ``prediction() -> choice``
:func:`check_fool_ssim`             02        ``fool(x) -> y`` (open-ended task)
:func:`check_soft_histogram`        03        ``soft_histogram(x, bins) -> (B, C, bins)``, any smooth kernel
:func:`check_triangular_histogram`  03        ``triangular_histogram(x, bins) -> (B, C, bins)``
:func:`check_histogram_prediction`  03        ``prediction() -> mass``
:func:`check_tone_curve`            03        ``enhance(low, target_hist) -> image`` (open-ended task)
:func:`check_balanced_weights`      04        ``balanced_weights(terms, pred, target) -> {name: weight}``
:func:`check_augmentation`          05        ``augment(clean, seed) -> low-light batch``
:func:`check_noise_estimator`       06        ``noise_in_flat_dark_patches(img, ref, patch_size=8) -> std``
:func:`check_stalled_terms`         07        ``find_stalled_terms(history, window=10) -> {name: reason}``
:func:`check_audit_prediction`      08        ``prediction() -> error source``
:func:`check_goal_loss`             08        ``loss(pred, target) -> {name: term}`` (open-ended task)
==================================  ========  =====================================================

:func:`use_or_reference` lets a notebook go on with the package's reference while a learner's
function is still a stub, with a visible note. :func:`check_answer` checks a numeric or multiple-choice
answer to a "predict, then run" question.

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
from .audit import *; __all__ += audit.__all__  # noqa: E402,E702,F401,F403 - exercise 08 (lowlight_course.checks.audit)
