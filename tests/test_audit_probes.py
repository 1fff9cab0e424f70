"""Each probe fails a purpose-built broken loss and passes a sound one; the article's losses get their verdicts."""
import math

import pytest
import torch

from lowlight_course import audit, pitfalls as PF
from lowlight_course.audit import examples as E
from lowlight_course.losses import HistogramLoss, SSIMLoss, l1, mse


def _quick(loss, source, **kw):
    return audit(loss, quick=True, probes=[source], **kw)


def ssim255(p, t):
    return 1 - PF.naive_ssim(p, t, 255.0, zero_padding=False)


def ssim1_conv(p, t):  # the same formula with L = 1: correct constants, but its conv2d runs in bf16 under autocast
    return 1 - PF.naive_ssim(p, t, 1.0, zero_padding=False)


def _v(report, probe):
    return report[probe].verdict


def test_scale_probe_flags_L255_and_passes_L1():
    bad = _quick(ssim255, "scale and range")
    assert _v(bad, "unrelated images") == "fail" and bad["unrelated images"].measured < 0.1
    assert _v(bad, "[0, 255] input") == "fail" and bad["[0, 255] input"].measured > 100  # Chapter 2's ratio
    good = _quick(ssim1_conv, "scale and range")
    assert _v(good, "unrelated images") == "pass" and good["unrelated images"].measured > 0.9
    assert _v(good, "[0, 255] input") == "pass" and good["[0, 255] input"].measured < 5
    ok = _quick(mse, "scale and range")  # validates its range: rejects [0, 255] input, which passes
    assert _v(ok, "[0, 255] input") == "pass" and "rejects" in ok["[0, 255] input"].detail


def test_liveness_probe():
    bad = _quick(PF.histogram_loss_histc, "gradient liveness")
    assert _v(bad, "call on a photo pair") == "pass" and _v(bad, "gradient of the total") == "fail"
    assert all(r.verdict == "skip" for r in bad.rows[2:])  # no term has a gradient: nothing else can run
    sqrt_loss = lambda p, t: ((p - t) ** 2).sum().sqrt()  # noqa: E731 - NaN gradient at identical images
    r = _quick(sqrt_loss, "gradient liveness")
    assert _v(r, "gradient at a photo pair") == "pass" and _v(r, "gradient at edge cases") == "fail"
    assert "identical images: NaN/Inf gradient" in r["gradient at edge cases"].detail
    good = _quick(l1, "gradient liveness")
    assert _v(good, "gradient at a photo pair") == _v(good, "gradient at edge cases") == "pass"


def test_precision_probe():
    bad = _quick(ssim1_conv, "precision")
    assert _v(bad, "autocast bfloat16") == "fail"
    assert _v(_quick(SSIMLoss(), "precision"), "autocast bfloat16") == "pass"


def test_perceptual_probe():
    bad = _quick(mse, "perceptual mismatch")
    assert _v(bad, "equal-MSE spread") == "fail" and bad["equal-MSE spread"].measured < 1e-3
    good = _quick(SSIMLoss(), "perceptual mismatch")
    assert _v(good, "equal-MSE spread") == "pass" and _v(good, "agreement with SSIM") == "pass"
    assert _v(good, "colour cast at equal MSE") == "warn"  # SSIM barely sees a colour cast (Chapter 1)


def test_dark_probe():
    saturating = lambda p, t: (m := ((p - t) ** 2).mean() ** 2) / (m + 6.25e-8)  # noqa: E731 - flat once m > 2.5e-4
    bad = _quick(saturating, "dark-region leniency")
    assert _v(bad, "same noisy pair, dark vs brightened") == "fail"
    good = _quick(l1, "dark-region leniency")
    assert _v(good, "same noisy pair, dark vs brightened") == "pass"
    assert abs(good["same noisy pair, dark vs brightened"].measured - 1) < 1e-3  # homogeneous: exactly 1
    assert _v(_quick(SSIMLoss(), "dark-region leniency"), "same noisy pair, dark vs brightened") == "warn"


def test_spatial_probe():
    bad = _quick(HistogramLoss(), "spatial blindness")
    assert _v(bad, "shuffled target") == "fail" and bad["shuffled target"].measured < 1e-3
    assert _v(_quick(mse, "spatial blindness"), "shuffled target") == "pass"


