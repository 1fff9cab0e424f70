"""Issue 10, items 3-6: errors whose fix works, data that is not silently wrong, gradients that do
not lie. Table-driven, like ``tests/test_bad_input.py``.

The 0-255 table is mechanical: every public callable of losses, metrics, hdr and pitfalls that
takes images is called with 0-255 input; the message must offer a fix, and every fix it offers
("divide them by 255", "pass data_range=255", "pass value_range=(0, 255)") is applied and must
work. A completeness test makes a new public function join the table (or say why not).
"""
import inspect
import math
import re
import warnings

import numpy as np
import pytest
import torch

from lowlight_course import hdr, metrics, pitfalls
from lowlight_course import losses as L
from lowlight_course._validation import DataRangeWarning
from lowlight_course.data import (LOLFolder, apply_illuminant, load_image, luminance, quantize,
                                  read_noise_from_shot, simulate_low_light)


def _img(b=2, c=3, size=32, seed=0):
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed))


# name -> (public function or nn.Module class, what it takes). A module's constructor receives the
# suggested argument; a function receives it as a keyword.
PAIR, IMAGE, CLEAN = "pair", "image", "clean"
TABLE = {
    "mse": (L.mse, PAIR), "l1": (L.l1, PAIR), "charbonnier": (L.charbonnier, PAIR),
    "MSELoss": (L.MSELoss, PAIR), "L1Loss": (L.L1Loss, PAIR), "CharbonnierLoss": (L.CharbonnierLoss, PAIR),
    "ssim": (L.ssim, PAIR), "SSIMLoss": (L.SSIMLoss, PAIR),
    "soft_histogram": (L.soft_histogram, IMAGE), "hard_histogram": (L.hard_histogram, IMAGE),
    "HistogramLoss": (L.HistogramLoss, PAIR),
    "spatial_consistency_loss": (L.spatial_consistency_loss, PAIR),
    "exposure_control_loss": (L.exposure_control_loss, IMAGE),
    "color_constancy_loss": (L.color_constancy_loss, IMAGE),
    "SpatialConsistencyLoss": (L.SpatialConsistencyLoss, PAIR),
    "ExposureControlLoss": (L.ExposureControlLoss, IMAGE), "ColorConstancyLoss": (L.ColorConstancyLoss, IMAGE),
    "metrics.psnr": (metrics.psnr, PAIR), "metrics.ssim": (metrics.ssim, PAIR),
    "rgb_to_lab": (metrics.rgb_to_lab, IMAGE), "delta_e": (metrics.delta_e, PAIR),
    "luminance_band_errors": (metrics.luminance_band_errors, PAIR),
    "noise_level": (metrics.noise_level, IMAGE), "noise_level(ref)": (metrics.noise_level, PAIR),
    "contrast": (metrics.contrast, IMAGE), "saturation": (metrics.saturation, IMAGE),
    "high_frequency_energy": (metrics.high_frequency_energy, IMAGE),
    "dark_weights": (hdr.dark_weights, IMAGE), "dark_weighted_l1": (hdr.dark_weighted_l1, PAIR),
    "DarkWeightedL1Loss": (hdr.DarkWeightedL1Loss, PAIR),
    "total_variation": (hdr.total_variation, IMAGE), "TVLoss": (hdr.TVLoss, IMAGE),
    "light_masks": (hdr.light_masks, IMAGE), "clipped_fraction": (hdr.clipped_fraction, IMAGE),
    "ssim_data_range_255": (pitfalls.ssim_data_range_255, PAIR),
    "ssim_zero_padding": (pitfalls.ssim_zero_padding, PAIR),
    "ssim_gradient_ratio": (pitfalls.ssim_gradient_ratio, PAIR),
    "naive_combined_loss": (pitfalls.naive_combined_loss, PAIR),
    "histogram_blind_to_shuffle": (pitfalls.histogram_blind_to_shuffle, IMAGE),
    "simulate_low_light": (simulate_low_light, CLEAN),
}


def _callable(name, **kw):
    """The table entry as a callable of images, with ``kw`` passed where the entry takes it."""
    obj = TABLE[name][0]
    if isinstance(obj, type):
        return obj(**kw)
    return lambda *images: obj(*images, **kw)


