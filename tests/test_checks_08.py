"""The checks of exercise 08 accept the reference and reject every known-wrong variant, never raising."""
import json
import re
import time
from pathlib import Path

import pytest
import torch

from lowlight_course import checks as C
from lowlight_course import pitfalls as PF
from lowlight_course.checks import audit as CA
from lowlight_course.losses import l1, ssim

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def chroma(x):
    return x - x.mean(dim=1, keepdim=True)


def independent_goal_loss(pred, target):  # a different colour term: the RMS chroma error (eps: sqrt at 0)
    return {"fidelity": 0.2 * l1(pred, target) + 0.8 * (1 - ssim(pred, target)),
            "colour": 2.0 * ((chroma(pred) - chroma(target)).pow(2).mean() + 1e-8).sqrt()}


def test_goal_check_catches_a_nan_gradient_at_the_minimum():
    def rms_no_eps(pred, target):  # sqrt(0) has an infinite slope: NaN gradient where pred == target
        return {"l1": l1(pred, target), "colour": 2.0 * (chroma(pred) - chroma(target)).pow(2).mean().sqrt()}

    r = C.check_goal_loss(rms_no_eps, verbose=False)
    assert not r.passed and "identical images: NaN/Inf gradient" in r.message
    assert "a term without gradient" in r.mistakes


@pytest.mark.parametrize("loss", [CA.reference_goal_loss, independent_goal_loss])
def test_goal_check_accepts_correct_losses(loss):
    r = C.check_goal_loss(loss, verbose=False)
    assert r.passed, r.message


def scalar_sum(pred, target):
    return sum(CA.reference_goal_loss(pred, target).values())


def ssim_255(pred, target):
    return {"l1": 0.16 * l1(pred, target), "ssim": 0.84 * (1 - PF.naive_ssim(pred, target, 255.0, zero_padding=False)),
            "colour": (chroma(pred) - chroma(target)).abs().mean()}


def detached_colour(pred, target):
    return {"l1": 0.16 * l1(pred, target), "ssim": 0.84 * (1 - ssim(pred, target)),
            "colour": (chroma(pred) - chroma(target)).abs().mean().detach()}


def no_colour(pred, target):
    return {"l1": 0.16 * l1(pred, target), "ssim": 0.84 * (1 - ssim(pred, target))}


def colour_only_alone(pred, target):
    return {"colour": (chroma(pred) - chroma(target)).abs().mean()}


@pytest.mark.parametrize("loss, mistake, words", [
    (scalar_sum, "returns one scalar", "not a mapping"),
    (ssim_255, "constants for the wrong data range", "unrelated images [ssim]"),
    (detached_colour, "a term without gradient", "no grad_fn"),
    (no_colour, "no colour term", "colour cast costs"),
    (colour_only_alone, None, "one term"),
])
def test_goal_check_rejects_known_wrong_variants(loss, mistake, words):
    r = C.check_goal_loss(loss, verbose=False)
    assert not r.passed and words in r.message, r.message
    if mistake:
        assert mistake in r.mistakes, (r.mistakes, r.message)


def test_goal_check_stub_raiser_sleeper_and_non_callable():
    def stub(pred, target):
        raise NotImplementedError("return a mapping")

    r = C.check_goal_loss(stub, verbose=False)
    assert not r.implemented and "not implemented yet" in r.message

    def raiser(pred, target):
        raise ValueError("oops")

    r = C.check_goal_loss(raiser, verbose=False)
    assert not r.passed and "raised ValueError: oops" in r.message

    def sleeper(pred, target):
        time.sleep(600)

    C._core._TIMEOUT_SCALE, old = 0.02, C._core._TIMEOUT_SCALE
    try:
        t0 = time.perf_counter()
        r = C.check_goal_loss(sleeper, verbose=False)
        assert time.perf_counter() - t0 < 20 and not r.passed and "did not finish" in r.message
    finally:
        C._core._TIMEOUT_SCALE = old
    assert not C.check_goal_loss(42, verbose=False).passed


def test_prediction_check():
    assert C.check_audit_prediction(lambda: "spatial blindness", verbose=False).passed
    assert C.check_audit_prediction(lambda: "  Spatial   Blindness ", verbose=False).passed
    for wrong in ("precision", "perceptual mismatch", 3, None):
        r = C.check_audit_prediction(lambda w=wrong: w, verbose=False)
        assert not r.passed


def test_the_prediction_is_what_the_audit_measures():
    from lowlight_course import audit
    from lowlight_course.losses import HistogramLoss

    rep = audit(HistogramLoss(), quick=True)
    assert {r.source for r in rep.failures} == {CA.AUDIT_PREDICTION}


def test_sections_to_reread_exist():
    root = Path(__file__).resolve().parents[1]
    for reread in (CA._REREAD, CA._REREAD_SHUFFLE, CA._REREAD_SCALAR):
        m = re.fullmatch(r"Lecture (\d+), section (\d+) \((.+)\)", reread)
        assert m, reread
        path = next((root / "notebooks").glob(f"{int(m[1]):02d}_*.ipynb"))
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        assert any(n == m[2] and h.startswith(m[3]) for n, h in re.findall(r"^## (\d+)\. (.+)$", text, re.M)), reread
