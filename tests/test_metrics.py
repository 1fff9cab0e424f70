import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_cie76, rgb2lab

from lowlight_course import metrics as M
from lowlight_course.data.images import load_image
from lowlight_course.losses import ssim as loss_ssim


@pytest.fixture(scope="module")
def photos():
    return load_image("coffee", 48)[None], load_image("astronaut", 48)[None]


def _np(x):
    return x[0].permute(1, 2, 0).double().numpy()


def test_psnr():
    x = torch.zeros(2, 3, 8, 8)
    assert float(M.psnr(x + 0.1, x)) == pytest.approx(20.0, abs=1e-4)
    assert float(M.psnr(x * 255 + 25.5, x * 255, data_range=255)) == pytest.approx(20.0, abs=1e-4)
    y = x.clone(); y[1] += 0.01
    per = M.psnr(y, x, reduction="none")
    assert per.shape == (2,) and math.isinf(float(per[0])) and float(per[1]) == pytest.approx(40.0, abs=1e-3)


def test_psnr_matches_skimage(photos):
    from skimage.metrics import peak_signal_noise_ratio
    a, b = photos
    assert float(M.psnr(a, b)) == pytest.approx(peak_signal_noise_ratio(_np(b), _np(a), data_range=1.0), abs=1e-3)


def test_ssim_is_the_loss_one():
    assert M.ssim is loss_ssim


def test_lab_and_delta_e_match_skimage(photos):
    a, b = photos
    assert np.abs(_np(M.rgb_to_lab(a)) - rgb2lab(_np(a))).max() < 1e-2
    ref = deltaE_cie76(rgb2lab(_np(a)), rgb2lab(_np(b)))
    assert np.abs(M.delta_e(a, b, reduction="map")[0].numpy() - ref).max() < 1e-2
    assert float(M.delta_e(a, b)) == pytest.approx(ref.mean(), rel=1e-4)
    assert float(M.delta_e(a, a)) == 0.0
    assert M.delta_e(torch.cat([a, b]), torch.cat([b, a]), reduction="none").shape == (2,)


def test_delta_e_sees_colour_cast_mse_barely_does(photos):
    a, _ = photos
    cast = (a * torch.tensor([1.1, 1.0, 0.85]).view(1, 3, 1, 1)).clamp(0, 1)
    assert float(M.delta_e(cast, a)) > 3.0


def test_luminance_band_errors():
    t = torch.linspace(0, 1, 64).view(1, 1, 8, 8).expand(1, 3, 8, 8).contiguous()
    errs = M.luminance_band_errors(t + 0.1 * (t < 0.2), t)
    assert errs["dark"] == pytest.approx(0.1) and errs["mid"] == 0.0 and errs["bright"] == 0.0
    assert sum(errs[f"{k}_fraction"] for k in ("dark", "mid", "bright")) == pytest.approx(1.0)
    two = M.luminance_band_errors(t, t, bands=(0.0, 0.5, 1.0))
    assert set(two) == {"[0, 0.5)", "[0.5, 1)", "[0, 0.5)_fraction", "[0.5, 1)_fraction"}
    empty = M.luminance_band_errors(t * 0.1, t * 0.1)
    assert math.isnan(empty["bright"])
    with pytest.raises(ValueError, match="increasing"):
        M.luminance_band_errors(t, t, bands=(0.5, 0.2))


def test_noise_level_with_and_without_reference():
    g = torch.Generator().manual_seed(0)
    ref = torch.full((2, 3, 64, 64), 0.1)
    ref[..., 32:, :] = 0.8                           # a bright half: not used
    noisy = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    assert float(M.noise_level(noisy, ref)) == pytest.approx(0.03, rel=0.1)
    assert float(M.noise_level(noisy)) == pytest.approx(0.03, rel=0.15)
    assert float(M.noise_level(ref, ref)) == 0.0
    assert M.noise_level(noisy, ref, reduction="none").shape == (2,)
    bright = torch.full((1, 3, 32, 32), 0.9)
    assert math.isnan(float(M.noise_level(bright, bright)))


def test_regression_to_mean_statistics(photos):
    a, _ = photos
    dull = 0.5 * a + 0.5 * a.mean()
    blurred = torch.nn.functional.avg_pool2d(a, 3, stride=1, padding=1, count_include_pad=False)
    assert float(M.contrast(dull)) == pytest.approx(0.5 * float(M.contrast(a)), rel=1e-4)
    assert float(M.saturation(dull)) < float(M.saturation(a))
    assert float(M.high_frequency_energy(blurred)) < 0.5 * float(M.high_frequency_energy(a))
    assert M.contrast(torch.cat([a, dull]), reduction="none").shape == (2,)
    assert float(M.saturation(torch.zeros(1, 3, 4, 4))) == 0.0


def test_bad_input(photos):
    a, b = photos
    for fn in (M.psnr, M.delta_e, M.luminance_band_errors, M.noise_level):
        with pytest.raises(ValueError, match="same shape"):
            fn(a, b[..., :32])
        with pytest.raises(ValueError, match="255"):
            fn(a * 255, b * 255)
    for fn in (M.contrast, M.saturation, M.high_frequency_energy, M.noise_level):
        with pytest.raises(ValueError, match="dimensions"):
            fn(a[0])
        with pytest.raises(TypeError, match="dtype"):
            fn((a * 255).to(torch.uint8))
        with pytest.raises(ValueError, match="NaN"):
            fn(torch.full_like(a, float("nan")))
    with pytest.raises(ValueError, match="3 colour channels"):
        M.delta_e(a[:, :1], b[:, :1])
    with pytest.raises(ValueError, match="data_range"):
        M.psnr(a, b, data_range=0)
    with pytest.raises(ValueError, match="patch"):
        M.noise_level(a, patch_size=100)