def test_balance_probe():
    bad = _quick(E.article_combined, "weight imbalance")
    row = bad["value vs gradient shares at the prediction"]
    assert row.verdict == "fail" and "dead weight: hist" in row.detail
    good = _quick(E.course_l1_ssim, "weight imbalance")
    assert _v(good, "value vs gradient shares at the prediction") == "pass"
    assert _v(_quick(mse, "weight imbalance"), "value vs gradient shares") == "skip"


def test_plateau_probe():
    saturated = lambda p, t: ((torch.sigmoid(40 * (p - 0.6)) - torch.sigmoid(40 * (t - 0.6))) ** 2).mean()  # noqa
    assert _v(_quick(saturated, "plateaus"), "gradient along low -> target") == "fail"
    uphill = lambda p, t: -((p - t) ** 2).mean()  # noqa: E731 - the target is a maximum
    assert _v(_quick(uphill, "plateaus"), "gradient along low -> target") == "fail"
    assert _v(_quick(mse, "plateaus"), "gradient along low -> target") == "pass"


def test_domain_probe():
    luma_only = lambda p, t: ((p.mean(1) - t.mean(1)) ** 2).mean()  # noqa: E731 - blind to light colour
    bad = _quick(luma_only, "domain sensitivity")
    assert _v(bad, "light colour vs exposure") == "fail" and bad["light colour vs exposure"].measured < 0.5
    good = _quick(mse, "domain sensitivity")
    assert _v(good, "light colour vs exposure") == "pass"


def test_article_losses_expected_verdicts():
    r = audit(E.article_combined)
    assert not r.passed
    assert r["gradient at a photo pair [hist]"].verdict == "fail"
    assert r["unrelated images [ssim]"].verdict == "fail"
    assert r["value vs gradient shares at the prediction"].verdict == "fail"
    assert r["shuffled target [hist]"].verdict == "warn" and r["shuffled target [hist]"].measured == 0.0
    r2 = audit(E.article_mse_ssim)
    assert r2["[0, 255] input [ssim]"].verdict == "fail" and r2["[0, 255] input [ssim]"].measured > 100
    assert r2["[0, 255] input [mse]"].verdict == "pass"
    r3 = audit(E.article_mse)
    assert r3["equal-MSE spread"].verdict == "fail"


@pytest.mark.parametrize("name", list(E.COURSE_LOSSES))
def test_course_fixed_losses_pass(name):
    r = audit(E.COURSE_LOSSES[name])
    assert r.passed, r.to_markdown()


def test_model_probes_run_and_leave_the_model_alone():
    from lowlight_course.models import UNet, seed_everything

    seed_everything(0)
    model = UNet(base=8, depth=1)
    before = [p.detach().clone() for p in model.parameters()]
    r = audit(E.course_l1_ssim, model=model, quick=True, probes=["weight imbalance", "plateaus"])
    assert r["value vs gradient shares at the parameters"].verdict in ("pass", "warn")
    assert r["short training"].verdict in ("pass", "warn") and r["short training"].measured is not None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    bad = audit(E.article_combined, model=UNet(base=8, depth=1), quick=True, probes=["plateaus"])
    assert bad["short training"].verdict == "fail" and "dead term 'hist'" in bad["short training"].detail


def test_deterministic():
    a, b = audit(E.article_combined, quick=True), audit(E.article_combined, quick=True)
    assert [(r.label, r.measured) for r in a] == [(r.label, r.measured) for r in b]
    assert all(r.measured is None or not math.isnan(r.measured) for r in a)


def test_zero_gradient_at_a_terms_minimum_is_no_failure():
    def chroma(x):
        return x - x.mean(dim=1, keepdim=True)

    loss = lambda p, t: {"l1": l1(p, t), "colour": (chroma(p) - chroma(t)).abs().mean()}  # noqa: E731
    r = _quick(loss, "gradient liveness")  # on a grey pair the colour term sits at its minimum: gradient 0
    assert r["gradient at edge cases [colour]"].verdict == "pass"
    frozen = lambda p, t: {"l1": l1(p, t), "round": ((p * 4).round() - (t * 4).round()).abs().mean()}  # noqa: E731
    r = _quick(frozen, "gradient liveness")
    assert r["gradient at a photo pair [round]"].verdict == "fail" and "exactly zero" in r["gradient at a photo pair [round]"].detail


def test_the_module_is_callable_and_keeps_its_attributes():
    import lowlight_course.audit as A

    assert callable(A) and A.AuditReport is not None and A.audit is not A
    assert isinstance(A(mse, quick=True, probes=["spatial blindness"]), A.AuditReport)
