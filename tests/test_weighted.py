import warnings

import pytest
import torch

from lowlight_course.losses import HistogramLoss, SSIMLoss, WeightedLoss, mse, spatial_consistency_loss
from lowlight_course.pitfalls import histogram_loss_histc, sample_pair


@pytest.fixture(scope="module")
def pair():
    return sample_pair("astronaut", 32)


def _terms():
    return {"mse": (mse, 0.3), "ssim": (SSIMLoss(), 0.3), "hist": (HistogramLoss(), 0.4)}


def test_plain_weighted_sum(pair):
    p, t = pair
    loss_fn = WeightedLoss(_terms())
    parts = loss_fn(p, t)
    assert list(parts) == ["mse", "ssim", "hist"]
    expected = 0.3 * mse(p, t) + 0.3 * SSIMLoss()(p, t) + 0.4 * HistogramLoss()(p, t)
    assert torch.allclose(sum(parts.values()), expected)


def test_low_is_passed_by_signature(pair):
    p, t = pair
    low = p * 0.2
    loss_fn = WeightedLoss({"spa": (lambda pred, target, low: spatial_consistency_loss(pred, low), 1.0),
                            "mse": (mse, 1.0)})
    parts = loss_fn(p, t, low)
    assert torch.allclose(parts["spa"], spatial_consistency_loss(p, low))
    assert torch.allclose(parts["mse"], mse(p, t))  # mse's optional 'reduction' did not receive low


def test_initial_balance(pair):
    p, t = pair
    loss_fn = WeightedLoss(_terms(), balance="initial")
    first = loss_fn(p, t)
    for name, w in (("mse", 0.3), ("ssim", 0.3), ("hist", 0.4)):
        assert float(first[name]) == pytest.approx(w, rel=1e-5)
    second = loss_fn(p * 0.5, t)   # scales stay those of the first call
    assert float(second["mse"]) > 0.3
    loss_fn.reset()
    assert torch.isnan(loss_fn.initial_values).all()


def test_gradnorm_equalises_gradient_norms(pair):
    p, t = pair
    loss_fn = WeightedLoss({k: (fn, 1.0) for k, (fn, _) in _terms().items()}, balance="gradnorm")
    pr = p.clone().requires_grad_()
    parts = loss_fn(pr, t)
    norms = [torch.autograd.grad(v, pr, retain_graph=True)[0].norm() for v in parts.values()]
    assert max(norms) / min(norms) == pytest.approx(1.0, rel=1e-3)
    rows = loss_fn.report(p, t)
    assert all(r["grad_share"] == pytest.approx(1 / 3, rel=1e-3) for r in rows)
    with pytest.raises(ValueError, match="does not require grad"):
        loss_fn(p, t)
    with torch.no_grad():   # evaluation reuses the last factors
        assert set(loss_fn(p, t)) == {"mse", "ssim", "hist"}


def test_uncertainty_has_parameters(pair):
    p, t = pair
    loss_fn = WeightedLoss(_terms(), balance="uncertainty")
    params = list(loss_fn.parameters())
    assert len(params) == 1 and params[0].shape == (3,)
    pr = p.clone().requires_grad_()
    total = sum(loss_fn(pr, t).values())
    total.backward()
    assert loss_fn.log_vars.grad is not None and pr.grad is not None
    # at s = 0 the contribution is 0.5 * w * L
    plain = float(sum(WeightedLoss(_terms())(p, t).values()))
    assert float(total.detach()) == pytest.approx(0.5 * plain, rel=1e-5)


def test_report_and_dead_term(pair):
    p, t = pair
    terms = _terms()
    terms["histc"] = (histogram_loss_histc, 0.4)
    loss_fn = WeightedLoss(terms)
    rows = loss_fn.report(p, t)
    d = rows.as_dict()
    assert d["histc"]["dead"] and d["histc"]["grad_norm"] == 0.0 and d["histc"]["grad_share"] == 0.0
    assert not d["mse"]["dead"] and d["mse"]["grad_norm"] > 0
    assert sum(r["grad_share"] for r in rows) == pytest.approx(1.0)
    assert "DEAD" in str(rows) and "histc" in repr(rows)
    assert "balance=None" in repr(loss_fn)
    pr = p.clone().requires_grad_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss_fn(pr, t)
    assert any("histc" in str(w.message) for w in caught)


def test_bad_construction(pair):
    with pytest.raises(TypeError):
        WeightedLoss({})
    with pytest.raises(ValueError, match="weight"):
        WeightedLoss({"mse": (mse, -1.0)})
    with pytest.raises(ValueError, match="balance"):
        WeightedLoss({"mse": (mse, 1.0)}, balance="magic")
    with pytest.raises(TypeError, match="callable"):
        WeightedLoss({"mse": ("mse", 1.0)})
    with pytest.raises(ValueError, match="scalar"):
        WeightedLoss({"mse": (lambda a, b: mse(a, b, reduction="none"), 1.0)})(*pair)
