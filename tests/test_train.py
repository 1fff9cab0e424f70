import math

import pytest
import torch
from torch import nn

from lowlight_course.models import CurveNet, UNet, seed_everything
from lowlight_course.train import History, TrainingDivergedError, fit, predict


def mse(pred, target, low):
    return ((pred - target) ** 2).mean()


def terms(pred, target, low):
    return {"mse": ((pred - target) ** 2).mean(), "l1": 0.5 * (pred - target).abs().mean()}


def test_smoke_training_reduces_loss_quickly(tiny_pairs):
    seed_everything(0)
    h = fit(UNet(base=16), mse, tiny_pairs, steps=60, batch_size=8, progress=False)
    assert isinstance(h, History) and len(h) == 60
    assert h.final("loss", last=5) < 0.5 * h.loss[0]
    assert h.extra["seconds"] < 60  # ~2 s on 2 idle CPU cores; loose for loaded CI machines


def test_same_seed_same_history(tiny_pairs):
    runs = []
    for _ in range(2):
        seed_everything(1)
        runs.append(fit(UNet(base=4), terms, tiny_pairs, steps=12, batch_size=4, seed=5, progress=False))
    assert runs[0].as_dict()["terms"] == runs[1].as_dict()["terms"]
    assert runs[0].grad_norms == runs[1].grad_norms
    seed_everything(1)
    other = fit(UNet(base=4), terms, tiny_pairs, steps=12, batch_size=4, seed=6, progress=False)
    assert other.loss != runs[0].loss


def test_dict_terms_and_grad_norms(tiny_pairs):
    def loss(pred, target, low):
        return {**terms(pred, target, low), "dead": torch.tensor(0.3)}

    h = fit(UNet(base=4), loss, tiny_pairs, steps=21, batch_size=4, grad_norm_every=10, progress=False)
    assert set(h.terms) == {"mse", "l1", "dead"}
    assert h.grad_norm_steps == [0, 10, 20]
    assert all(len(v) == 3 for v in h.grad_norms.values())
    assert h.grad_norms["dead"] == [0.0, 0.0, 0.0]  # no autograd path: a dead term
    assert h.grad_norms["mse"][-1] > 0
    for i, s in enumerate(h.steps):
        assert math.isclose(h.loss[i], sum(h.terms[k][i] for k in h.terms), rel_tol=1e-5)
    assert h.final("grad:l1") == h.grad_norms["l1"][-1]
    assert len(h.lr) == len(h.steps)
    d = h.as_dict()
    assert set(d) >= {"steps", "loss", "terms", "grad_norms", "lr"}
    with pytest.raises(KeyError, match="known"):
        h.final("ssim")


def test_nan_term_raises_with_history(tiny_pairs):
    def loss(pred, target, low):
        out = terms(pred, target, low)
        if loss.calls >= 5:
            out["log_term"] = torch.log(pred - pred - 1).mean()  # NaN
        loss.calls += 1
        return out
    loss.calls = 0
    with pytest.raises(TrainingDivergedError, match="step 5") as err:
        fit(UNet(base=4), loss, tiny_pairs, steps=20, batch_size=4, progress=False)
    e = err.value
    assert isinstance(e, RuntimeError)
    assert "log_term" in str(e) and "lower learning rate" in str(e) and "clip" in str(e)
    assert e.step == 5 and e.terms == ["log_term"]
    assert len(e.history) == 5 and e.history.steps[-1] == 4


def test_non_finite_gradient_names_the_term(tiny_pairs):
    def loss(pred, target, low):
        return {"mse": mse(pred, target, low), "sqrt": torch.sqrt((pred - pred).abs()).mean()}

    with pytest.raises(TrainingDivergedError, match="gradient of sqrt"):
        fit(UNet(base=4), loss, tiny_pairs, steps=3, batch_size=4, progress=False)


class UncertaintyWeighted(nn.Module):
    """Kendall et al. 2018 style: sum_i exp(-s_i) L_i + s_i with learned log-variances s_i."""

    def __init__(self):
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(2))

    def forward(self, pred, target, low):
        losses = [((pred - target) ** 2).mean(), (pred - target).abs().mean()]
        return {f"w{i}": torch.exp(-s) * l + s for i, (s, l) in enumerate(zip(self.log_vars, losses))}


def test_loss_module_parameters_are_optimised(tiny_pairs):
    crit = UncertaintyWeighted()
    h = fit(UNet(base=4), crit, tiny_pairs, steps=10, batch_size=4, lr=1e-2, progress=False)
    assert not torch.equal(crit.log_vars.detach(), torch.zeros(2))
    assert h.extra["loss_parameters"] == 2


def test_dataset_input_warmup_clip_and_val(tiny_pairs):
    ds = torch.utils.data.TensorDataset(*tiny_pairs)
    h = fit(UNet(base=4), mse, ds, steps=6, batch_size=4, warmup_steps=3, clip_grad=0.1,
            val=tiny_pairs, val_every=3, progress=True, desc="test", optimizer="sgd")
    assert h.lr[:3] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert h.val_steps == [2, 5] and "psnr" in h.val and "loss" in h.val


def test_curvenet_trains_with_curves_in_closure(tiny_pairs):
    net = CurveNet(channels=4, iterations=2)

    def loss(pred, target, low):
        a = net.last_curves
        smooth = (a[..., 1:, :] - a[..., :-1, :]).abs().mean()
        return {"exposure": ((pred.mean((1, 2, 3)) - 0.6) ** 2).mean(), "smooth": 0.1 * smooth}

    h = fit(net, loss, tiny_pairs, steps=5, batch_size=4, progress=False)
    assert h.grad_norms["smooth"][0] > 0


