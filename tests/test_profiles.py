import pytest

from lowlight_course.profiles import ENV_VAR, PROFILES, Profile, get_profile


def test_suite_runs_under_smoke():
    assert get_profile("auto").name == "smoke"


@pytest.mark.parametrize("name", ["cpu", "gpu", "smoke", " CPU "])
def test_auto_honours_environment(monkeypatch, name):
    monkeypatch.setenv(ENV_VAR, name)
    assert get_profile("auto").name == name.strip().lower()


def test_auto_without_environment(monkeypatch):
    import torch

    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_profile().name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_names(monkeypatch):
    with pytest.raises(ValueError, match="Choose one of"):
        get_profile("laptop")
    monkeypatch.setenv(ENV_VAR, "tiny")
    with pytest.raises(ValueError, match=ENV_VAR):
        get_profile("auto")
    with pytest.raises(TypeError):
        get_profile(3)


def test_profiles_grow_and_scale():
    s, c, g = PROFILES["smoke"], PROFILES["cpu"], PROFILES["gpu"]
    for field in ("image_size", "train_pairs", "steps"):
        assert getattr(s, field) <= getattr(c, field) <= getattr(g, field)
    assert s.scaled(steps=5).steps == 5 and s.steps != 5
    assert get_profile("smoke").device in ("cpu", "cuda")


# --- auto on each kind of device (availability and device properties patched) -----------------
from types import SimpleNamespace  # noqa: E402

import torch  # noqa: E402

from lowlight_course.profiles import (GPU_THROUGHPUT, auto_choice, is_small_gpu,  # noqa: E402
                                      small_gpu_profile, work)

T4 = SimpleNamespace(name="Tesla T4", multi_processor_count=40, total_memory=15 * 2 ** 30)
H100 = SimpleNamespace(name="NVIDIA H100 80GB HBM3", multi_processor_count=132, total_memory=80 * 2 ** 30)
L4 = SimpleNamespace(name="NVIDIA L4", multi_processor_count=58, total_memory=22 * 2 ** 30)
A100_40 = SimpleNamespace(name="NVIDIA A100-SXM4-40GB", multi_processor_count=108, total_memory=40 * 2 ** 30)
LAPTOP = SimpleNamespace(name="NVIDIA GeForce RTX 3060 Laptop GPU", multi_processor_count=30,
                         total_memory=6 * 2 ** 30)
BIG_CARD_SMALL_MEMORY = SimpleNamespace(name="Some GPU", multi_processor_count=80, total_memory=16 * 2 ** 30)


def _machine(monkeypatch, cuda=None, mps=False):
    """cuda: the device properties of GPU 0, or None for no CUDA."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda is not None)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: cuda)
    import lowlight_course.train.devices as d

    monkeypatch.setattr(d, "_mps_message_shown", True)


@pytest.mark.parametrize("props, want", [(T4, "gpu-small"), (L4, "gpu-small"), (LAPTOP, "gpu-small"),
                                         (BIG_CARD_SMALL_MEMORY, "gpu-small"), (H100, "gpu"),
                                         (A100_40, "gpu")])
def test_auto_on_cuda_by_gpu_size(monkeypatch, props, want):
    _machine(monkeypatch, cuda=props)
    p = get_profile("auto")
    assert (p.name, p.device) == (want, "cuda")
    name, device, why = auto_choice()
    assert name == want and props.name in why and f"{props.multi_processor_count} SMs" in why


def test_auto_on_mps_keeps_the_cpu_sizes(monkeypatch):
    _machine(monkeypatch, mps=True)
    p = get_profile("auto")
    assert p.name == "cpu" and p.device == "mps"
    assert p.scaled(device="cpu") == PROFILES["cpu"]
    assert "MPS" in auto_choice()[2]


def test_auto_on_cpu(monkeypatch):
    _machine(monkeypatch)
    p = get_profile("auto")
    assert (p.name, p.device) == ("cpu", "cpu")
    assert "no GPU" in auto_choice()[2]


def test_environment_wins_over_the_device(monkeypatch):
    _machine(monkeypatch, cuda=H100)
    monkeypatch.setenv(ENV_VAR, "gpu_small")
    assert get_profile("auto").name == "gpu-small"
    assert auto_choice()[2] == f"${ENV_VAR}=gpu_small"


def test_is_small_gpu_reports_its_facts(monkeypatch):
    _machine(monkeypatch, cuda=T4)
    small, facts = is_small_gpu()
    assert small and facts == "Tesla T4, 40 SMs, 15.0 GiB"
    _machine(monkeypatch, cuda=H100)
    assert is_small_gpu()[0] is False


def test_small_gpu_sizes_follow_the_throughput_formula():
    """W_small <= W_gpu * min(F32 ratio, F16 ratio), and nothing below the cpu profile."""
    gpu, cpu, small = PROFILES["gpu"], PROFILES["cpu"], PROFILES["gpu-small"]
    r = min(8.1 / 67, 65 / 989)
    assert abs(r - 0.0657) < 1e-3
    assert work(small) <= r * work(gpu)
    assert work(small) > 0.8 * r * work(gpu), "the budget is used, not wasted"
    for field in ("image_size", "train_pairs", "eval_pairs", "steps", "batch_size", "seeds", "sweep_points"):
        assert getattr(cpu, field) <= getattr(small, field) <= getattr(gpu, field), field
    assert small == small_gpu_profile(gpu, cpu, GPU_THROUGHPUT["T4"], GPU_THROUGHPUT["H100"])
    # a GPU as fast as the reference gets the full gpu work budget (steps capped by nothing smaller)
    same = small_gpu_profile(gpu, cpu, GPU_THROUGHPUT["H100"], GPU_THROUGHPUT["H100"])
    assert work(same) == work(gpu)


def test_cpu_and_smoke_sizes_unchanged():
    """The notebooks' asserts were tuned on these sizes."""
    assert PROFILES["smoke"] == Profile("smoke", 32, 16, 8, 60, 8, 2, 3)
    assert PROFILES["cpu"] == Profile("cpu", 64, 96, 16, 300, 16, 3, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: classifying the real GPU")
def test_auto_on_the_real_gpu(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    name, device, why = auto_choice()
    assert device == "cuda" and name in ("gpu", "gpu-small") and torch.cuda.get_device_name(0) in why
