"""fit(checkpoint=..., resume=...): a run survives a dead kernel and ends as an uninterrupted one would."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lowlight_course.models import UNet, seed_everything
from lowlight_course.train import fit
from lowlight_course.train import checkpoint as C
from lowlight_course.train.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ("steps", "loss", "terms", "grad_norm_steps", "grad_norms", "grad_norm_total", "lr", "loss_lr",
            "val_steps", "val")


def _data(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 16, 16, generator=g) * 0.2
    return low, (low * 4).clamp(0, 1)


def _model(base=4):
    seed_everything(1)
    return UNet(base=base, depth=1)


class NoisyWeighted(nn.Module):
    """A loss with its own parameters (log-variances) that draws from the global RNG every step, so a
    resume that missed the loss state or the RNG state would end differently. ``stop_at`` raises
    KeyboardInterrupt at that call (not part of the loss's identity)."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.s = nn.Parameter(torch.zeros(2))
        self.stop_at, self.calls = stop_at, 0

    def forward(self, pred, target, low):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        noisy = target + 1e-2 * torch.randn_like(target)
        terms = [((pred - noisy) ** 2).mean(), (pred - noisy).abs().mean()]
        return {f"t{i}": 0.5 * torch.exp(-s) * t + 0.5 * s for i, (s, t) in enumerate(zip(self.s, terms))}


KW = dict(steps=14, batch_size=3, lr=3e-3, loss_lr=0.05, progress=False, grad_norm_every=2, val_every=4,
          warmup_steps=3, clip_grad=1.0)


def _same(h1, h2, m1, m2):
    for name in RECORDED:
        assert getattr(h1, name) == getattr(h2, name), name
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k


def _fit(model, loss, path=None, **kw):
    torch.set_num_threads(1)
    return fit(model, loss, _data(), val=_data(4, seed=5), **(KW | kw), **({"checkpoint": path} if path else {}))


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    ref_model, ref_loss = _model(), NoisyWeighted()
    ref = _fit(ref_model, ref_loss)

    path = tmp_path / "run.pt"
    m = _model()
    h = _fit(m, NoisyWeighted(stop_at=12), path, checkpoint_every=3)  # interrupted mid-run
    stopped = h.extra["interrupted_at_step"]
    assert h.interrupted and 6 < stopped < KW["steps"] - 1, stopped
    saved = torch.load(path, weights_only=True)["step"]
    assert saved == stopped // 3 * 3, (saved, stopped)

    torch.manual_seed(123)  # a new kernel: other global RNG state, other initial weights
    m2, loss2 = UNet(base=4, depth=1), NoisyWeighted()
    h2 = _fit(m2, loss2, path, checkpoint_every=3, resume=True)
    assert h2.extra["resumed_at_step"] == saved and not h2.interrupted
    _same(ref, h2, ref_model, m2)
    assert torch.equal(ref_loss.s, loss2.s)


def test_resume_true_without_a_file_starts_at_zero_then_a_finished_run_just_loads(tmp_path):
    path = tmp_path / "run.pt"
    m = _model()
    h = _fit(m, NoisyWeighted(), path, resume=True)
    assert h.steps[0] == 0 and "resumed_at_step" not in h.extra
    assert torch.load(path, weights_only=True)["step"] == KW["steps"]  # saved after the last step
    m2 = UNet(base=4, depth=1)
    h2 = _fit(m2, NoisyWeighted(), path, resume=True)
    assert h2.extra["resumed_at_step"] == KW["steps"]
    _same(h, h2, m, m2)


def test_resume_from_another_path_and_training_longer(tmp_path):
    src, dst = tmp_path / "a.pt", tmp_path / "b.pt"
    m = _model()
    _fit(m, NoisyWeighted(), src, steps=6, warmup_steps=0, val_every=None)
    m2 = UNet(base=4, depth=1)
    h = fit(m2, NoisyWeighted(), _data(), **(KW | dict(steps=10, warmup_steps=0, val_every=None)),
            checkpoint=dst, resume=str(src))
    assert h.steps == list(range(10)) and torch.load(dst, weights_only=True)["step"] == 10


SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from torch import nn
    sys.path.insert(0, {tests!r})
    from test_train_checkpoint import NoisyWeighted, _data, _model, KW
    from lowlight_course.train import fit
    torch.set_num_threads(1)

    class Slow(NoisyWeighted):
        def forward(self, *a):
            time.sleep(float(sys.argv[3]))
            return super().forward(*a)

    mode, out = sys.argv[1], sys.argv[2]
    model, loss = _model(), Slow()
    kw = dict(KW, steps=24)
    if mode == "full":
        h = fit(model, loss, _data(), val=_data(4, seed=5), **kw)
    else:
        h = fit(model, loss, _data(), val=_data(4, seed=5), checkpoint=out + ".pt", checkpoint_every=4,
                resume=(mode == "resume"), **kw)
    torch.save({{"model": model.state_dict(), "loss": loss.state_dict(), "history": h.as_dict()}}, out)
""")


def _python(tmp_path, *args):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests")))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    return [sys.executable, str(script), *map(str, args)], env


def _assert_resumed_equals_uninterrupted(tmp_path, out, saved):
    """Run the same training uninterrupted and compare: resumed at ``saved``, equal history and weights."""
    cmd, env = _python(tmp_path, "full", tmp_path / "full", 0)
    subprocess.run(cmd, env=env, cwd=tmp_path, check=True, timeout=300)
    resumed, full = torch.load(out, weights_only=True), torch.load(tmp_path / "full", weights_only=True)
    assert resumed["history"]["extra"]["resumed_at_step"] == saved
    for name in RECORDED:
        assert resumed["history"][name] == full["history"][name], name
    for part in ("model", "loss"):
        for k, v in full[part].items():
            assert torch.equal(resumed[part][k], v), (part, k)


def test_a_killed_training_process_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed"
    ckpt = Path(str(out) + ".pt")
    cmd, env = _python(tmp_path, "train", out, 0.3)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not ckpt.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # the kernel dies: no cleanup, no handler runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(ckpt, weights_only=True)["step"]
    assert 4 <= saved < 24, saved
    assert not out.exists(), "the killed run must not have finished"

    cmd, env = _python(tmp_path, "resume", out, 0)
    subprocess.run(cmd, env=env, cwd=tmp_path, check=True, timeout=300)
    _assert_resumed_equals_uninterrupted(tmp_path, out, saved)


def test_a_killed_jupyter_kernel_resumes_to_the_uninterrupted_result(tmp_path):
    """The same, with a real Jupyter kernel: SIGKILLed mid-training (what the OOM killer does to a
    learner's kernel), then a new kernel reruns the cell with resume=True."""
    manager = pytest.importorskip("jupyter_client.manager", reason="jupyter_client starts the kernels")
    code = SCRIPT.format(tests=str(ROOT / "tests"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    out = tmp_path / "kernel"
    ckpt = Path(str(out) + ".pt")

    def cell(mode, sleep):
        return f"import sys; sys.argv = ['cell', {mode!r}, {str(out)!r}, {sleep!r}]\n" + code

    km, kc = manager.start_new_kernel(startup_timeout=120, kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        kc.execute(cell("train", "0.3"))
        deadline = time.monotonic() + 240
        while not ckpt.exists():
            assert km.is_alive(), "the kernel died before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        pid = km.provisioner.pid if getattr(km, "provisioner", None) else km.kernel.pid
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            if not km.is_alive():
                break
            time.sleep(0.05)
        assert not km.is_alive(), "the kernel survived SIGKILL"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    saved = torch.load(ckpt, weights_only=True)["step"]
    assert 4 <= saved < 24 and not out.exists()

    km, kc = manager.start_new_kernel(startup_timeout=120, kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        reply = kc.execute_interactive(cell("resume", "0"), timeout=300, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    _assert_resumed_equals_uninterrupted(tmp_path, out, saved)


# -- refusals, each with a fix that works --------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "run.pt"
    fit(_model(), NoisyWeighted(), _data(), checkpoint=path, **(KW | dict(steps=4, val_every=None)))
    return path


def test_another_model_is_refused(saved):
    with pytest.raises(CheckpointError, match=r"another model \(UNet, .* saved, .* now\).*delete"):
        fit(_model(base=8), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(val_every=None)))


def test_another_loss_is_refused(saved):
    with pytest.raises(CheckpointError, match=r"another loss \(NoisyWeighted, now .*<lambda>\)"):
        fit(_model(), lambda p, t, low: ((p - t) ** 2).mean(), _data(), checkpoint=saved, resume=True,
            **(KW | dict(val_every=None, loss_lr=None)))


def test_a_lambda_with_other_code_is_another_loss(tmp_path):
    path = tmp_path / "run.pt"
    kw = KW | dict(steps=3, val_every=None, loss_lr=None)
    fit(_model(), lambda p, t, low: ((p - t) ** 2).mean(), _data(), checkpoint=path, **kw)
    fit(_model(), lambda p, t, low: ((p - t) ** 2).mean(), _data(), checkpoint=path, resume=True, **kw)
    with pytest.raises(CheckpointError, match="another loss.*other code or settings"):
        fit(_model(), lambda p, t, low: (p - t).abs().mean(), _data(), checkpoint=path, resume=True, **kw)


def test_other_settings_are_refused_and_the_saved_ones_work(saved):
    with pytest.raises(CheckpointError, match=r"other training settings \(lr=0.003 saved, 0.01 now\)"):
        fit(_model(), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(lr=1e-2, val_every=None)))
    h = fit(_model(), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(val_every=None)))
    assert h.extra["resumed_at_step"] == 4 and h.steps[-1] == KW["steps"] - 1


def test_other_data_is_refused(saved):
    low, high = _data(n=6)
    with pytest.raises(CheckpointError, match=r"data=\[8, \[3, 16, 16\]\] saved, \[6, \[3, 16, 16\]\] now"):
        fit(_model(), NoisyWeighted(), (low, high), checkpoint=saved, resume=True, **(KW | dict(val_every=None)))


def test_fewer_steps_than_saved_is_refused(saved):
    with pytest.raises(CheckpointError, match=r"already trained 4 steps.*steps=4"):
        fit(_model(), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(steps=3, val_every=None)))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other torch file"])
def test_a_damaged_or_foreign_file_is_refused_and_starting_over_works(saved, damage):
    data = saved.read_bytes()
    if damage == "garbage":
        saved.write_bytes(b"not a checkpoint at all" * 10)
    elif damage == "truncated":
        saved.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        saved.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(3)}, saved)
    with pytest.raises(CheckpointError, match=r"(not a readable fit checkpoint|not a fit checkpoint).*delete"):
        fit(_model(), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(val_every=None)))
    saved.unlink()  # the advised fix
    h = fit(_model(), NoisyWeighted(), _data(), checkpoint=saved, resume=True, **(KW | dict(val_every=None)))
    assert h.steps[0] == 0


