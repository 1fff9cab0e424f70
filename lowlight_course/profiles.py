"""Run profiles: how big each notebook's data and training are.

``smoke`` runs in seconds (CI), ``cpu`` fits a laptop (each notebook at most 3 minutes on 2 cores),
``gpu`` is full size (goal: each notebook within 2 minutes on an H100-class GPU), ``gpu-small`` fits a
small GPU such as Colab's T4 within the same 2 minutes (sizes derived in :func:`small_gpu_profile`).

``auto`` reads the ``LOWLIGHT_PROFILE`` environment variable first (the test suite sets it to
``smoke``, since nbval cannot inject parameters), then picks by the device ``fit`` will train on:
a large CUDA GPU -> ``gpu``; a small one (:func:`is_small_gpu`) -> ``gpu-small``; Apple's MPS -> ``cpu``
(the laptop sizes, trained on the Mac's GPU); the CPU -> ``cpu``. :func:`auto_choice` says which and why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from .train.devices import auto_device

__all__ = ["Profile", "PROFILES", "get_profile", "ENV_VAR", "auto_choice", "is_small_gpu",
           "small_gpu_profile", "GPU_THROUGHPUT", "work"]

ENV_VAR = "LOWLIGHT_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes a notebook derives its work from.

    Attributes:
        name: ``"smoke"``, ``"cpu"``, ``"gpu"`` or ``"gpu-small"``.
        image_size: side of the square training crops, in pixels.
        train_pairs: number of (low, high) training pairs.
        eval_pairs: number of held-out pairs used for measurements.
        steps: optimiser steps per training run.
        batch_size: pairs per step.
        seeds: how many seeds a multi-seed experiment uses.
        sweep_points: grid points per axis in sweeps (weights, bandwidths, ...).
        device: ``"cuda"``, ``"mps"`` or ``"cpu"``: where ``fit`` trains under ``device="auto"``.
    """

    name: str
    image_size: int
    train_pairs: int
    eval_pairs: int
    steps: int
    batch_size: int
    seeds: int
    sweep_points: int
    device: str = "cpu"

    def scaled(self, **changes) -> "Profile":
        """A copy with some fields changed (for a notebook that needs, say, fewer steps)."""
        return replace(self, **changes)


def work(p: Profile) -> int:
    """Pixels one training run pushes through the model: ``steps x batch_size x image_size^2``."""
    return p.steps * p.batch_size * p.image_size ** 2


#: Published dense throughput in TFLOPS, (FP32, FP16 on tensor cores), from NVIDIA's datasheets:
#: Tesla T4 (2018 datasheet: 8.1 FP32, 65 FP16 mixed precision) and H100 SXM (2022-2023 datasheet:
#: 67 FP32, 989 FP16 tensor core without sparsity; the 1979 figure is with sparsity).
GPU_THROUGHPUT = {"T4": (8.1, 65.0), "H100": (67.0, 989.0)}

#: A CUDA GPU with fewer streaming multiprocessors or less memory than this is "small" (T4: 40 SMs,
#: 15 GiB; L4: 58 SMs, 22 GiB; A100: 108 SMs; H100 SXM: 132 SMs, 80 GiB).
SMALL_GPU_MAX_SMS = 60
SMALL_GPU_MAX_GIB = 20.0


def small_gpu_profile(gpu: Profile, cpu: Profile, small=GPU_THROUGHPUT["T4"],
                      reference=GPU_THROUGHPUT["H100"]) -> Profile:
    """Sizes for a small GPU that keep each notebook within the ``gpu`` profile's time goal.

    With ``F`` a GPU's published throughput and ``W`` = :func:`work`, a notebook's time scales as
    ``T = W / F``. The ``gpu`` profile's goal is 2 minutes on the reference GPU (H100 SXM); keeping
    the same 2 minutes on the small GPU needs::

        W_small <= W_gpu * r,   r = min(F32_small / F32_ref, F16_small / F16_ref)

    (the smaller of the FP32 and FP16 tensor-core ratios: a notebook may be bound by either; for
    the T4 against the H100, r = min(8.1 / 67, 65 / 989) = min(0.121, 0.066) = 0.066). The crops keep
    the ``cpu`` profile's side (the models and the asserts were tuned on it), the batch keeps the
    ``gpu`` profile's, and the steps take what is left: ``steps = floor50(gpu.steps * r *
    (gpu.image_size / cpu.image_size)^2)`` (T4: 500, against 300 under ``cpu``). Data, seeds and
    sweep points lie between ``cpu`` and ``gpu``; none is below ``cpu``, so results are at least
    as good as a laptop's.
    """
    r = min(small[0] / reference[0], small[1] / reference[1])
    size = cpu.image_size
    steps = int(gpu.steps * r * (gpu.image_size / size) ** 2) // 50 * 50
    steps = max(cpu.steps, steps)
    return Profile("gpu-small", image_size=size, train_pairs=max(cpu.train_pairs, gpu.train_pairs // 2),
                   eval_pairs=max(cpu.eval_pairs, gpu.eval_pairs // 2), steps=steps,
                   batch_size=gpu.batch_size, seeds=max(cpu.seeds, min(gpu.seeds, 3)),
                   sweep_points=max(cpu.sweep_points, min(gpu.sweep_points, 4)), device="cuda")


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", image_size=32, train_pairs=16, eval_pairs=8, steps=60, batch_size=8,
                     seeds=2, sweep_points=3),
    "cpu": Profile("cpu", image_size=64, train_pairs=96, eval_pairs=16, steps=300, batch_size=16,
                   seeds=3, sweep_points=4),
    "gpu": Profile("gpu", image_size=128, train_pairs=512, eval_pairs=64, steps=2000, batch_size=32,
                   seeds=5, sweep_points=6, device="cuda"),
}
PROFILES["gpu-small"] = small_gpu_profile(PROFILES["gpu"], PROFILES["cpu"])


