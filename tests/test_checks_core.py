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
            (C.check_ssim, C.reference_ssim_per_image), (C.check_soft_histogram, L.soft_histogram),
            (C.check_triangular_histogram, C.reference_triangular_histogram), (C.check_psnr, C.reference_psnr),
            (C.check_balanced_weights, C.reference_balanced_weights), (C.check_augmentation, C.reference_augment),
            (C.check_noise_estimator, C.reference_noise_in_flat_dark_patches),
            (C.check_stalled_terms, C.reference_find_stalled_terms)]
    t0 = time.perf_counter()
    for check, ref in refs:
        assert check(ref, verbose=False).passed, check.__name__
    assert time.perf_counter() - t0 < 20


# ---------------------------------------------------------------------------------------------
# Every check is safe against hostile learner code (issue 9 item 4)
# ---------------------------------------------------------------------------------------------
from lowlight_course.checks import _core  # noqa: E402

ALL_CHECKS = [C.check_mse, C.check_psnr, C.check_gaussian_window, C.check_ssim, C.check_soft_histogram,
              C.check_triangular_histogram, C.check_psnr_prediction, C.check_rank_reversal,
              C.check_shift_prediction, C.check_fool_ssim, C.check_histogram_prediction, C.check_tone_curve,
              C.check_balanced_weights, C.check_augmentation, C.check_noise_estimator, C.check_stalled_terms]


def _spin(*a, **k):
    while True:
        pass


def _sleep(*a, **k):
    time.sleep(600)


def _exit(*a, **k):
    import sys
    sys.exit(0)


def _quit(*a, **k):
    exit()


def _interrupt(*a, **k):
    raise KeyboardInterrupt


def _chatty(*a, **k):
    for i in range(10_000):
        print(f"debug line {i}")
    raise NotImplementedError("still printing")


HOSTILE = {"infinite loop": (_spin, "did not finish within"), "10-minute sleep": (_sleep, "did not finish"),
           "sys.exit()": (_exit, "stop the program"), "exit()": (_quit, "stop the program"),
           "KeyboardInterrupt": (_interrupt, "KeyboardInterrupt")}


@pytest.fixture
def short_limits(monkeypatch):
    """Every stated limit x 0.05: 10 s per call -> 0.5 s, 20 s per case -> 1 s (a check's own limits too)."""
    monkeypatch.setattr(_core, "_TIMEOUT_SCALE", 0.05)


def _clean(result, out):
    for text in (result.message, out):
        assert "Traceback" not in text and 'File "' not in text, text
        assert "allow_unused" not in text and "retain_graph" not in text, text


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_functions_get_a_verdict_in_time(check, kind, short_limits, capsys):
    fn, phrase = HOSTILE[kind]
    t0 = time.perf_counter()
    result = check(fn)
    took = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert not result.passed and result.implemented
    assert phrase in result.message, result.message
    assert "not run" in result.message or len(result.cases) == 1  # the check stopped at the first such call
    assert took < 5.0, f"{check.__name__} took {took:.1f} s on {kind}"
    _clean(result, out)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_printing_learner_code_shows_only_a_few_lines(check, capsys):
    result = check(_chatty)
    out = capsys.readouterr().out
    assert not result.implemented
    assert out.count("debug line") <= 3, out[:2000]


def test_printing_is_reported_with_the_verdict(capsys):
    def chatty_mse(p, t):
        print("shapes", tuple(p.shape))
        return ((p - t) ** 2).mean()

    result = C.check_mse(chatty_mse)
    out = capsys.readouterr().out
    assert result.passed
    assert "printed" in out and out.count("| shapes") == 3


IN_PLACE = {
    C.check_mse: lambda p, t: ((p.mul_(1.5).clamp_(0, 1) - t) ** 2).mean(),
    C.check_psnr: lambda p, t, data_range=1.0: M.psnr(p.sub_(t).add_(t), t, data_range=data_range)
    if not p.requires_grad else M.psnr(p, t),
    C.check_ssim: lambda p, t, *a, **k: C.reference_ssim_per_image(p.mul_(0.5), t, *a, **k),
    C.check_triangular_histogram: lambda x, bins=16: C.reference_triangular_histogram(x.clamp_(0.1, 0.9), bins),
    C.check_soft_histogram: lambda x, bins=16, **k: L.soft_histogram(x.pow_(2), bins),
}


@pytest.mark.parametrize("check", list(IN_PLACE), ids=lambda c: c.__name__)
def test_in_place_modification_is_named(check, capsys):
    result = check(IN_PLACE[check])
    out = capsys.readouterr().out
    assert not result.passed and "in place" in result.message, result.message
    assert "modifies its input in place" in result.mistakes
    _clean(result, out)


@pytest.mark.parametrize("check,ref", [(C.check_mse, L.mse), (C.check_ssim, L.ssim)], ids=["mse", "ssim"])
def test_result_with_requires_grad_but_no_graph(check, ref, capsys):
    def rebuilt(p, t, *a, **k):
        return torch.tensor(float(ref(p.detach(), t)), requires_grad=True)

    result = check(rebuilt)
    out = capsys.readouterr().out
    assert not result.passed and "not connected to the input" in result.message, result.message
    _clean(result, out)


def test_a_check_stops_after_a_timeout(short_limits, capsys):
    calls = []

    def slow_once(p, t):
        calls.append(1)
        _spin()

    result = C.check_mse(slow_once)
    assert len(calls) == 1 and result.message.count("not run") == len(result.cases) - 1


def test_learner_backward_that_hangs_is_stopped(short_limits, capsys):
    class Hang(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            _spin()

    def mse_hanging_backward(p, t):
        return ((Hang.apply(p) - t) ** 2).mean()

    t0 = time.perf_counter()
    result = C.check_mse(mse_hanging_backward)
    assert not result.passed and "backward" in result.message and time.perf_counter() - t0 < 3.0


def test_a_case_of_many_slow_calls_is_stopped_as_a_case(short_limits, capsys):
    """Each call stays under its limit (0.5 s here) but the case's calls add up past its own (1 s)."""
    def slow_histogram(x, bins=16):
        time.sleep(0.4)
        return L.soft_histogram(x, bins)

    t0 = time.perf_counter()
    result = C.check_soft_histogram(slow_histogram)
    assert not result.passed and "time limit per case" in result.message, result.message
    assert "not run" in result.message and time.perf_counter() - t0 < 8.0
