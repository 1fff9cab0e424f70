"""Hostile losses never crash or hang the auditor; bad arguments give clear errors."""
import time

import pytest
import torch
from torch import nn

from lowlight_course import audit
from lowlight_course.audit import AuditFailure, AuditUsageError
from lowlight_course.audit.probe_data import probe_data


def raises(p, t):
    raise RuntimeError("boom")


def nan(p, t):
    return (p - t).mean() * float("nan")


def py_float(p, t):
    return float(((p - t) ** 2).mean())


def per_pixel(p, t):
    return (p - t) ** 2


def in_place(p, t):
    t.add_(0.1)
    return ((p - t) ** 2).mean()


def sleeper(p, t):
    time.sleep(600)


def exits(p, t):
    raise SystemExit(3)


def nan_on_black(p, t):
    return ((p - t) ** 2).mean() / (p.mean() > 0).float() * 1.0 if p.mean() > 0 else p.mean() * float("inf")


@pytest.mark.parametrize("loss, words", [
    (raises, "raised RuntimeError: boom"), (nan, "returned nan"), (py_float, "Python number"),
    (per_pixel, "instead of a scalar"), (in_place, "in place"), (exits, "tried to stop the program"),
])
def test_broken_call_gives_a_failed_row(loss, words):
    data = probe_data(quick=True)
    before = data.target.clone()
    r = audit(loss, quick=True)
    assert not r.passed
    row = r["call on a photo pair"]
    assert row.verdict == "fail" and words in row.detail, row.detail
    assert all(x.verdict == "skip" for x in r if x is not row)
    assert torch.equal(data.target, before)  # the auditor's data is intact
    with pytest.raises(AuditFailure, match="call on a photo pair"):
        r.raise_for_failures()


def test_sleep_600_is_stopped_by_the_time_limit():
    t0 = time.perf_counter()
    r = audit(sleeper, quick=True, call_timeout=0.5)
    assert time.perf_counter() - t0 < 5
    assert "did not finish within 0.5 s" in r["call on a photo pair"].detail


def test_a_loss_that_fails_only_on_some_inputs_fails_those_probes():
    r = audit(nan_on_black, quick=True, probes=["gradient liveness", "scale and range"])
    assert r["gradient at edge cases"].verdict == "fail"
    assert r["unrelated images"].verdict == "fail"
    assert r["call on a photo pair"].verdict == "pass"


def test_three_argument_loss_gets_low():
    seen = {}

    def loss(pred, target, low):
        seen["low"] = low.shape
        return ((pred - target) ** 2).mean() + 0 * low.mean()

    r = audit(loss, quick=True, probes=["spatial blindness"])
    assert seen["low"][1] == 3 and r.passed


def test_module_loss():
    class M(nn.Module):
        def forward(self, pred, target):
            return (pred - target).abs().mean()

    assert audit(M(), quick=True, probes=["spatial blindness"]).loss_name == "M()"


@pytest.mark.parametrize("bad, exc, words", [
    (42, AuditUsageError, "must be callable"),
    (nn.MSELoss, AuditUsageError, "is a class"),
    (lambda x: x, AuditUsageError, "1 required positional"),
    (lambda a, b, c, d: a, AuditUsageError, "4 required positional"),
])
def test_not_a_loss(bad, exc, words):
    with pytest.raises(exc, match=words):
        audit(bad)


def test_bad_arguments():
    f = lambda p, t: ((p - t) ** 2).mean()  # noqa: E731
    with pytest.raises(AuditUsageError, match="nn.Module"):
        audit(f, model=lambda x: x)
    with pytest.raises(ValueError, match="seed"):
        audit(f, seed=-1)
    with pytest.raises(ValueError, match="unknown probe"):
        audit(f, probes=["colour"])
    with pytest.raises(ValueError, match="call_timeout"):
        audit(f, call_timeout=0)
    with pytest.raises(ValueError, match="probe_timeout"):
        audit(f, probe_timeout=float("inf"))
