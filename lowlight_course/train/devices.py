"""Which device training runs on (:func:`resolve_device`, :func:`auto_device`) and where a module lives
(:func:`home_device`).

``device="auto"`` picks, in order: CUDA (an NVIDIA GPU), Apple's MPS (the GPU of an Apple-silicon
Mac), the CPU. On MPS some operations have no kernel yet; :func:`resolve_device` then sets
``PYTORCH_ENABLE_MPS_FALLBACK=1`` (unless the learner set it) so that those operations run on the
CPU instead of raising ``NotImplementedError``, and says so once per process. PyTorch itself warns
once for each operation that falls back.
"""
from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["resolve_device", "auto_device", "mps_available", "home_device", "MPS_FALLBACK_ENV"]

_NAMES = "'auto' (CUDA, else Apple's MPS, else the CPU), 'cpu', 'cuda', 'cuda:0' or 'mps'"

#: PyTorch's switch that lets operations MPS lacks run on the CPU.
MPS_FALLBACK_ENV = "PYTORCH_ENABLE_MPS_FALLBACK"

_mps_message_shown = False


def mps_available() -> bool:
    """Whether Apple's MPS backend can be used (False on builds without it)."""
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # noqa: BLE001  (a broken backend query means: not usable)
        return False


def auto_device() -> str:
    """The device type ``device="auto"`` trains on: ``"cuda"``, else ``"mps"``, else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    if mps_available():
        return "mps"
    return "cpu"


def _prepare_mps(echo=print) -> None:
    """Turn on the CPU fallback for operations MPS lacks (unless set) and say so, once per process."""
    global _mps_message_shown
    preset = os.environ.get(MPS_FALLBACK_ENV)
    if preset is None:
        os.environ[MPS_FALLBACK_ENV] = "1"
    if _mps_message_shown:
        return
    _mps_message_shown = True
    if preset is None or preset.strip() == "1":
        echo(f"Training on Apple's MPS. Operations MPS has no kernel for run on the CPU "
             f"({MPS_FALLBACK_ENV}=1; PyTorch warns once for each one, and they are slower).")
    else:
        echo(f"Training on Apple's MPS with {MPS_FALLBACK_ENV}={preset!r}: an operation MPS has no "
             f"kernel for will raise NotImplementedError. Set {MPS_FALLBACK_ENV}=1 to run it on the "
             f"CPU, or train with device='cpu'.")


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` (or None) -> ``cuda``, else ``mps``, else ``cpu``; anything else through ``torch.device``.

    Choosing MPS (by ``"auto"`` or by name) turns on PyTorch's CPU fallback for operations MPS
    lacks and prints a one-time message (see the module docstring).

    Raises:
        ValueError: a name PyTorch does not know (``"gpu"``: say ``"cuda"``), or a CUDA index
            beyond the GPUs present.
        RuntimeError: CUDA (or MPS) was asked for and is not available.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        dev = torch.device(auto_device())
        if dev.type == "mps":
            _prepare_mps()
        return dev
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"device must be a string such as {_NAMES}, or a torch.device; "
                        f"got {type(device).__name__}.")
    if isinstance(device, str) and device.strip().lower().startswith("gpu"):
        fixed = "cuda" + device.strip()[3:]
        raise ValueError(f"device={device!r} is not a PyTorch device name: NVIDIA GPUs are called "
                         f"'cuda', so use device={fixed!r} (or device='auto', which picks the GPU "
                         f"when there is one).")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"device={device!r} is not a device PyTorch knows ({err}); use {_NAMES}.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was requested but CUDA is not available: use device='auto'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), numbered from 0; use device='cuda'.")
    if dev.type == "mps":
        if not mps_available():
            raise RuntimeError("device='mps' was requested but Apple's MPS is not available: use device='auto'.")
        _prepare_mps()
    return dev


def home_device(module: nn.Module) -> torch.device | None:
    """The device of ``module``'s first parameter (else first buffer); None when it holds no tensors."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None