# Public callables that are not in the table, and why.
NOT_IN_TABLE = {
    "gaussian_window": "no image argument",
    "illumination_smoothness_loss": "takes curve maps in [-1, 1], not images (no range check)",
    "IlluminationSmoothnessLoss": "takes curve maps in [-1, 1], not images (no range check)",
    "WeightedLoss": "composes other terms; each term's own check applies",
    "LossReport": "a report, not a function of images",
    "luma": "a colour transform, defined for any scale",
    "DataRangeWarning": "a warning class",
    "gaussian_window_float_exp": "the article's window: raises TypeError by design",
    "naive_ssim": "the article's SSIM with each defect switchable: takes any range by design",
    "histogram_loss_histc": "the article's histc term: takes any range by design",
    "shuffle_pixels": "permutes pixels, defined for any scale",
    "sample_pair": "no image argument",
}
def _args(kind, scale=1.0, dark=False):
    if dark:  # a very dark 8-bit photo: whole numbers 0, 1, 2
        a = torch.randint(0, 3, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0)).float()
        b = torch.randint(0, 3, (2, 3, 32, 32), generator=torch.Generator().manual_seed(1)).float()
        a[0, 0, 0, 0] = b[0, 0, 0, 0] = 2.0
    else:
        a, b = _img() * scale, _img(seed=1) * scale
    if kind == PAIR:
        return (a, b)
    if kind == CLEAN:
        return (a[0],)
    return (a,)


def test_every_public_image_function_is_in_the_table():
    names = set()
    for module in (L, metrics, hdr, pitfalls):
        for n in module.__all__:
            if callable(getattr(module, n)) and not isinstance(getattr(module, n), type(re)):
                names.add(n)
    covered = {k.split(".")[-1].split("(")[0] for k in TABLE} | set(NOT_IN_TABLE)
    assert names - covered == set(), "add these to TABLE (or NOT_IN_TABLE with a reason)"


def _offered_arguments(message):
    return re.findall(r"pass (\w+)=(\(0, 255\)|255|65535)", message)


@pytest.mark.parametrize("dark", [False, True], ids=["0-255", "very dark 8-bit (0, 1, 2)"])
@pytest.mark.parametrize("name", TABLE)
def test_8bit_input_gets_advice_that_works(name, dark):
    kind = TABLE[name][1]
    args = _args(kind, 255.0, dark=dark)
    with pytest.raises(ValueError) as err:
        _callable(name)(*args)
    msg = str(err.value)
    assert "divide them by 255" in msg, f"{name}: {msg}"
    with warnings.catch_warnings():           # fix 1: divide by 255 (and no range warning then)
        warnings.simplefilter("error", DataRangeWarning)
        _callable(name)(*[a / 255 for a in args])
    for arg, value in _offered_arguments(msg):  # fix 2: each argument offered exists and works
        obj = TABLE[name][0]
        params = inspect.signature(obj.__init__ if isinstance(obj, type) else obj).parameters
        assert arg in params, f"{name} has no argument {arg!r}, but its message offers it: {msg}"
        value = (0.0, 255.0) if value.startswith("(") else float(value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataRangeWarning)   # dark 8-bit with L = 255 is legitimate
            _callable(name, **{arg: value})(*args)


def test_functions_without_a_range_argument_never_offer_one():
    offered = {}
    for name, (obj, kind) in TABLE.items():
        try:
            _callable(name)(*_args(kind, 255.0))
        except ValueError as exc:
            offered[name] = {arg for arg, _ in _offered_arguments(str(exc))}
    with_range = {n for n, (obj, _) in TABLE.items()
                  if {"data_range", "value_range"} & set(inspect.signature(
                      obj.__init__ if isinstance(obj, type) else obj).parameters)}
    assert {n for n, args in offered.items() if args} == with_range


def test_16bit_values_are_told_to_divide_by_65535():
    with pytest.raises(ValueError, match="divide them by 65535, or pass data_range=65535"):
        L.ssim(_img() * 65535, _img(seed=1) * 65535)
    with pytest.raises(ValueError, match="divide them by 65535.$"):
        metrics.contrast(_img() * 65535)


def test_binary_masks_and_overshoot_still_pass():
    mask = (_img() > 0.5).float()               # whole numbers, but only 0 and 1: a valid [0, 1] image
    assert torch.isfinite(L.mse(mask, _img()))
    assert torch.isfinite(L.mse(_img() * 1.5, _img()))   # a network overshooting to 1.5: fine


# --- channels other than RGB -------------------------------------------------------------------
RGB_FUNCTIONS = {
    "luminance_band_errors": lambda x: metrics.luminance_band_errors(x, x),
    "noise_level": metrics.noise_level, "noise_level(ref)": lambda x: metrics.noise_level(x, x),
    "contrast": metrics.contrast, "luma": metrics.luma, "saturation": metrics.saturation,
    "rgb_to_lab": metrics.rgb_to_lab, "delta_e": lambda x: metrics.delta_e(x, x),
    "color_constancy_loss": L.color_constancy_loss,
    "soft_histogram(luminance)": lambda x: L.soft_histogram(x, mode="luminance"),
    "dark_weights": hdr.dark_weights, "dark_weighted_l1": lambda x: hdr.dark_weighted_l1(x, x),
    "light_masks": hdr.light_masks,
    "simulate_low_light": simulate_low_light,
    "data.luminance": lambda x: luminance(x[0]),
    "apply_illuminant": lambda x: apply_illuminant(x, (1.0, 1.0, 1.0)),
}


@pytest.mark.parametrize("channels", [2, 4], ids=["grey+alpha", "RGBA"])
@pytest.mark.parametrize("name", RGB_FUNCTIONS)
def test_non_rgb_input_says_what_is_expected(name, channels):
    x = _img(c=channels)
    with pytest.raises(ValueError) as err:
        RGB_FUNCTIONS[name](x)
    msg = str(err.value)
    assert "channel" in msg and "size of tensor" not in msg and "broadcast" not in msg, msg
    if channels == 4:
        assert ":3" in msg, f"{name}: the fix (drop alpha) is missing: {msg}"


@pytest.mark.parametrize("name", ["luminance_band_errors", "noise_level", "contrast", "luma"])
def test_grey_images_still_work_where_luma_is_defined(name):
    out = RGB_FUNCTIONS[name](_img(c=1))
    assert out is not None


# --- the data-range pitfall, caught ------------------------------------------------------------
WARNED = {
    "ssim": lambda a, b: L.ssim(a, b, data_range=255), "SSIMLoss": lambda a, b: L.SSIMLoss(data_range=255)(a, b),
    "metrics.ssim": lambda a, b: metrics.ssim(a, b, data_range=255),
    "psnr": lambda a, b: metrics.psnr(a, b, data_range=255),
}


@pytest.mark.parametrize("name", WARNED)
def test_data_range_255_on_unit_images_warns_with_the_fix(name):
    with pytest.warns(DataRangeWarning, match=r"data_range=255.*pass data_range=1\.0"):
        WARNED[name](_img(), _img(seed=1))


@pytest.mark.parametrize("name", WARNED)
@pytest.mark.parametrize("case", ["8-bit", "very dark 8-bit", "data_range=1"])
def test_no_warning_when_the_range_is_right(name, case):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRangeWarning)
        if case == "8-bit":
            WARNED[name]((_img() * 255).round(), (_img(seed=1) * 255).round())
        elif case == "very dark 8-bit":
            WARNED[name](*_args(PAIR, dark=True))
        else:
            L.ssim(_img() * 0.01, _img(seed=1) * 0.01)       # very dark [0, 1] images: not a mistake
            metrics.psnr(_img() * 0.01, _img(seed=1) * 0.01)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "255"])
@pytest.mark.parametrize("fn", [L.ssim, metrics.psnr])
def test_data_range_itself_is_validated(fn, value):
    with pytest.raises(ValueError, match="data_range"):
        fn(_img(), _img(seed=1), data_range=value)


def test_warning_is_a_userwarning_and_can_be_made_an_error():
    assert issubclass(DataRangeWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRangeWarning)
        with pytest.raises(DataRangeWarning):
            L.ssim(_img(), _img(seed=1), data_range=255)


def test_the_pitfall_functions_still_reproduce_the_pitfall_silently():
    a, b = _img(1, seed=3, size=64), _img(1, seed=4, size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRangeWarning)
        assert float(pitfalls.ssim_data_range_255(a, b)) > 0.99
    with pytest.warns(DataRangeWarning):                    # and the package's SSIM still computes it
        assert float(L.ssim(a, b, data_range=255)) > 0.99


# --- data that is not silently wrong -----------------------------------------------------------
def _write(path, array, mode=None):
    from PIL import Image

    im = Image.fromarray(array)
    if mode:
        im = im.convert(mode)
    im.save(path)
    return path


GRADIENT16 = (np.arange(32 * 32).reshape(32, 32) * 61).astype(np.uint16)    # 0 .. 62403
RGB8 = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
IMAGE_FILES = {
    # name -> (array, PIL mode to save in, expected (3, H, W) float image)
    "16-bit grey": (GRADIENT16, None, np.repeat((GRADIENT16 / 65535.0)[None], 3, 0)),
    "8-bit grey": (RGB8[..., 0], None, np.repeat((RGB8[..., 0] / 255.0)[None], 3, 0)),
    "8-bit RGB": (RGB8, None, RGB8.transpose(2, 0, 1) / 255.0),
    "8-bit RGBA": (np.dstack([RGB8, np.full((32, 32), 128, np.uint8)]), None, RGB8.transpose(2, 0, 1) / 255.0),
    "grey + alpha": (RGB8[..., 0], "LA", np.repeat((RGB8[..., 0] / 255.0)[None], 3, 0)),
}


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_lol_reader_keeps_each_file_format_at_its_precision(tmp_path, name):
    array, mode, expected = IMAGE_FILES[name]
    path = _write(tmp_path / "x.png", array, mode)
    img = LOLFolder.read(str(path))
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    np.testing.assert_allclose(img.numpy(), expected, atol=1e-6)


def test_16_bit_grey_is_not_read_as_white(tmp_path):
    path = _write(tmp_path / "x.png", GRADIENT16)
    img = LOLFolder.read(str(path))
    assert float((img >= 0.999).float().mean()) < 0.02          # was ~99 % white
    assert len(torch.unique(img[0])) > 256                      # full precision, not 8 bits


def test_palette_file_reads_as_its_colours(tmp_path):
    path = _write(tmp_path / "p.png", RGB8, "P")
    from PIL import Image

    expected = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(LOLFolder.read(str(path)).numpy(), expected, atol=1e-6)


