"""Every public loss and metric against every row of the design's bad-input table.

Each row must raise an ordinary ``ValueError`` / ``TypeError`` whose message names the problem and
the fix, before any computation (so the learner never sees a traceback from inside the package).
"""
import pytest
import torch

from lowlight_course import metrics
from lowlight_course.losses import (HistogramLoss, SSIMLoss, charbonnier, color_constancy_loss,
                                    exposure_control_loss, l1, mse, soft_histogram,
                                    spatial_consistency_loss, ssim)

# Functions of a (pred, target) pair.
PAIR_FUNCTIONS = {
    "mse": mse, "l1": l1, "charbonnier": charbonnier, "ssim": ssim, "SSIMLoss": SSIMLoss(),
    "HistogramLoss": HistogramLoss(), "psnr": metrics.psnr, "delta_e": metrics.delta_e,
    "luminance_band_errors": metrics.luminance_band_errors, "metrics.ssim": metrics.ssim,
    "spatial_consistency_loss": spatial_consistency_loss,
}
# Functions of one image batch.
IMAGE_FUNCTIONS = {
    "soft_histogram": soft_histogram, "contrast": metrics.contrast, "saturation": metrics.saturation,
    "high_frequency_energy": metrics.high_frequency_energy, "noise_level": metrics.noise_level,
    "exposure_control_loss": exposure_control_loss, "color_constancy_loss": color_constancy_loss,
}


def _image(size=32, seed=0):
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _with(x, index, value):
    x = x.clone()
    x[index] = value
    return x


# row name -> (make the bad arguments from a good image, words the message must contain)
IMAGE_ROWS = {
    "wrong rank": (lambda x: x[0], "unsqueeze(0)"),
    "integer dtype": (lambda x: (x * 255).to(torch.uint8), "divide by 255"),
    "NaN": (lambda x: _with(x, (0, 0, 0, 0), float("nan")), "NaN"),
    "Inf": (lambda x: _with(x, (0, 0, 0, 0), float("inf")), "Inf"),
    "0-255 values": (lambda x: x * 255, "divide them by 255"),
    # a very dark 8-bit photo (whole numbers 0, 1, 2) used to pass as [0, 1]
    "very dark 8-bit values": (lambda x: (x * 2.4).floor(), "divide them by 255"),
    "not a tensor": (lambda x: x.numpy(), "torch.Tensor"),
}


@pytest.mark.parametrize("row", IMAGE_ROWS)
@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
def test_pair_functions_reject_bad_pred(name, row):
    make_bad, words = IMAGE_ROWS[row]
    good = _image()
    with pytest.raises((ValueError, TypeError)) as err:
        PAIR_FUNCTIONS[name](make_bad(good), _image(seed=1))
    assert words in str(err.value), f"{name} / {row}: {err.value}"


@pytest.mark.parametrize("row", IMAGE_ROWS)
@pytest.mark.parametrize("name", IMAGE_FUNCTIONS)
def test_image_functions_reject_bad_input(name, row):
    make_bad, words = IMAGE_ROWS[row]
    with pytest.raises((ValueError, TypeError)) as err:
        IMAGE_FUNCTIONS[name](make_bad(_image()))
    assert words in str(err.value), f"{name} / {row}: {err.value}"


@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
def test_pair_functions_reject_shape_mismatch(name):
    with pytest.raises(ValueError) as err:
        PAIR_FUNCTIONS[name](_image(32), _image(24))
    assert "same shape" in str(err.value)


@pytest.mark.parametrize("name", PAIR_FUNCTIONS)
def test_pair_functions_reject_device_mismatch(name):
    # A 'meta' tensor stands in for a second device (no GPU needed): the device comparison must come
    # before any value is read.
    with pytest.raises(ValueError) as err:
        PAIR_FUNCTIONS[name](_image(), torch.empty(2, 3, 32, 32, device="meta"))
    assert "device" in str(err.value) and ".to(" in str(err.value)


@pytest.mark.parametrize("fn", [ssim, SSIMLoss(), metrics.ssim])
def test_ssim_rejects_window_larger_than_image(fn):
    with pytest.raises(ValueError) as err:
        fn(_image(8), _image(8, seed=1))
    assert "larger than the 8x8 image" in str(err.value) and "window_size" in str(err.value)


def test_valid_input_still_works_for_every_function():
    pred, target = _image(), _image(seed=1)
    for name, fn in PAIR_FUNCTIONS.items():
        out = fn(pred, target)
        values = out.values() if isinstance(out, dict) else [out]
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in values), name
    for name, fn in IMAGE_FUNCTIONS.items():
        out = fn(pred)
        assert torch.as_tensor(out).numel() > 0, name