def _gpu_facts(index: int = 0):
    """(name, SM count, memory in GiB) of CUDA device ``index``."""
    props = torch.cuda.get_device_properties(index)
    return str(props.name), int(props.multi_processor_count), props.total_memory / 2 ** 30


def is_small_gpu(index: int = 0) -> tuple[bool, str]:
    """Whether CUDA device ``index`` is a small GPU (T4 class), and the facts that decided it.

    Small: fewer than ``SMALL_GPU_MAX_SMS`` streaming multiprocessors, or less than
    ``SMALL_GPU_MAX_GIB`` GiB of memory, or a name containing ``T4``.
    """
    name, sms, gib = _gpu_facts(index)
    small = sms < SMALL_GPU_MAX_SMS or gib < SMALL_GPU_MAX_GIB or "T4" in name.upper().split()
    facts = f"{name}, {sms} SMs, {gib:.1f} GiB"
    return small, facts


def auto_choice() -> tuple[str, str, str]:
    """``(profile name, device type, reason)`` that ``get_profile("auto")`` uses."""
    env = os.environ.get(ENV_VAR, "").strip()
    device = auto_device()
    if env:
        return env.lower(), device, f"${ENV_VAR}={env}"
    if device == "cuda":
        small, facts = is_small_gpu(0)
        if small:
            r = min(a / b for a, b in zip(GPU_THROUGHPUT["T4"], GPU_THROUGHPUT["H100"]))
            return "gpu-small", device, (
                f"CUDA GPU {facts}: small (< {SMALL_GPU_MAX_SMS} SMs or < {SMALL_GPU_MAX_GIB:.0f} GiB), so "
                f"the gpu sizes scaled to {r:.3f} of the H100 work (T4 datasheet throughput) to keep "
                f"each notebook within 2 minutes")
        return "gpu", device, f"CUDA GPU {facts}: full size"
    if device == "mps":
        return "cpu", device, "Apple's MPS: the laptop sizes, trained on the Mac's GPU"
    return "cpu", device, "no GPU (neither CUDA nor MPS): the laptop sizes on the CPU"


def get_profile(name: str = "auto") -> Profile:
    """Return the :class:`Profile` called ``name`` (``"auto"``, ``"smoke"``, ``"cpu"``, ``"gpu"``,
    ``"gpu-small"``).

    ``"auto"`` honours ``$LOWLIGHT_PROFILE`` and otherwise picks by device (:func:`auto_choice`).
    Whatever the sizes, ``device`` is where ``fit(device="auto")`` trains: CUDA, else MPS, else
    the CPU (a ``cpu`` or ``smoke`` profile still trains on a GPU when one is present).
    """
    if not isinstance(name, str):
        raise TypeError(f"profile must be a string such as 'auto' or 'smoke', got {name!r}.")
    key = name.strip().lower().replace("_", "-")
    from_env = False
    if key == "auto":
        from_env = bool(os.environ.get(ENV_VAR, "").strip())
        key = auto_choice()[0].replace("_", "-")
    if key not in PROFILES:
        source = f" (read from ${ENV_VAR})" if from_env else ""
        raise ValueError(f"Unknown profile {key!r}{source}. Choose one of: auto, {', '.join(PROFILES)}.")
    return replace(PROFILES[key], device=auto_device())
