"""Training data on the device: :class:`PairData` (tensor pairs or a Dataset) and :class:`BatchOrder`."""
from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["PairData", "BatchOrder"]


def _dict_fix(what: str, item: Mapping) -> str:
    keys = [k for k in item]
    lo = next((k for k in keys if "low" in str(k).lower()), keys[0])
    hi = next((k for k in keys if any(w in str(k).lower() for w in ("high", "target", "gt", "normal"))),
              next((k for k in keys if k != lo), lo))
    stack = "torch.stack([ds[i][{k!r}] for i in range(len(ds))])"
    return (f"{what} is a Dataset whose items are dicts (keys {', '.join(map(repr, keys))}); fit needs "
            f"(low, high) pairs. Stack them into tensors, where ds is your dataset: "
            f"{what} = ({stack.format(k=lo)}, {stack.format(k=hi)})")


def _check_item(item, what: str) -> None:
    """The first item of a Dataset is a (low, high) pair of float (C, H, W) images of one shape."""
    if isinstance(item, Mapping):
        raise TypeError(_dict_fix(what, item))
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        got = f"a {len(item)}-tuple" if isinstance(item, (tuple, list)) else f"a {type(item).__name__}"
        raise TypeError(f"{what}[0] is {got}; each item of a {what} Dataset must be a (low, high) pair "
                        f"of (C, H, W) image tensors.")
    try:
        low, high = (torch.as_tensor(t) for t in item)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{what}[0] holds {type(item[0]).__name__} and {type(item[1]).__name__}; the pair "
                        f"must be tensors (or arrays) of shape (C, H, W), e.g. "
                        f"torchvision.transforms.functional.to_tensor(img) for a PIL image.") from None
    for name, t in (("low", low), ("high", high)):
        if not t.is_floating_point():
            raise TypeError(f"{what}[0] {name} image has dtype {t.dtype}; fit would train on values "
                            f"0-255. Convert in the dataset: return img.float() / 255.")
        if t.dim() != 3:
            raise ValueError(f"{what}[0] {name} image has shape {tuple(t.shape)}; Dataset items must be "
                             f"single (C, H, W) images (fit stacks them into batches).")
    if low.shape != high.shape:
        raise ValueError(f"{what}[0]: low {tuple(low.shape)} and high {tuple(high.shape)} differ in shape; "
                         f"the pair must show the same scene at the same size.")


class PairData:
    """Uniform access to a ``(low, high)`` tensor pair or a Dataset of pairs.

    Tensor pairs are checked (rank 4, floating, equal shapes, finite) and, below 1 GiB, moved to
    ``device`` once, so a step copies nothing. A Dataset's first item is checked the same way.
    """

    def __init__(self, train, device: torch.device, what: str = "train"):
        self.device = device
        if isinstance(train, (tuple, list)) and len(train) == 2 and all(isinstance(t, torch.Tensor) for t in train):
            low, high = train
            for name, t in (("low", low), ("high", high)):
                if t.dim() != 4:
                    raise ValueError(f"{what}[{0 if name == 'low' else 1}] ({name}) must have shape (N, C, H, W), "
                                     f"got {tuple(t.shape)}.")
                if not t.is_floating_point():
                    raise TypeError(f"{what} {name} images have dtype {t.dtype}: use .float() / 255.")
            if low.shape[0] != high.shape[0] or low.shape[0] == 0:
                raise ValueError(f"{what} low and high must hold the same (non-zero) number of images, "
                                 f"got {low.shape[0]} and {high.shape[0]}.")
            if low.shape != high.shape:
                raise ValueError(f"{what} low {tuple(low.shape)} and high {tuple(high.shape)} differ in "
                                 f"shape; each pair must show the same scene at the same size.")
            for name, t in (("low", low), ("high", high)):
                if not bool(torch.isfinite(t).all()):
                    bad = int((~torch.isfinite(t)).flatten(1).any(1).nonzero()[0])
                    raise ValueError(f"{what} {name} images hold NaN or Inf (first in image {bad}): "
                                     f"the loss would be NaN from the first step. Clean the data, "
                                     f"e.g. {name}.nan_to_num(0.0).clamp(0, 1).")
            # Small sets (every course profile) live on the device once: no per-step copies.
            on_device = (low.numel() + high.numel()) * low.element_size() < 2 ** 30
            # detached: a tensor that requires grad would pull every step's graph into the data
            low, high = low.detach(), high.detach()
            self.low = low.to(device) if on_device else low
            self.high = high.to(device) if on_device else high
            self.dataset = None
            self.n = low.shape[0]
        elif not isinstance(train, (torch.Tensor, tuple, list, Mapping)) and (
                isinstance(train, torch.utils.data.Dataset) or (hasattr(train, "__getitem__") and hasattr(train, "__len__"))):
            self.dataset, self.n = train, len(train)
            if self.n == 0:
                raise ValueError(f"{what} dataset is empty.")
            _check_item(train[0], what)
        else:
            raise TypeError(f"{what} must be a tuple (low, high) of tensors (N, 3, H, W) or a Dataset of "
                            f"(low, high) pairs, got {type(train).__name__}.")

    def batch(self, idx: torch.Tensor):
        """The pairs at ``idx`` as float32 (B, C, H, W) tensors on the training device."""
        if self.dataset is None:
            if self.low.device != idx.device and self.low.device.type != "cpu":
                idx = idx.to(self.low.device)
            low, high = self.low[idx], self.high[idx]
        else:
            pairs = [self.dataset[int(i)] for i in idx]
            low = torch.stack([torch.as_tensor(p[0]) for p in pairs])
            high = torch.stack([torch.as_tensor(p[1]) for p in pairs])
        nb = self.device.type == "cuda"
        return low.to(self.device, non_blocking=nb).float(), high.to(self.device, non_blocking=nb).float()


class BatchOrder:
    """Batches without replacement, epoch after epoch, in an order fixed by ``seed``."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.order, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx
