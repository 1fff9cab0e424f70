"""SSIM: agreement with two independent references, the analytic backward, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_msssim import ssim as msssim
from skimage import data as skdata
from skimage.metrics import structural_similarity

from lowlight_course._validation import ImageInputError
from lowlight_course.losses.ssim import SSIMLoss, gaussian_window, ssim


# ---------------------------------------------------------------------------------------------
# Real photographs, and a dark noisy version of each (made here, independent of lowlight_course.data)
# ---------------------------------------------------------------------------------------------
def _crop(img, h=96, w=128, top=0, left=0):
    return img[top:top + h, left:left + w]


@pytest.fixture(scope="module")
def photos():
    imgs = [_crop(skdata.astronaut(), top=40, left=180), _crop(skdata.coffee(), top=100, left=200),
            _crop(skdata.chelsea(), top=80, left=150)]
    return [torch.from_numpy(np.ascontiguousarray(i)).permute(2, 0, 1).float() / 255 for i in imgs]


def _darken(img: torch.Tensor, seed: int) -> torch.Tensor:
    """Exposure scale, signal-dependent plus constant noise, 8-bit quantisation."""
    g = torch.Generator().manual_seed(seed)
    dark = img * 0.15
    noise = torch.randn(img.shape, generator=g) * (0.01 + 0.05 * dark.sqrt())
    return ((dark + noise).clamp(0, 1) * 255).round() / 255


@pytest.fixture(scope="module")
def pairs(photos):
    """(clean, dark-noisy) pairs and (clean, slightly blurred-noisy) pairs: low and high SSIM."""
    out = []
    for k, img in enumerate(photos):
        out.append((img, _darken(img, k)))
        g = torch.Generator().manual_seed(10 + k)
        out.append((img, (img + 0.03 * torch.randn(img.shape, generator=g)).clamp(0, 1)))
    return out


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor, full=False):
    return structural_similarity(a.permute(1, 2, 0).double().numpy(), b.permute(1, 2, 0).double().numpy(),
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, channel_axis=-1, full=full)


# ---------------------------------------------------------------------------------------------
# Window
# ---------------------------------------------------------------------------------------------
def test_gaussian_window_is_normalised_symmetric_and_peaked():
    w = gaussian_window(11, 1.5)
    assert w.shape == (11,) and w.dtype == torch.float32
    assert abs(float(w.sum()) - 1) < 1e-6
    assert torch.equal(w, w.flip(0))
    assert int(w.argmax()) == 5
    expected = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    np.testing.assert_allclose(w.numpy(), expected / expected.sum(), rtol=1e-6)
    assert gaussian_window(7, 1.0, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("size", [0, -3, 4, 10, 11.0, "11", True])
def test_gaussian_window_rejects_bad_size(size):
    with pytest.raises(ImageInputError, match="odd"):
        gaussian_window(size, 1.5)


@pytest.mark.parametrize("sigma", [0, -1.5, float("nan"), float("inf"), "1.5"])
def test_gaussian_window_rejects_bad_sigma(sigma):
    with pytest.raises(ImageInputError, match="sigma"):
        gaussian_window(11, sigma)


# ---------------------------------------------------------------------------------------------
# Agreement with pytorch-msssim and scikit-image
# ---------------------------------------------------------------------------------------------
def test_identical_images_score_one(photos):
    x = photos[0][None]
    assert abs(float(ssim(x, x)) - 1) < 1e-6


def test_matches_pytorch_msssim_single_images(pairs):
    for a, b in pairs:
        ours = float(ssim(a[None], b[None]))
        ref = float(msssim(a[None], b[None], data_range=1.0, win_size=11, win_sigma=1.5, size_average=True))
        assert abs(ours - ref) < 1e-5, (ours, ref)


def test_matches_pytorch_msssim_batches_all_reductions(pairs):
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    ref_mean = msssim(a, b, data_range=1.0, win_size=11, win_sigma=1.5, size_average=True)
    ref_none = msssim(a, b, data_range=1.0, win_size=11, win_sigma=1.5, size_average=False)
    assert abs(float(ssim(a, b)) - float(ref_mean)) < 1e-5
    per_image = ssim(a, b, reduction="none")
    assert per_image.shape == (len(pairs),)
    assert float((per_image - ref_none).abs().max()) < 1e-5
    smap = ssim(a, b, reduction="map")
    assert smap.shape == (len(pairs), 3, 96 - 10, 128 - 10)
    assert abs(float(smap.mean()) - float(ref_mean)) < 1e-5
    # The dark noisy pairs score low and the mildly noisy ones high: a real range is covered.
    assert float(per_image.min()) < 0.3 and float(per_image.max()) > 0.6


def test_matches_skimage(pairs):
    """scikit-image filters the whole image (reflect padding) and then crops (win_size - 1) / 2 = 5
    pixels per side before averaging: the pixels left are exactly those whose 11 x 11 window lies
    inside the image, i.e. our 'valid' map. So the means compare directly, and our map equals
    scikit-image's full map cropped by 5."""
    for a, b in pairs:
        ref, ref_map = _skimage_ssim(a, b, full=True)
        ours = float(ssim(a[None], b[None]))
        assert abs(ours - ref) < 2e-4, (ours, ref)
        ours_map = ssim(a[None], b[None], reduction="map")[0].permute(1, 2, 0).double().numpy()
        # Per pixel, float32 rounding in dark flat regions reaches ~1e-4 (float64 test below: 1e-10).
        np.testing.assert_allclose(ours_map, ref_map[5:-5, 5:-5], atol=5e-4)


