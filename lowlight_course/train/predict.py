""":func:`predict`: a model's output on a batch of images, in eval mode, without gradients."""
from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from .devices import home_device, resolve_device

__all__ = ["predict"]


@torch.no_grad()
def predict(model: nn.Module, low: torch.Tensor, batch_size: int = 32, device="auto") -> torch.Tensor:
    """Run ``model`` on ``low`` in batches, in eval mode and without gradients; return CPU tensors.

    ``low`` is (N, 3, H, W) or a single image (3, H, W) (the result then has the same rank). The
    model is moved back to where it was, and to its train/eval mode, afterwards. A model returning
    a tuple (such as ``CurveNet(..., return_curves=True)``) contributes its first element.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(low, torch.Tensor):
        raise TypeError(f"low must be a torch.Tensor, got {type(low).__name__}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}: use e.g. batch_size=32.")
    single = low.dim() == 3
    if single:
        low = low.unsqueeze(0)
    if low.dim() != 4:
        raise ValueError(f"low must have shape (N, C, H, W) or (C, H, W), got {tuple(low.shape)}.")
    dev = resolve_device(device)
    home = home_device(model) or torch.device("cpu")
    was_training = model.training
    model.to(dev).eval()
    try:
        outs = []
        for start in range(0, low.shape[0], int(batch_size)):
            out = model(low[start:start + batch_size].to(dev).float())
            if isinstance(out, (tuple, list)):
                out = out[0]
            outs.append(out.float().cpu())
    finally:
        model.to(home).train(was_training)
    y = torch.cat(outs)
    return y[0] if single else y
