"""Input checks shared by every public loss and metric.

Each check raises an error that names the problem *and* the fix, so a learner never has to read a
traceback from inside the package. Errors are ordinary ``TypeError`` / ``ValueError`` subclasses,
so ``pytest.raises(ValueError)`` and ``except ValueError`` keep working.
"""
from __future__ import annotations

import warnings

import torch

__all__ = ["ImageInputError", "DataRangeWarning", "check_image", "check_pair", "check_reduction",
           "check_window_fits", "check_channels", "warn_if_below_range"]


class ImageInputError(ValueError):
    """A tensor handed to a loss or metric is not a valid image batch."""


class ImageDtypeError(TypeError):
    """A tensor handed to a loss or metric is not a floating-point tensor."""


class DataRangeWarning(UserWarning):
    """Every value is far below the declared ``data_range``: most likely [0, 1] images with L = 255.

    Turn it into an error with ``warnings.simplefilter("error", DataRangeWarning)``.
    """


def _range_example(range_arg: str, value: float = 255) -> str:
    """The argument a caller offers for another value range, spelled as the user should pass it."""
    if range_arg == "value_range":
        return f"value_range=(0, {value:g})"
    return f"{range_arg}={value:g}"


def _is_integer_valued(x: torch.Tensor) -> bool:
    x = x.detach()
    return bool(torch.equal(x, torch.round(x)))


def check_image(x, name: str = "image", *, data_range: float | None = 1.0, rank: int = 4,
                range_arg: str | None = None) -> torch.Tensor:
    """Validate one image batch of shape (B, C, H, W) and return it unchanged.

    Checks, in order: is a tensor, floating dtype, rank, finite values, and (when ``data_range`` is
    given) values not far outside ``[0, data_range]``: the 0-255-image-into-a-[0, 1]-loss mistake.
    "Far" is below ``-data_range`` or above ``2 * data_range``; a network output that overshoots a
    little is fine. With ``data_range=1`` an image of whole numbers above 1 (a very dark 8-bit
    photo, values 0, 1, 2) is rejected too: a [0, 1] image is not integer-valued above 1.

    ``range_arg`` names the caller's argument that declares another range (``"data_range"`` or
    ``"value_range"``); only then does the message suggest passing it. Without one the fix offered
    is to rescale the image, which works for every function.
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
    if data_range is None:
        return x
    far = hi > 2 * data_range or lo < -data_range
    dark_8bit = (not far and data_range == 1.0 and hi > 1.0 and lo >= 0.0 and _is_integer_valued(x))
    if far or dark_8bit:
        if data_range == 1.0 and hi > 1.0 and (hi > 2.0 or dark_8bit) and lo >= -1.0:
            if hi > 2 * 255:
                what, scale = "16-bit values (0-65535)", 65535
            elif dark_8bit:
                what, scale = "whole-number 8-bit values (a very dark 0-255 photo)", 255
            else:
                what, scale = "8-bit values (0-255)", 255
            fix = f"images look like {what} but this function expects [0, 1]: divide them by {scale}"
            if range_arg:
                fix += f", or pass {_range_example(range_arg, scale)}"
        else:
            fix = f"rescale it to [0, {data_range:g}]"
            if data_range == 1.0 and lo < 0 and hi <= 1.0 + 1e-6:
                fix += " (values in [-1, 1]: use (x + 1) / 2; or x.clamp(0, 1))"
            if range_arg:
                fix += f" or pass the matching {range_arg}"
        where = "far outside" if far else "not plausible for"
        raise ImageInputError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}], {where} the declared range "
            f"[0, {data_range:g}]: {fix}."
        )
    return x


def check_pair(pred, target, *, data_range: float | None = 1.0, names=("pred", "target"),
               range_arg: str | None = None):
    """Validate a prediction/target pair: both valid images, same device, same shape.

    The device comparison runs before any value is read, so a mixed-device pair gets this
    message rather than an error from deep inside PyTorch.
    """
    if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor) and pred.device != target.device:
        raise ImageInputError(
            f"{names[0]} is on {pred.device} but {names[1]} is on {target.device}: move both to one "
            f"device, for example {names[1]} = {names[1]}.to({names[0]}.device)."
        )
    check_image(pred, names[0], data_range=data_range, range_arg=range_arg)
    check_image(target, names[1], data_range=data_range, range_arg=range_arg)
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


def check_channels(x: torch.Tensor, name: str, allowed=(3,), what: str = "RGB") -> None:
    """Raise unless ``x`` (B, C, H, W) has a channel count in ``allowed``, saying what to do instead."""
    c = x.shape[1]
    if c in allowed:
        return
    labels = {1: "1 (grey)", 3: "3 (RGB)"}
    want = " or ".join(labels.get(a, str(a)) for a in allowed)
    want = "3 colour channels (RGB)" if tuple(allowed) == (3,) else f"{want} colour channels"
    if c == 4 and 3 in allowed:
        fix = f"drop the alpha channel with {name}[:, :3]"
    elif c == 2 and 1 in allowed:
        fix = f"drop the alpha channel of a grey-alpha image with {name}[:, :1]"
    elif c == 1 and 3 in allowed:
        fix = f"repeat the grey channel with {name}.expand(-1, 3, -1, -1)"
    elif c == 2:
        fix = (f"a 2-channel image is grey + alpha: keep the grey channel with {name}[:, :1]"
               + (f" and repeat it with .expand(-1, 3, -1, -1)" if 1 not in allowed else ""))
    else:
        fix = f"pass images in (B, C, H, W) layout with C = {allowed[0]} (permute a (B, H, W, C) tensor with .permute(0, 3, 1, 2))"
    raise ImageInputError(f"{name} must have {want} for {what}, got {c} (shape {tuple(x.shape)}): {fix}.")


def warn_if_below_range(tensors, data_range: float, *, what: str = "ssim", stacklevel: int = 3) -> bool:
    """Warn (:class:`DataRangeWarning`) when every value of ``tensors`` is far below ``data_range``.

    The course's central pitfall: [0, 1] images scored with ``data_range=255`` pass every range
    check but make C1 = (0.01 L)^2 and C2 = (0.03 L)^2 swamp the statistics (SSIM near 1 for any
    pair, PSNR 48 dB too high). Fires when ``data_range > 1`` and the largest absolute value is at
    most ``data_range / 100`` (2.55 for L = 255) and not every value is a whole number (a very dark
    8-bit photo, values 0, 1, 2, is not flagged). Returns whether it warned; costs nothing for
    ``data_range <= 1``.
    """
    if not data_range > 1.0:
        return False
    peak = max(float(t.detach().abs().max()) for t in tensors)
    if peak > data_range / 100.0 or all(_is_integer_valued(t) for t in tensors):
        return False
    hint = ("images in [0, 1]" if peak <= 1.0 + 1e-3 else f"images whose largest value is {peak:.3g}")
    warnings.warn(
        f"{what}: data_range={data_range:g} but every value is at most {peak:.3g} ({hint}), far below "
        f"the declared range. The result is meaningless (C1 and C2 grow with data_range^2): pass "
        f"data_range=1.0 for images in [0, 1], or scale the images to [0, {data_range:g}].",
        DataRangeWarning, stacklevel=stacklevel)
    return True
