"""Parameter groups: the loss module's own parameters train at ``loss_lr``, warm-up scales each group."""
import pytest
import torch
from torch import nn

from lowlight_course.losses import WeightedLoss, l1, mse
from lowlight_course.models import UNet, seed_everything
from lowlight_course.train import fit


def _pairs():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(16, 3, 4, 4, generator=g)
    high = torch.nn.functional.interpolate(base, size=24, mode="bilinear", align_corners=False)
    return (0.2 * high + 0.01 * torch.rand(high.shape, generator=g)).clamp(0, 1), high


def _uncertainty(weight=1.0):
    return WeightedLoss({"mse": (mse, weight), "l1": (l1, weight)}, balance="uncertainty")


def _train(crit, steps=50, **kw):
    seed_everything(0)
    kw = {"lr": 1e-3, "batch_size": 4, "progress": False, "grad_norm_every": 0, **kw}
    return fit(UNet(base=4, depth=1), crit, _pairs(), steps=steps, **kw)


def test_loss_lr_moves_the_log_variances_100x_further():
    # Weights 1e-3 put the equilibrium s_i = log(w_i L_i) near -9, beyond what either rate reaches
    # in 50 steps, so Adam's steps of about one learning rate each show the ratio of the rates.
    moved = {}
    for loss_lr in (None, 0.1):
        crit = _uncertainty(1e-3)
        h = _train(crit, loss_lr=loss_lr)
        moved[loss_lr] = crit.log_vars.detach().abs()
        assert h.loss_lr == [loss_lr or 1e-3] * 50 and h.lr == [1e-3] * 50
        assert h.extra["loss_lr"] == (loss_lr or 1e-3)
    ratio = moved[0.1] / moved[None]
    assert ((ratio > 90) & (ratio < 110)).all(), ratio  # measured 99.9 and 99.8
    assert (moved[None] < 0.06).all()  # at lr 1e-3: about one learning rate per step


def test_log_variances_reach_their_equilibrium_only_with_their_own_rate():
    # Kendall et al. 2018: contribution 0.5 exp(-s) w L + 0.5 s is minimal in s at s = log(w L),
    # where the weighted part 0.5 exp(-s) w L equals 1/2 whatever the weight.
    weighted_part = {}
    for loss_lr in (0.1, None):
        crit = _uncertainty(1.0)
        h = _train(crit, steps=100, loss_lr=loss_lr)
        s = crit.log_vars.detach().tolist()
        weighted_part[loss_lr] = [h.terms[k][-1] - 0.5 * si for k, si in zip(("mse", "l1"), s)]
    assert all(abs(v - 0.5) < 0.15 for v in weighted_part[0.1]), weighted_part  # measured 0.57, 0.55
    assert all(v < 0.25 for v in weighted_part[None]), weighted_part  # measured 0.02, 0.09 at lr 1e-3


def test_warmup_scales_each_group_to_its_own_peak():
    h = _train(_uncertainty(), steps=6, loss_lr=0.1, warmup_steps=4)
    assert h.lr == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert h.loss_lr == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_loss_lr_follows_log_every_and_defaults_to_lr():
    h = _train(_uncertainty(), steps=7, log_every=3, lr=2e-3)
    assert h.steps == [0, 3, 6] and h.loss_lr == h.lr == [2e-3] * 3


def test_factory_optimizer_gets_two_groups_and_fit_sets_their_rates():
    seen = {}

    def factory(params):
        seen["params"] = params
        return torch.optim.SGD(params, lr=123.0)  # fit replaces the rates each step

    crit = _uncertainty()
    h = _train(crit, steps=3, optimizer=factory, loss_lr=0.05)
    groups = seen["params"]
    assert len(groups) == 2 and groups[1]["params"][0] is crit.log_vars and groups[1]["lr"] == 0.05
    assert h.lr == [1e-3] * 3 and h.loss_lr == [0.05] * 3


def test_optimizer_without_the_loss_parameters_is_rejected():
    crit = _uncertainty()

    def model_only(params):
        return torch.optim.Adam(params[0]["params"], lr=1e-3)

    with pytest.raises(ValueError, match="does not hold the loss's parameters"):
        _train(crit, steps=2, optimizer=model_only)


def test_a_parameter_shared_by_model_and_loss_trains_once_at_the_model_rate():
    class Tied(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net  # the loss holds the model: its parameters are not the loss's own

        def forward(self, pred, target, low):
            return ((pred - target) ** 2).mean()

    seed_everything(0)
    net = UNet(base=4, depth=1)
    h = fit(net, Tied(net), _pairs(), steps=2, batch_size=4, loss_lr=1.0, progress=False)
    assert h.extra["loss_parameters"] == 0 and h.loss_lr == [] and "loss_lr" not in h.extra


def test_no_loss_parameters_keeps_one_group():
    seen = {}

    def factory(params):
        seen["params"] = params
        return torch.optim.Adam(params)

    _train(lambda p, t, l: ((p - t) ** 2).mean(), steps=2, optimizer=factory)
    assert all(isinstance(p, torch.Tensor) for p in seen["params"])  # a plain list, as before


def test_loss_lr_with_the_groups_merged_by_the_optimizer_is_rejected():
    def merged(params):
        return torch.optim.Adam([p for g in params for p in g["params"]])

    with pytest.raises(ValueError, match="cannot apply"):
        _train(_uncertainty(), steps=2, optimizer=merged, loss_lr=0.1)
    assert len(_train(_uncertainty(), steps=2, optimizer=merged)) == 2  # without loss_lr it trains
