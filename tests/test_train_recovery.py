"""fit keeps what it learned: interrupts and errors inside the loop keep the history, restore the model."""
import pytest
import torch
from torch import nn

import tqdm.auto

from lowlight_course.losses import mse as checked_mse
from lowlight_course.models import UNet, seed_everything
from lowlight_course.train import TrainingDivergedError, TrainingError, fit


def mse(pred, target, low):
    return ((pred - target) ** 2).mean()


class FailsAt:
    """A dict loss that runs normally, then does ``action`` on its call number ``at`` (0-based)."""

    def __init__(self, at, action):
        self.at, self.action, self.calls = at, action, 0

    def __call__(self, pred, target, low):
        call, self.calls = self.calls, self.calls + 1
        if call == self.at:
            return self.action(pred, target)
        return {"mse": ((pred - target) ** 2).mean(), "l1": (pred - target).abs().mean()}


def _raise(exc):
    def action(pred, target):
        raise exc
    return action


class Bars:
    """Replaces tqdm.auto.tqdm; records every bar made and whether it was closed."""

    made = []

    def __init__(self, *args, **kwargs):
        self.closed, self.n = False, 0
        Bars.made.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        self.closed = True


@pytest.fixture
def bars(monkeypatch):
    Bars.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", Bars)
    return Bars.made


def _net(seed=0):
    seed_everything(seed)
    return UNet(base=4, depth=1)


@pytest.mark.parametrize("k", [0, 1, 4])
def test_interrupt_raised_by_the_loss_at_step_k_returns_k_steps(tiny_pairs, bars, capsys, k):
    net = _net()
    net.eval()  # fit trains in train mode and must give the mode back
    h = fit(net, FailsAt(k, _raise(KeyboardInterrupt())), tiny_pairs, steps=10, batch_size=4,
            grad_norm_every=2)
    assert h.interrupted is True and len(h) == k and h.steps == list(range(k))
    assert len(h.terms.get("mse", [])) == k and len(h.lr) == k
    assert h.extra["interrupted_at_step"] == k and "seconds" in h.extra
    assert "interrupted" in repr(h)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and f"interrupted at step {k} of 10" in out[0]
    assert len(bars) == 1 and bars[0].closed and bars[0].n == k
    assert not net.training


def test_interrupt_keeps_the_weights_of_the_steps_before_it(tiny_pairs):
    clean = _net()
    fit(clean, mse, tiny_pairs, steps=3, batch_size=4, progress=False)
    stopped = _net()

    def loss(pred, target, low):
        loss.calls += 1
        if loss.calls == 4:
            raise KeyboardInterrupt
        return mse(pred, target, low)
    loss.calls = 0
    h = fit(stopped, loss, tiny_pairs, steps=10, batch_size=4, progress=False)
    assert h.interrupted and len(h) == 3
    for a, b in zip(clean.state_dict().values(), stopped.state_dict().values()):
        assert torch.equal(a, b)


def test_interrupt_in_the_model_and_during_validation(tiny_pairs, capsys):
    class StopsAt(nn.Module):
        def __init__(self, at):
            super().__init__()
            self.net, self.at, self.calls = UNet(base=4, depth=1), at, 0

        def forward(self, x):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return self.net(x)

    h = fit(StopsAt(6), mse, tiny_pairs, steps=20, batch_size=4, log_every=2, progress=False)
    assert h.interrupted and h.steps == [0, 2, 4]  # step 5 was the 6th call
    # validation after step 1 (val_every=2) makes calls 3 and 4 (8 val images, batch 4): stop in it
    h = fit(StopsAt(4), mse, tiny_pairs, steps=20, batch_size=4, val=(tiny_pairs[0][:8], tiny_pairs[1][:8]),
            val_every=2, progress=False)
    assert h.interrupted and len(h) == 2 and h.val_steps == []
    assert capsys.readouterr().out.count("interrupted at step") == 2


@pytest.mark.parametrize("k", [0, 3])
def test_loss_raising_at_step_k_keeps_the_history_on_the_exception(tiny_pairs, bars, k):
    net = _net()
    net.eval()
    with pytest.raises(ZeroDivisionError, match="boom") as err:
        fit(net, FailsAt(k, _raise(ZeroDivisionError("boom"))), tiny_pairs, steps=10, batch_size=4)
    e = err.value
    assert len(e.history) == k and e.step == k and not e.history.interrupted
    assert any(f"at step {k} of 10" in n and ".history" in n for n in e.__notes__)
    assert bars[0].closed and not net.training
    assert e.__traceback__ is not None and "FailsAt" not in type(e).__name__


def test_loss_returning_a_python_float_says_it_has_no_gradient(tiny_pairs):
    with pytest.raises(TypeError, match="no gradient") as err:
        fit(_net(), lambda p, t, l: ((p - t) ** 2).mean().item(), tiny_pairs, steps=3, progress=False)
    assert "float" in str(err.value) and ".item()" in str(err.value) and len(err.value.history) == 0
    with pytest.raises(TypeError, match="no gradient") as err:
        fit(_net(), FailsAt(2, lambda p, t: ((p - t) ** 2).mean().item()), tiny_pairs, steps=5,
            batch_size=4, progress=False)
    assert err.value.step == 2 and len(err.value.history) == 2


def test_shape_error_in_the_model_keeps_the_history(tiny_pairs, bars):
    class CropsLater(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.calls = UNet(base=4, depth=1), 0

        def forward(self, x):
            self.calls += 1
            y = self.net(x)
            return y[..., :-2, :] if self.calls > 5 else y

    with pytest.raises(ValueError, match="shape") as err:
        fit(CropsLater(), lambda p, t, l: checked_mse(p, t), tiny_pairs, steps=10, batch_size=4)
    assert err.value.step == 5 and len(err.value.history) == 5
    assert bars[0].closed


def test_divergence_restores_the_mode_and_closes_the_bar(tiny_pairs, bars):
    net = _net()
    net.eval()
    with pytest.raises(TrainingDivergedError, match="step 2") as err:
        fit(net, FailsAt(2, lambda p, t: {"log": torch.log(p - p - 1).mean()}), tiny_pairs, steps=8,
            batch_size=4)
    assert len(err.value.history) == 2 and err.value.step == 2
    assert err.value.__context__ is None or err.value.__suppress_context__  # no internal chained traceback
    assert bars[0].closed and not net.training


def test_an_exception_refusing_attributes_is_wrapped_in_training_error(tiny_pairs, bars):
    class Sealed(Exception):
        def __setattr__(self, name, value):
            raise AttributeError("sealed")

    with pytest.raises(TrainingError, match="step 1") as err:
        fit(_net(), FailsAt(1, _raise(Sealed("inner"))), tiny_pairs, steps=5, batch_size=4)
    e = err.value
    assert isinstance(e.__cause__, Sealed) and e.step == 1 and len(e.history) == 1
    assert "Sealed: inner" in str(e) and bars[0].closed


def test_type_error_at_the_first_call_gets_the_wrapper_hint(tiny_pairs):
    # A builtin-like callable whose signature cannot be read is only found out at its first call.
    class Opaque:
        __signature__ = property(lambda self: (_ for _ in ()).throw(ValueError("no signature")))

        def __call__(self, *args):
            if len(args) != 2:
                raise TypeError(f"loss() takes 2 positional arguments but {len(args)} were given")
            return ((args[0] - args[1]) ** 2).mean()

    with pytest.raises(TypeError, match="positional") as err:
        fit(_net(), Opaque(), tiny_pairs, steps=2, progress=False)
    assert any("lambda pred, target, low: loss(pred, target)" in n for n in err.value.__notes__)


def test_after_an_error_the_same_model_trains_again(tiny_pairs):
    net = _net()
    with pytest.raises(RuntimeError):
        fit(net, FailsAt(1, _raise(RuntimeError("x"))), tiny_pairs, steps=4, batch_size=4, progress=False)
    h = fit(net, mse, tiny_pairs, steps=3, batch_size=4, progress=False)
    assert len(h) == 3 and not h.interrupted


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_error_and_interrupt_put_model_and_loss_back_on_the_cpu(tiny_pairs):
    class Learned(nn.Module):
        def __init__(self, at, exc):
            super().__init__()
            self.s, self.at, self.exc, self.calls = nn.Parameter(torch.zeros(())), at, exc, 0

        def forward(self, pred, target, low):
            self.calls += 1
            if self.calls > self.at:
                raise self.exc
            assert pred.is_cuda and self.s.is_cuda
            return {"mse": torch.exp(-self.s) * ((pred - target) ** 2).mean() + self.s}

    for exc in (RuntimeError("inside"), KeyboardInterrupt()):
        net, crit = _net(), Learned(3, exc)
        try:
            h = fit(net, crit, tiny_pairs, steps=10, batch_size=4, device="cuda", progress=False)
        except RuntimeError as err:
            h = err.history
        assert len(h) == 3
        assert next(net.parameters()).device.type == "cpu" and crit.s.device.type == "cpu"


def test_on_interrupt_raise_propagates_with_the_history(tiny_pairs, bars, capsys):
    net = _net()
    with pytest.raises(KeyboardInterrupt) as err:
        fit(net, FailsAt(3, _raise(KeyboardInterrupt())), tiny_pairs, steps=10, batch_size=4,
            on_interrupt="raise")
    h = err.value.history
    assert len(h) == 3 and h.interrupted and err.value.step == 3
    assert any("at step 3 of 10" in n for n in err.value.__notes__)
    assert bars[0].closed and capsys.readouterr().out == ""


class RecordsMoves(nn.Module):
    """Records every ``.to(...)`` call, so the CPU-only suite can see where fit sends a module."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.moves = inner, []

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]) if args else kwargs.get("device"))
        return super().to(*args, **kwargs)

    def forward(self, *args):
        return self.inner(*args)


class LearnedScale(nn.Module):
    def __init__(self, fail_at):
        super().__init__()
        self.s, self.fail_at, self.calls = nn.Parameter(torch.zeros(())), fail_at, 0

    def forward(self, pred, target, low):
        self.calls += 1
        if self.calls > self.fail_at:
            raise RuntimeError("loss broke")
        return {"mse": torch.exp(-self.s) * ((pred - target) ** 2).mean() + self.s}


@pytest.mark.parametrize("exc_step", [0, 2])
def test_model_and_loss_are_sent_back_home_on_an_error(tiny_pairs, exc_step):
    net = RecordsMoves(UNet(base=4, depth=1))
    crit = RecordsMoves(LearnedScale(exc_step))
    with pytest.raises(RuntimeError, match="loss broke") as err:
        fit(net, crit, tiny_pairs, steps=6, batch_size=4, device="cpu", progress=False)
    assert len(err.value.history) == exc_step
    home = torch.device("cpu")
    assert len(net.moves) >= 2 and net.moves[-1] == home  # to the training device, then back
    assert len(crit.moves) >= 2 and crit.moves[-1] == home


def test_an_interrupt_stops_the_rest_of_the_cell_but_not_the_next_cell(monkeypatch, capsys):
    """In a notebook, a loop of fits ends at the first stop; the next cell trains normally."""
    import torch
    from lowlight_course.models import UNet
    from lowlight_course.train import fit, interrupts

    cell = {"n": 7}
    monkeypatch.setattr(interrupts, "execution_count", lambda: cell["n"])
    monkeypatch.setattr(interrupts, "_stopped_in", None)
    low = torch.rand(8, 3, 16, 16) * 0.2
    high = (low * 4).clamp(0, 1)
    calls = {"n": 0}

    def stop_at_3(pred, target, low_):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return ((pred - target) ** 2).mean()

    h = fit(UNet(base=4, depth=1), stop_at_3, (low, high), steps=10, batch_size=4, progress=False,
            grad_norm_every=0)
    assert h.interrupted and len(h) == 3
    model = UNet(base=4, depth=1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(KeyboardInterrupt, match="stopped during an earlier fit"):
        fit(model, lambda p, t, l: ((p - t) ** 2).mean(), (low, high), steps=2, batch_size=4, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the refused fit touched nothing"
    cell["n"] = 8                                      # the learner runs the next cell
    h2 = fit(model, lambda p, t, l: ((p - t) ** 2).mean(), (low, high), steps=2, batch_size=4, progress=False)
    assert len(h2) == 2 and not h2.interrupted


def test_outside_ipython_every_fit_runs_after_an_interrupt(monkeypatch):
    import torch
    from lowlight_course.models import UNet
    from lowlight_course.train import fit, interrupts

    monkeypatch.setattr(interrupts, "execution_count", lambda: None)
    low = torch.rand(8, 3, 16, 16) * 0.2
    high = (low * 4).clamp(0, 1)

    def stop(pred, target, low_):
        raise KeyboardInterrupt

    assert fit(UNet(base=4, depth=1), stop, (low, high), steps=3, batch_size=4, progress=False).interrupted
    h = fit(UNet(base=4, depth=1), lambda p, t, l: ((p - t) ** 2).mean(), (low, high), steps=2, batch_size=4,
            progress=False)
    assert len(h) == 2
