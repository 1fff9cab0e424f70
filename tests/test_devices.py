"""Device choice under ``device="auto"``: CUDA, else Apple's MPS, else the CPU, with the availability
checks patched (no GPU and no Mac here: MPS itself is never run by this suite)."""
import pytest
import torch

from lowlight_course.train import devices
from lowlight_course.train.devices import MPS_FALLBACK_ENV, auto_device, mps_available, resolve_device


@pytest.fixture
def machine(monkeypatch, capsys):
    """Patch what the machine has: ``machine(cuda=..., mps=...)``; returns ``said()``, the lines printed."""

    def said():
        return [line for line in capsys.readouterr().out.splitlines() if line]

    def set_up(cuda=False, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(devices, "_mps_message_shown", False)
        monkeypatch.delenv(MPS_FALLBACK_ENV, raising=False)
        return said

    return set_up


@pytest.mark.parametrize("cuda, mps, want", [(True, True, "cuda"), (True, False, "cuda"),
                                             (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, want):
    machine(cuda=cuda, mps=mps)
    assert auto_device() == want
    assert resolve_device("auto") == torch.device(want)
    assert resolve_device(None) == torch.device(want)


def test_mps_turns_on_the_cpu_fallback_and_says_so_once(machine):
    import os

    said = machine(mps=True)
    assert resolve_device("auto").type == "mps"
    assert os.environ[MPS_FALLBACK_ENV] == "1"
    lines = said()
    assert len(lines) == 1 and "MPS" in lines[0] and f"{MPS_FALLBACK_ENV}=1" in lines[0]
    resolve_device("auto")
    resolve_device("mps")
    assert said() == [], "the message is shown once per process"


def test_mps_respects_a_fallback_the_learner_turned_off(machine, monkeypatch):
    import os

    said = machine(mps=True)
    monkeypatch.setenv(MPS_FALLBACK_ENV, "0")
    assert resolve_device("mps").type == "mps"
    assert os.environ[MPS_FALLBACK_ENV] == "0"
    (line,) = said()
    assert "NotImplementedError" in line and f"{MPS_FALLBACK_ENV}=1" in line


def test_cuda_and_cpu_say_nothing_about_mps(machine):
    import os

    said = machine(cuda=True, mps=True)
    assert resolve_device("auto").type == "cuda"
    assert said() == [] and MPS_FALLBACK_ENV not in os.environ


def test_mps_by_name_without_mps(machine):
    machine(mps=False)
    with pytest.raises(RuntimeError, match="MPS is not available.*device='auto'"):
        resolve_device("mps")


def test_a_broken_mps_query_counts_as_unavailable(monkeypatch):
    def broken():
        raise RuntimeError("no Metal device")

    monkeypatch.setattr(torch.backends.mps, "is_available", broken)
    assert mps_available() is False


def test_fit_and_predict_use_auto_device(machine, monkeypatch, tiny_pairs):
    """fit(device='auto') trains where auto_device points (here patched to the CPU)."""
    from lowlight_course.models import UNet
    from lowlight_course.train import fit

    machine(cuda=False, mps=False)
    low, high = tiny_pairs
    h = fit(UNet(base=4, depth=1), lambda p, t, l: ((p - t) ** 2).mean(), (low, high), steps=2,
            batch_size=4, progress=False, grad_norm_every=0)
    assert h.extra["device"] == "cpu"


def test_profile_device_follows_the_training_device(machine):
    from lowlight_course.profiles import get_profile

    for cuda, mps, want in ((False, True, "mps"), (False, False, "cpu")):
        machine(cuda=cuda, mps=mps)
        assert get_profile("smoke").device == want


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: resolving a real GPU")
def test_real_cuda_device():
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.parametrize("cuda, mps, device_word, profile", [
    ("Tesla T4", False, "cuda (Tesla T4)", "gpu-small"), (None, True, "mps (Apple's GPU", "cpu"),
    (None, False, "cpu (", "cpu")])
def test_doctor_says_where_training_runs_and_which_profile(machine, monkeypatch, cuda, mps, device_word,
                                                           profile):
    from types import SimpleNamespace

    from lowlight_course.commands.doctor import doctor
    from lowlight_course.profiles import ENV_VAR

    machine(cuda=cuda is not None, mps=mps)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i=0: SimpleNamespace(name=cuda, multi_processor_count=40, total_memory=15 * 2 ** 30))
    lines = []
    doctor(echo=lines.append)
    training = next(x for x in lines if x.startswith("training on"))
    chosen = next(x for x in lines if x.startswith("profile auto"))
    assert device_word in training
    assert chosen.startswith(f"profile auto  -> {profile}:")
    if cuda:
        assert "40 SMs" in chosen and "2 minutes" in chosen


# --- lowlight-course run: peak GPU memory per notebook --------------------------------------
def _tiny_notebook(path):
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (Jupyter) to write a notebook")

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('profile = "auto"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("x = 1 + 1\nprint(x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_gpu_peak_is_read_from_the_tagged_cell_and_the_cell_removed(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (Jupyter) to read a notebook")

    from lowlight_course import runner

    nb = runner._with_gpu_peak_cell(_tiny_notebook(tmp_path / "a.ipynb"))
    assert runner.GPU_PEAK_TAG in nb.cells[-1].metadata["tags"] and len(nb.cells) == 3
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="LOWLIGHT_GPU_PEAK_MB 1234.5\n")]
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, str(executed))
    assert runner._pop_gpu_peak(executed) == 1234.5
    back = nbformat.read(str(executed), as_version=4)
    assert len(back.cells) == 2 and all(runner.GPU_PEAK_TAG not in c.metadata.get("tags", []) for c in back.cells)
    assert runner._pop_gpu_peak(executed) is None          # nothing left to read
    assert runner._pop_gpu_peak(tmp_path / "missing.ipynb") is None


def test_run_records_gpu_memory_column_only_when_measured(tmp_path):
    """A real kernel runs the extra cell; without CUDA it prints nothing: peak None, cell gone."""
    import json

    pytest.importorskip("papermill", reason="needs papermill and a Jupyter kernel to run a notebook")
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (Jupyter) to read a notebook")

    from lowlight_course import runner

    (tmp_path / "nb").mkdir()
    src = _tiny_notebook(tmp_path / "nb" / "t.ipynb")
    r = runner.run_notebook(src, tmp_path / "out", profile="smoke", html=False, gpu_memory=True, timeout=120)
    assert r.ok, r.error
    assert r.peak_gpu_mb is None, "the notebook never initialises CUDA, so its kernel has no peak to report"
    executed = nbformat.read(r.executed, as_version=4)
    assert all(runner.GPU_PEAK_TAG not in c.metadata.get("tags", []) for c in executed.cells)
    lines = runner._format_table([r])
    assert "GPU MB" not in lines[0]
    r.peak_gpu_mb = 812.0
    lines = runner._format_table([r])
    assert lines[0].endswith("GPU MB") and lines[1].rstrip().endswith("812")
    results = runner.run_notebooks([src], tmp_path / "out2", profile="smoke", html=False, echo=lambda *a: None)
    data = json.loads((tmp_path / "out2" / runner.TIMINGS_FILE).read_text())
    assert "peak_gpu_mb" in data["notebooks"][0] and results[0].ok
