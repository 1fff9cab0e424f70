"""Tests for the check framework (lowlight_course.checks._core): the package re-exports every public
name, verdicts stay quiet with verbose=False, use_or_reference falls back to the reference, and the
checks are fast on correct code."""
import time

import pytest
import torch

from lowlight_course import checks as C
from lowlight_course import losses as L
from lowlight_course import metrics as M

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PUBLIC = ["CheckResult", "use_or_reference", "check_mse", "check_psnr", "check_gaussian_window", "check_ssim",
          "check_soft_histogram", "check_balanced_weights", "check_augmentation", "check_noise_estimator",
          "check_stalled_terms", "reference_balanced_weights", "reference_augment",
          "reference_noise_in_flat_dark_patches", "reference_find_stalled_terms"]


def mse_scratch(p, t):
    return ((p - t) ** 2).mean()


def test_every_public_name_is_exported():
    missing = [n for n in PUBLIC if n not in C.__all__ or not hasattr(C, n)]
    assert not missing, missing
    assert len(C.__all__) == len(set(C.__all__)), "a name is exported by two modules"


def test_verbose_false_prints_nothing(capsys):
    result = C.check_mse(L.mse, verbose=False)
    assert result.passed and capsys.readouterr().out == ""


def test_use_or_reference(capsys):
    def stub(p, t):
        raise NotImplementedError

    x, y = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    f = C.use_or_reference(stub, L.mse, "mse")
    assert float(f(x, y)) == 0.25 and float(f(x, y)) == 0.25
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == 1 and "lowlight_course.losses" in out
    g = C.use_or_reference(mse_scratch, L.mse, "mse")
    assert float(g(x, y)) == 0.25 and capsys.readouterr().out == ""
    wrong = lambda p, t: ((p - t) ** 2).sum()  # noqa: E731
    failed = C.check_mse(wrong, verbose=False)
    h = C.use_or_reference(wrong, L.mse, "mse", result=failed)
    assert float(h(x, y)) == 0.25 and "did not pass its check" in capsys.readouterr().out


def test_checks_are_fast():
    refs = [(C.check_mse, L.mse), (C.check_psnr, M.psnr), (C.check_gaussian_window, L.gaussian_window),
            (C.check_ssim, L.ssim), (C.check_soft_histogram, L.soft_histogram),
            (C.check_balanced_weights, C.reference_balanced_weights), (C.check_augmentation, C.reference_augment),
            (C.check_noise_estimator, C.reference_noise_in_flat_dark_patches),
            (C.check_stalled_terms, C.reference_find_stalled_terms)]
    t0 = time.perf_counter()
    for check, ref in refs:
        assert check(ref, verbose=False).passed, check.__name__
    assert time.perf_counter() - t0 < 20
