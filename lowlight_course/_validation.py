"""Input checks shared by every public loss and metric.

Each check raises an error that names the problem *and* the fix, so a learner never has to read a
traceback from inside the package. Errors are ordinary ``TypeError`` / ``ValueError`` subclasses,
so ``pytest.raises(ValueError)`` and ``except ValueError`` keep working.
"""
from __future__ import annotations

import torch

__all__ = ["ImageInputError", "check_image", "check_pair", "check_reduction", "check_window_fits"]


class ImageInputError(ValueError):
    """A tensor handed to a loss or metric is not a valid image batch."""


class ImageDtypeError(TypeError):
    """A tensor handed to a loss or metric is not a floating-point tensor."""


def check_image(x, name: str = "image", *, data_range: float | None = 1.0, rank: int = 4) -> torch.Tensor:
    """Validate one image batch of shape (B, C, H, W) and return it unchanged.

    Checks, in order: is a tensor, floating dtype, rank, finite values, and (when ``data_range`` is
    given) values not far outside ``[0, data_range]``: the 0-255-image-into-a-[0, 1]-loss mistake.
    "Far" is below ``-data_range`` or above ``2 * data_range``; a network output that overshoots a
    little is fine.
    """
    if not isinstance(x, torch.Tensor):
        raise ImageDtypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}. "
            f"Convert it with torch.as_tensor(...) (for an H x W x C array: "
            f"torch.as_tensor(a).permute(2, 0, 1)[None].float() / 255)."
        )
    if not x.is_floating_point():
        hint = " and divide by 255" if x.dtype == torch.uint8 else ""
        raise ImageDtypeError(
            f"{name} has dtype {x.dtype}, but losses and metrics need a floating-point tensor. "
            f"Use {name}.float(){hint}."
        )
    if x.dim() != rank:
        if rank == 4 and x.dim() == 3:
            fix = f"add a batch dimension with {name}.unsqueeze(0)"
        elif rank == 4 and x.dim() == 2:
            fix = f"add batch and channel dimensions with {name}[None, None]"
        else:
            fix = f"reshape it to {rank} dimensions"
        raise ImageInputError(
            f"{name} must have {rank} dimensions (B, C, H, W), got shape {tuple(x.shape)}: {fix}."
        )
    if x.numel() == 0:
        raise ImageInputError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one pixel.")
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if not (torch.isfinite(torch.tensor([lo, hi])).all()):
        bad = int((~torch.isfinite(x.detach())).sum())
        raise ImageInputError(
            f"{name} contains {bad} NaN or Inf value(s). Find where they appear (a division by zero, "
            f"a log of 0, a learning rate too large) or clean the input with torch.nan_to_num."
        )
    if data_range is not None and (hi > 2 * data_range or lo < -data_range):
        if data_range == 1.0 and hi > 2.0:
            fix = ("images look like 8-bit values (0-255) but data_range=1.0: divide them by 255, "
                   "or pass data_range=255")
        else:
            fix = f"rescale it to [0, {data_range:g}] or pass the matching data_range"
        raise ImageInputError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}], far outside the declared range "
            f"[0, {data_range:g}]: {fix}."
        )
    return x


def check_pair(pred, target, *, data_range: float | None = 1.0, names=("pred", "target")):
    """Validate a prediction/target pair: both valid images, same device, same shape.

    The device comparison runs before any value is read, so a mixed-device pair gets this
    message rather than an error from deep inside PyTorch.
    """
    if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor) and pred.device != target.device:
        raise ImageInputError(
            f"{names[0]} is on {pred.device} but {names[1]} is on {target.device}: move both to one "
            f"device, for example {names[1]} = {names[1]}.to({names[0]}.device)."
        )
    check_image(pred, names[0], data_range=data_range)
    check_image(target, names[1], data_range=data_range)
    if pred.shape != target.shape:
        raise ImageInputError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}. Crop or resize one of them (for example with "
            f"torch.nn.functional.interpolate) so they match."
        )
    return pred, target


def check_window_fits(window_size: int, height: int, width: int, what: str = "SSIM") -> None:
    """Raise if a ``window_size`` x ``window_size`` window does not fit in an H x W image."""
    if not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ImageInputError(
            f"window_size must be a positive odd integer, got {window_size!r}: use 11 (the standard "
            f"{what} window) or another odd number."
        )
    side = min(height, width)
    if window_size > side:
        largest_odd = side if side % 2 else side - 1
        raise ImageInputError(
            f"The {window_size}x{window_size} {what} window is larger than the {height}x{width} image. "
            f"Use a smaller odd window_size (at most {largest_odd}) or larger images."
        )


def check_reduction(reduction, allowed=("mean", "none")) -> None:
    """Raise unless ``reduction`` is one of ``allowed`` (``"mean"``: a scalar; ``"none"``: per image)."""
    if reduction not in allowed:
        raise ImageInputError(
            f"reduction must be one of {tuple(allowed)}, got {reduction!r}: use 'mean' for a scalar "
            f"or 'none' for one value per image."
        )