def test_lol_folder_pairs_a_16_bit_low_with_an_8_bit_high(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    _write(tmp_path / "low" / "1.png", (GRADIENT16 // 16).astype(np.uint16))
    _write(tmp_path / "high" / "1.png", RGB8)
    low, high = LOLFolder(tmp_path)[0]
    assert float(low.max()) < 0.07 and low.shape == high.shape == (3, 32, 32)


SIMULATE_BAD = {
    "out_bits=0": dict(out_bits=0), "out_bits=-3": dict(out_bits=-3), "out_bits=2.5": dict(out_bits=2.5),
    "out_bits=True": dict(out_bits=True), "out_bits=64": dict(out_bits=64), "adc_bits=0": dict(adc_bits=0),
    "shot_noise<0": dict(shot_noise=-1e-3), "shot_noise=nan": dict(shot_noise=float("nan")),
    "shot_noise=inf": dict(shot_noise=float("inf")), "shot_noise='1e-3'": dict(shot_noise="1e-3"),
    "read_noise<0": dict(read_noise=-1e-5), "read_noise=nan": dict(read_noise=float("nan")),
    "exposure=0": dict(exposure=0.0), "exposure<0": dict(exposure=-0.1), "exposure=nan": dict(exposure=float("nan")),
    "exposure='a'": dict(exposure="a"), "exposure=inf": dict(exposure=float("inf")),
    "illuminant 2 gains": dict(illuminant=(1.0, 1.0)), "illuminant negative": dict(illuminant=(1.0, -1.0, 1.0)),
    "illuminant nan": dict(illuminant=(1.0, float("nan"), 1.0)), "illuminant zero": dict(illuminant=(0.0, 1.0, 1.0)),
    "illuminant 'red'": dict(illuminant="red"), "noise=None": dict(noise=None), "poisson='yes'": dict(poisson="yes"),
}


@pytest.mark.parametrize("case", SIMULATE_BAD)
def test_simulate_low_light_rejects_hostile_arguments(case):
    clean = _img(1, size=16)[0]
    with pytest.raises((ValueError, TypeError)) as err:
        simulate_low_light(clean, **SIMULATE_BAD[case])
    name = case.split("=")[0].split(" ")[0].split("<")[0]
    assert name in str(err.value) or "gains" in str(err.value), str(err.value)


def test_zero_noise_levels_mean_no_noise():
    clean = _img(1, size=16)[0]
    low = simulate_low_light(clean, shot_noise=0.0, read_noise=0.0, exposure=0.5, out_bits=None,
                             illuminant=(1.0, 1.0, 1.0))
    again = simulate_low_light(clean, shot_noise=0.0, read_noise=0.0, exposure=0.5, out_bits=None,
                               illuminant=(1.0, 1.0, 1.0), noise=False)
    assert torch.equal(low, again)                              # was "math domain error"
    assert torch.isfinite(simulate_low_light(clean, shot_noise=0.0)).all()
    assert read_noise_from_shot(0.0) == 0.0
    with pytest.raises(ValueError, match="shot-noise"):
        read_noise_from_shot(-1.0)


@pytest.mark.parametrize("bits", [0, -3, 17, 1.5])
def test_quantize_rejects_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize(torch.rand(4), bits)


def test_simulate_values_unchanged_for_valid_arguments():
    x = load_image("coffee", size=32)
    a = simulate_low_light(x, "indoor_tungsten", seed=3)
    b = simulate_low_light(x, "indoor_tungsten", seed=3, illuminant=None, out_bits=8)
    assert torch.equal(a, b) and bool((a * 255 - (a * 255).round()).abs().max() < 1e-4)


BAND_TARGETS = {
    "luma just above 1": lambda t: (t * 0 + 1.0005),
    "luma just below 0": lambda t: (t * 0 - 5e-4),
    "mixed": lambda t: torch.cat([t[:1] * 0 + 1.0005, t[1:] * 0 - 5e-4]),
    "ordinary": lambda t: t,
}


@pytest.mark.parametrize("case", BAND_TARGETS)
@pytest.mark.parametrize("bands", [(0.0, 0.2, 0.6, 1.0), (0.0, 0.5, 1.0), (0.1, 0.4, 0.9)])
def test_band_fractions_sum_to_one(case, bands):
    t = BAND_TARGETS[case](_img())
    out = metrics.luminance_band_errors(_img(seed=2), t, bands=bands)
    fractions = [v for k, v in out.items() if k.endswith("_fraction")]
    assert math.isclose(sum(fractions), 1.0, abs_tol=1e-12), out


def test_band_edges_unchanged_inside_the_range():
    # dark < 0.2 <= mid < 0.6 <= bright <= 1, as documented
    t = torch.tensor([0.0, 0.1999, 0.2, 0.5999, 0.6, 1.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6).contiguous()
    out = metrics.luminance_band_errors(t, t)
    assert [out[f"{k}_fraction"] for k in ("dark", "mid", "bright")] == [2 / 6, 2 / 6, 2 / 6]


@pytest.mark.parametrize("bands", [(0.0, float("nan"), 1.0), (0.0, float("inf")), (0.5, 0.2)])
def test_band_edges_are_validated(bands):
    with pytest.raises(ValueError, match="bands"):
        metrics.luminance_band_errors(_img(), _img(), bands=bands)


# --- gradients that do not lie ----------------------------------------------------------------
def _penalty_grad(loss_fn, impl_model_seed=0):
    torch.manual_seed(impl_model_seed)
    net = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    x = _img(1, size=16).double().requires_grad_(True)
    target = _img(1, size=16, seed=5).double()
    loss = loss_fn(net(x), target)
    g, = torch.autograd.grad(loss, x, create_graph=True)
    penalty = g.pow(2).sum()
    grads = torch.autograd.grad(penalty, list(net.parameters()), allow_unused=True)
    return penalty, grads


GRAD_PENALTY_LOSSES = {
    "1 - ssim": (lambda p, t: 1 - L.ssim(p, t), lambda p, t: 1 - L.ssim(p, t, _impl="autograd")),
    "SSIMLoss(none).sum()": (lambda p, t: L.SSIMLoss(reduction="none")(p, t).sum(),
                             lambda p, t: (1 - L.ssim(p, t, reduction="none", _impl="autograd")).sum()),
    "HistogramLoss(emd)": (lambda p, t: L.HistogramLoss(distance="emd")(p, t), None),
}


@pytest.mark.parametrize("name", GRAD_PENALTY_LOSSES)
def test_gradient_penalty_through_the_loss_is_not_silently_zero(name):
    fast, reference = GRAD_PENALTY_LOSSES[name]
    penalty, grads = _penalty_grad(fast)
    assert penalty.requires_grad and all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    if reference is not None:
        ref_penalty, ref_grads = _penalty_grad(reference)
        assert torch.allclose(penalty, ref_penalty, rtol=1e-10, atol=1e-14)
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none", "map"])
def test_ssim_gradgradcheck(reduction):
    x = _img(1, c=2, size=13).double().requires_grad_(True)
    y = _img(1, c=2, size=13, seed=1).double().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a, b: L.ssim(a, b, reduction=reduction), (x, y))
    assert torch.autograd.gradgradcheck(lambda a: L.ssim(a, y.detach(), reduction=reduction), (x,))


@pytest.mark.parametrize("bandwidth", [None, 0.03, 0.4])
@pytest.mark.parametrize("mode", ["channels", "luminance"])
def test_soft_histogram_gradgradcheck(bandwidth, mode):
    x = (_img(1, size=5) * 0.9 + 0.05).double().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a: L.soft_histogram(a, 8, bandwidth=bandwidth, mode=mode), (x,))


def test_first_order_ssim_gradient_still_uses_the_fast_path():
    x = _img(1, size=24).requires_grad_(True)
    y = _img(1, size=24, seed=1)
    L.ssim(x, y).backward()
    fast = x.grad.clone()
    x.grad = None
    L.ssim(x, y, _impl="autograd").backward()
    torch.testing.assert_close(fast, x.grad, rtol=1e-4, atol=1e-7)


def _count_kernel_work(monkeypatch):
    import lowlight_course.losses.histogram as H

    seen = {"elements": 0}
    real = H._edge_cdf

    def counting(z, edge, bins):
        seen["elements"] += z.numel()
        return real(z, edge, bins)

    monkeypatch.setattr(H, "_edge_cdf", counting)
    return seen


@pytest.mark.parametrize("bins,bandwidth", [(4096, 1.0), (512, 10.0), (64, 1.0)])
def test_soft_histogram_work_is_bounded_by_the_bins(monkeypatch, bins, bandwidth):
    seen = _count_kernel_work(monkeypatch)
    x = _img(1, c=1, size=16)
    h = L.soft_histogram(x, bins, bandwidth=bandwidth)
    pixels = x.numel()
    # a window wider than the range visits each bin once per pixel (plus one repeated edge per
    # block of bins), not 8 bandwidths' worth of bins
    assert seen["elements"] <= pixels * (bins + 1) * 1.05
    assert math.ceil(8 * bandwidth * bins) > 4 * bins          # the old window was far wider
    # and the histogram is right: the dense integral over every bin, no truncation at this width
    t = x.flatten().double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf((edges[None] - t[:, None]) / (bandwidth * math.sqrt(2))))
    cdf[:, 0], cdf[:, -1] = 0.0, 1.0
    dense = (cdf[:, 1:] - cdf[:, :-1]).sum(0)
    torch.testing.assert_close(h[0, 0].double(), dense / dense.sum(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("bins,bandwidth", [(16, None), (16, 0.02), (32, 0.1), (64, 0.2), (256, 0.05), (8, 0.5)])
def test_blocked_and_loop_paths_agree(monkeypatch, bins, bandwidth):
    """The one-offset-at-a-time loop (the course's settings, unchanged) against the blocked
    offset path and the absolute-bin path used for wide windows."""
    import lowlight_course.losses.histogram as H

    def run():
        x = _img(2, size=16).requires_grad_(True)
        h = L.soft_histogram(x, bins, bandwidth=bandwidth)
        (h * torch.linspace(-1, 1, bins)).sum().backward()
        return h.detach(), x.grad

    monkeypatch.setattr(H, "_LOOP_EDGES", 10 ** 9)    # force the loop
    h_loop, g_loop = run()
    monkeypatch.setattr(H, "_LOOP_EDGES", 0)          # force the blocked / absolute path
    h_block, g_block = run()
    torch.testing.assert_close(h_block, h_loop, rtol=0, atol=1e-6)
    torch.testing.assert_close(g_block, g_loop, rtol=0, atol=1e-6)


def test_docstring_no_longer_claims_time_independent_of_bins():
    doc = L.soft_histogram.__doc__
    assert "independent of ``bins`` at the default bandwidth" in doc and "4096" in doc