def test_a_save_that_dies_midway_leaves_the_previous_checkpoint_whole(saved, monkeypatch):
    before = saved.read_bytes()

    def dying_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt
    monkeypatch.setattr(C.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint(saved, {"format": 1})
    assert saved.read_bytes() == before
    assert not list(saved.parent.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(resume=True), ValueError, "pass checkpoint="),
    (dict(checkpoint_every=5), ValueError, "without checkpoint"),
    (dict(checkpoint="x.pt", checkpoint_every=0), ValueError, "checkpoint_every must be"),
    (dict(checkpoint="x.pt", checkpoint_every=True), ValueError, "checkpoint_every must be"),
    (dict(checkpoint="x.pt", checkpoint_every=2.5), ValueError, "checkpoint_every must be"),
    (dict(checkpoint=3), TypeError, "file path"),
    (dict(checkpoint="."), ValueError, "is a folder"),
    (dict(checkpoint="no/such/folder/run.pt"), ValueError, "does not exist"),
    (dict(resume="missing.pt"), CheckpointError, "no such file.*resume=True"),
])
def test_bad_checkpoint_arguments(tmp_path, monkeypatch, kwargs, error, match):
    monkeypatch.chdir(tmp_path)
    m = _model()
    before = [p.clone() for p in m.parameters()]
    with pytest.raises(error, match=match):
        fit(m, NoisyWeighted(), _data(), **(KW | dict(val_every=None)), **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters())), "nothing trained"