def test_float64_matches_skimage_closely(pairs):
    for a, b in pairs[:2]:
        ours = ssim(a[None].double(), b[None].double())
        assert ours.dtype == torch.float64
        ref, ref_map = _skimage_ssim(a, b, full=True)
        assert abs(float(ours) - ref) < 1e-10
        ours_map = ssim(a[None].double(), b[None].double(), reduction="map")[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours_map, ref_map[5:-5, 5:-5], atol=1e-10)


def test_data_range_255_is_consistent(pairs):
    a, b = pairs[0]
    assert abs(float(ssim(a[None] * 255, b[None] * 255, data_range=255)) - float(ssim(a[None], b[None]))) < 1e-5


def test_window_and_sigma_arguments_are_used(pairs):
    a, b = pairs[0]
    ref = float(msssim(a[None], b[None], data_range=1.0, win_size=7, win_sigma=1.0))
    assert abs(float(ssim(a[None], b[None], window_size=7, sigma=1.0)) - ref) < 1e-5
    assert ssim(a[None], b[None], window_size=7, reduction="map").shape[-2:] == (90, 122)


# ---------------------------------------------------------------------------------------------
# Gradients: analytic backward
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "none", "map"])
def test_gradcheck_custom_backward(reduction):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 13, 12, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.rand(2, 1, 13, 12, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ssim(a, b, window_size=5, sigma=1.0, reduction=reduction),
                                    (x, y))
    assert torch.autograd.gradcheck(lambda a, b: ssim(a, b, reduction=reduction), (x, y))


@pytest.mark.parametrize("reduction", ["mean", "none", "map"])
def test_fast_path_equals_autograd_path(pairs, reduction):
    """Values and gradients of the analytic backward equal plain autograd's (float64: to rounding)."""
    a = torch.stack([p[0][:, :48, :64] for p in pairs[:3]]).double().requires_grad_()
    b = torch.stack([p[1][:, :48, :64] for p in pairs[:3]]).double().requires_grad_()
    out_fast = ssim(a, b, reduction=reduction)
    seed = torch.randn(out_fast.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ga, gb = torch.autograd.grad((out_fast * seed).sum(), (a, b))
    out_ref = ssim(a, b, reduction=reduction, _impl="autograd")
    ra, rb = torch.autograd.grad((out_ref * seed).sum(), (a, b))
    assert float((out_fast - out_ref).detach().abs().max()) < 1e-10
    assert float((ga - ra).abs().max()) < 1e-9 * float(ra.abs().max())
    assert float((gb - rb).abs().max()) < 1e-9 * float(rb.abs().max())


def test_fast_path_float32_is_accurate(pairs):
    """In float32 both paths round differently (E[x^2] - E[x]^2 cancels in dark, flat regions);
    the fast path stays within 5e-4 of the float64 map (measured: 2e-4), and the means within 1e-6."""
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    exact = ssim(a.double(), b.double(), reduction="map")
    fast = ssim(a, b, reduction="map")
    assert float((fast - exact).abs().max()) < 5e-4
    assert abs(float(fast.mean() - exact.mean())) < 1e-6


def test_gradients_flow_only_where_needed(pairs):
    a, b = pairs[0]
    pred = a[None].clone().requires_grad_()
    target = b[None].clone()
    loss = SSIMLoss()(pred, target)
    loss.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert torch.isfinite(pred.grad).all()
    assert target.grad is None
    # Target only.
    t2 = b[None].clone().requires_grad_()
    ssim(a[None], t2).backward()
    assert float(t2.grad.abs().sum()) > 0


def test_gradient_descent_increases_ssim(pairs):
    a, b = pairs[0]
    pred = b[None].clone().requires_grad_()
    opt = torch.optim.Adam([pred], lr=0.01)
    start = ssim(pred, a[None]).item()
    for _ in range(10):
        opt.zero_grad()
        SSIMLoss()(pred, a[None]).backward()
        opt.step()
    assert float(ssim(pred.detach().clamp(0, 1), a[None])) > start + 0.05


def test_half_inputs_computed_in_float32(pairs):
    a, b = pairs[0]
    out = ssim(a[None].half(), b[None].half())
    assert out.dtype == torch.float32
    assert abs(float(out) - float(ssim(a[None].half().float(), b[None].half().float()))) < 1e-6
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ssim(a[None], b[None], _impl="autograd")
    assert out.dtype == torch.float32
    assert abs(float(out) - float(ssim(a[None], b[None]))) < 1e-5  # not filtered in bfloat16


def test_ssim_loss_module(pairs):
    a, b = pairs[0]
    loss_fn = SSIMLoss(reduction="none")
    out = loss_fn(torch.stack([a, a]), torch.stack([b, a]))
    assert out.shape == (2,)
    assert abs(float(out[1])) < 1e-6 and float(out[0]) > 0
    assert "window_size=11" in repr(SSIMLoss())


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def _ok(*shape):
    return torch.rand(*(shape or (1, 3, 32, 32)))


@pytest.mark.parametrize("pred, target, match", [
    (_ok(1, 3, 32, 32), _ok(1, 3, 32, 31), "same shape"),
    (_ok(3, 32, 32), _ok(3, 32, 32), "unsqueeze"),
    (_ok(32, 32), _ok(32, 32), "dimensions"),
    (torch.full((1, 3, 32, 32), float("nan")), _ok(), "NaN"),
    (_ok(), torch.full((1, 3, 32, 32), float("inf")), "NaN or Inf"),
    (_ok() * 255, _ok(), "255"),
    (_ok(1, 3, 8, 32), _ok(1, 3, 8, 32), "larger than"),
    (_ok(), _ok().to("meta"), "device"),
])
def test_bad_input_is_rejected_with_a_fix(pred, target, match):
    with pytest.raises(ImageInputError, match=match):
        ssim(pred, target)
    with pytest.raises(ImageInputError, match=match):
        SSIMLoss()(pred, target)


def test_integer_images_are_rejected():
    x = (torch.rand(1, 3, 32, 32) * 255).to(torch.uint8)
    with pytest.raises(TypeError, match="divide by 255"):
        ssim(x, x)
    with pytest.raises(TypeError, match="torch.Tensor"):
        ssim(np.zeros((1, 3, 32, 32)), torch.rand(1, 3, 32, 32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_cuda_mismatch_is_rejected():
    with pytest.raises(ImageInputError, match="device"):
        ssim(_ok(), _ok().cuda())


@pytest.mark.parametrize("kwargs, match", [
    (dict(window_size=10), "odd"),
    (dict(window_size=0), "odd"),
    (dict(sigma=0.0), "sigma"),
    (dict(sigma=-1.0), "sigma"),
    (dict(data_range=0), "data_range"),
    (dict(data_range=-1.0), "data_range"),
    (dict(reduction="sum"), "reduction"),
    (dict(k1=-0.01), "k1"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ImageInputError, match=match):
        ssim(_ok(), _ok(), **kwargs)


def test_ssim_loss_rejects_bad_arguments_at_construction():
    with pytest.raises(ImageInputError, match="odd"):
        SSIMLoss(window_size=4)
    with pytest.raises(ImageInputError, match="sigma"):
        SSIMLoss(sigma=0)
    with pytest.raises(ImageInputError, match="reduction"):
        SSIMLoss(reduction="sum")


def test_errors_do_not_come_from_internals():
    """A learner's mistakes stop in the checks, before any tensor arithmetic."""
    with pytest.raises(ImageInputError) as info:
        ssim(_ok(1, 3, 5, 5), _ok(1, 3, 5, 5))
    assert info.traceback[-1].path.name == "_validation.py"


# ---------------------------------------------------------------------------------------------
# Two formulations of the filtering pass (shifted multiply-adds, conv2d): one value
# ---------------------------------------------------------------------------------------------
import importlib  # noqa: E402

ssim_module = importlib.import_module("lowlight_course.losses.ssim")
from lowlight_course.losses.ssim import FILTER_ENV, default_filter  # noqa: E402


@pytest.mark.parametrize("reduction", ["mean", "none", "map"])
def test_conv_and_shift_formulations_agree(pairs, reduction):
    """Values and gradients of filter='conv' equal filter='shift' to float32 rounding, and both
    equal pytorch-msssim to 1e-5."""
    a = torch.stack([p[0] for p in pairs]).requires_grad_()
    b = torch.stack([p[1] for p in pairs])
    out, grads = {}, {}
    for f in ("shift", "conv"):
        a.grad = None
        out[f] = ssim(a, b, reduction=reduction, filter=f)
        w = torch.randn(out[f].shape, generator=torch.Generator().manual_seed(2))
        (out[f] * w).sum().backward()
        grads[f] = a.grad.clone()
    assert float((out["shift"] - out["conv"]).detach().abs().max()) < 1e-5
    scale = float(grads["shift"].abs().max())
    assert float((grads["shift"] - grads["conv"]).abs().max()) < 1e-4 * scale
    if reduction != "map":
        ref = msssim(a.detach(), b, data_range=1.0, win_size=11, win_sigma=1.5,
                     size_average=reduction == "mean")
        for f in ("shift", "conv"):
            assert float((out[f].detach() - ref).abs().max()) < 1e-5, f


def test_conv_formulation_float64_is_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 17, 15, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.rand(2, 2, 17, 15, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ssim(a, b, window_size=5, filter="conv", reduction="map"), (x, y))
    ref = ssim(x, y, _impl="autograd")
    assert abs(float((ssim(x, y, filter="conv") - ref).detach())) < 1e-12


def test_conv_adjoint_is_the_transpose_of_conv_filter():
    """<F a, b> == <a, F^T b> for the conv formulation (the analytic backward relies on it)."""
    taps = gaussian_window(7, 1.2, dtype=torch.float64).tolist()
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 3, 20, 18, dtype=torch.float64, generator=g)
    b = torch.randn(2, 3, 14, 12, dtype=torch.float64, generator=g)
    fa = ssim_module._filter_valid_conv(a, taps)
    ftb = ssim_module._filter_adjoint_conv(b, taps)
    assert fa.shape == b.shape and ftb.shape == a.shape
    assert abs(float((fa * b).sum() - (a * ftb).sum())) < 1e-10
    assert torch.allclose(fa, ssim_module._filter_valid(a, taps), atol=1e-12)
    assert torch.allclose(ftb, ssim_module._filter_adjoint(b, taps), atol=1e-12)


def test_filter_choice_per_device_and_override(monkeypatch, pairs):
    monkeypatch.delenv(FILTER_ENV, raising=False)
    assert default_filter("cpu") == "shift"
    assert default_filter(torch.device("cuda")) == "conv" and default_filter("mps") == "conv"
    used = []
    for name in ("shift", "conv"):
        real = ssim_module._VALID[name]
        monkeypatch.setitem(ssim_module._VALID, name, lambda x, t, real=real, name=name: used.append(name) or real(x, t))
    a, b = pairs[0]
    ssim(a[None], b[None])
    assert used == ["shift"], "auto on the CPU uses the shifted multiply-adds"
    monkeypatch.setenv(FILTER_ENV, "conv")
    ssim(a[None], b[None])
    assert used[-1] == "conv", "$LOWLIGHT_SSIM_FILTER overrides auto"
    ssim(a[None], b[None], filter="shift")
    assert used[-1] == "shift", "an explicit filter= wins over the environment"
    SSIMLoss(filter="conv")(a[None], b[None])
    assert used[-1] == "conv"


def test_bad_filter_names(monkeypatch, pairs):
    a, b = pairs[0]
    with pytest.raises(ValueError, match="filter must be 'auto'"):
        ssim(a[None], b[None], filter="fft")
    with pytest.raises(ValueError, match="filter must be 'auto'"):
        SSIMLoss(filter=3)
    monkeypatch.setenv(FILTER_ENV, "cudnn")
    with pytest.raises(ValueError, match=f"{FILTER_ENV}='cudnn'.*unset it"):
        ssim(a[None], b[None])


def test_conv_weights_built_in_inference_mode_still_train(pairs):
    """The conv kernels are cached; one first built under inference_mode must not break training."""
    a, b = pairs[0]
    ssim_module._conv_weights.cache_clear()
    with torch.inference_mode():
        ssim(a[None], b[None], filter="conv")
    pred = a[None].clone().requires_grad_()
    ssim(pred, b[None], filter="conv").backward()
    assert float(pred.grad.abs().sum()) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the conv formulation on a GPU")
@pytest.mark.parametrize("f", ["shift", "conv"])
def test_cuda_formulations_equal_cpu(pairs, f):
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    pred = a.cuda().requires_grad_()
    out = ssim(pred, b.cuda(), filter=f)
    out.backward()
    cpu_pred = a.clone().requires_grad_()
    ref = ssim(cpu_pred, b)
    ref.backward()
    assert abs(float(out) - float(ref)) < 1e-5
    assert float((pred.grad.cpu() - cpu_pred.grad).abs().max()) < 1e-4 * float(cpu_pred.grad.abs().max())
    assert default_filter(pred.device) == "conv" or "LOWLIGHT_SSIM_FILTER" in __import__("os").environ