def test_bad_arguments(tiny_pairs):
    low, high = tiny_pairs
    with pytest.raises(ValueError):
        fit(UNet(base=4), mse, tiny_pairs, steps=0, progress=False)
    with pytest.raises(ValueError, match="same"):
        fit(UNet(base=4), mse, (low, high[:3]), steps=1, progress=False)
    with pytest.raises(TypeError):
        fit(UNet(base=4), mse, low, steps=1, progress=False)
    with pytest.raises(ValueError, match="scalar"):
        fit(UNet(base=4), lambda p, t, l: (p - t) ** 2, tiny_pairs, steps=1, progress=False)
    with pytest.raises(RuntimeError, match="no gradient"):
        fit(UNet(base=4), lambda p, t, l: torch.tensor(1.0), tiny_pairs, steps=1, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        fit(UNet(base=4), mse, tiny_pairs, steps=1, optimizer="lbfgs2", progress=False)


def test_predict(tiny_pairs):
    low, _ = tiny_pairs
    net = UNet(base=4)
    y = predict(net, low, batch_size=5)
    assert y.shape == low.shape and y.device.type == "cpu"
    assert predict(net, low[0]).shape == low[0].shape
    assert predict(CurveNet(channels=4, iterations=2), low[:2]).shape == low[:2].shape
    assert net.training


def test_nan_prediction_raises_diverged_not_input_error(tiny_pairs):
    # A validated loss (mse) would reject a NaN prediction as bad input; fit must catch it first,
    # as a divergence with the history attached.
    from lowlight_course.losses import mse

    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x * self.scale * (float("nan") if self.calls > 3 else 1.0)

    with pytest.raises(TrainingDivergedError, match="model output") as err:
        fit(Exploding(), lambda p, t, l: mse(p, t), tiny_pairs, steps=10, batch_size=4, progress=False)
    assert err.value.step == 3 and len(err.value.history.loss) == 3


def test_history_new_fields_are_plain_and_serialisable(tiny_pairs):
    import json

    h = fit(UNet(base=4), mse, tiny_pairs, steps=3, batch_size=4, progress=False)
    d = h.as_dict()
    assert d["interrupted"] is False and d["loss_lr"] == []
    assert json.loads(json.dumps(d))["steps"] == [0, 1, 2]
    assert repr(History()) == "History(empty)" and "interrupted" in repr(History(interrupted=True))


def test_fit_gives_back_the_train_eval_mode(tiny_pairs):
    net = UNet(base=4)
    net.eval()
    fit(net, mse, tiny_pairs, steps=2, batch_size=4, progress=False)
    assert not net.training
    net.train()
    fit(net, mse, tiny_pairs, steps=2, batch_size=4, progress=False)
    assert net.training


def test_each_part_imports_alone():
    import importlib

    parts = ["arguments", "data", "devices", "errors", "evaluate", "fit", "history", "predict",
             "record", "recovery", "run", "step"]
    for part in parts:
        mod = importlib.import_module(f"lowlight_course.train.{part}")
        assert mod.__doc__ and mod.__all__, part  # one job each, said in its docstring
        for name in mod.__all__:
            assert getattr(mod, name).__doc__, f"{part}.{name} has no docstring"


def test_resolve_device():
    from lowlight_course.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda") and resolve_device("Auto") == resolve_device("auto")
    with pytest.raises(ValueError, match="device='cuda'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="'auto'"):
        resolve_device("cpu:x")


def test_predict_rejects_bad_batch_size_and_keeps_mode(tiny_pairs):
    net = UNet(base=4)
    net.eval()
    predict(net, tiny_pairs[0][:2])
    assert not net.training
    with pytest.raises(ValueError, match="batch_size"):
        predict(net, tiny_pairs[0], batch_size=0)
    with pytest.raises(TypeError, match="Module"):
        predict(lambda x: x, tiny_pairs[0])


@pytest.mark.parametrize("where", ["loss term", "gradient"])
@pytest.mark.parametrize("log_every, grad_norm_every", [(1, 10), (4, 0), (3, 2)])
def test_divergence_stop_is_exact_whatever_the_logging(tiny_pairs, where, log_every, grad_norm_every):
    """The stop names the step it happened at, and the model (parameters and buffers) equals a
    clean run of exactly the steps before it, bit for bit, however rarely values are recorded."""
    bad_step = 6

    def loss(pred, target, low):
        out = terms(pred, target, low)
        if loss.calls >= bad_step:
            if where == "loss term":
                out["bad"] = torch.log(pred - pred - 1).mean()            # NaN value
            else:
                out["bad"] = torch.sqrt((pred - pred).abs()).mean()       # 0, NaN gradient
        loss.calls += 1
        return out

    loss.calls = 0
    torch.manual_seed(0)
    model = UNet(base=4)
    with pytest.raises(TrainingDivergedError) as err:
        fit(model, loss, tiny_pairs, steps=20, batch_size=4, progress=False, log_every=log_every,
            grad_norm_every=grad_norm_every)
    assert err.value.step == bad_step and err.value.terms and "bad" in " ".join(err.value.terms)
    assert all(s < bad_step for s in err.value.history.steps)
    torch.manual_seed(0)
    clean = UNet(base=4)
    fit(clean, terms, tiny_pairs, steps=bad_step, batch_size=4, progress=False, log_every=log_every,
        grad_norm_every=grad_norm_every)
    got, want = model.state_dict(), clean.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "the model is not the one from before the bad step"
