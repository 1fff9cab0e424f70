"""Which device training runs on (:func:`resolve_device`) and where a module lives (:func:`home_device`)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["resolve_device", "home_device"]

_NAMES = "'auto' (CUDA when available, else the CPU), 'cpu', 'cuda' or 'cuda:0'"


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` (or None) -> ``cuda`` when available, else ``cpu``; anything else through ``torch.device``.

    Raises:
        ValueError: a name PyTorch does not know (``"gpu"``: say ``"cuda"``), or a CUDA index
            beyond the GPUs present.
        RuntimeError: CUDA (or MPS) was asked for and is not available.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise RuntimeError("device='mps' was requested but Apple's MPS is not available: use device='auto'.")
    return dev


def home_device(module: nn.Module) -> torch.device | None:
    """The device of ``module``'s first parameter (else first buffer); None when it holds no tensors."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None
