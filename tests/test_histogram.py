"""Soft histogram and histogram loss: normalisation, limit, gradient, memory, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from lowlight_course._validation import ImageInputError
from lowlight_course.losses.histogram import HistogramLoss, hard_histogram, soft_histogram


@pytest.fixture(scope="module")
def photo():
    img = np.ascontiguousarray(skdata.coffee()[100:164, 200:296])
    return torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255      # (1, 3, 64, 96)


@pytest.fixture(scope="module")
def batch(photo):
    g = torch.Generator().manual_seed(0)
    dark = (photo * 0.2 + 0.02 * torch.randn(photo.shape, generator=g)).clamp(0, 1)
    dark = (dark * 255).round() / 255                                         # 8-bit, like a photo
    return torch.cat([photo, dark])                                           # (2, 3, 64, 96)


def _naive(x, bins, bandwidth):
    """Integrated Gaussian at every pixel x every bin (only for tiny inputs)."""
    v = x.clamp(0, 1).flatten(2).unsqueeze(-1)
    edges = torch.linspace(0, 1, bins + 1, dtype=x.dtype)
    cdf = 0.5 * (1 + torch.erf((edges - v) / (bandwidth * math.sqrt(2))))
    cdf[..., 0] = 0.0
    cdf[..., -1] = 1.0
    h = (cdf[..., 1:] - cdf[..., :-1]).sum(2)
    return h / h.sum(-1, keepdim=True)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bins", [1, 2, 16, 256])
@pytest.mark.parametrize("mode", ["channels", "luminance"])
def test_shape_and_normalisation(batch, bins, mode):
    h = soft_histogram(batch, bins, mode=mode)
    assert h.shape == (2, 3 if mode == "channels" else 1, bins)
    assert torch.allclose(h.sum(-1), torch.ones(()), atol=1e-6)
    assert (h >= 0).all()


@pytest.mark.parametrize("bins", [16, 256])
def test_tends_to_torch_histc_as_bandwidth_shrinks(batch, bins):
    hard = hard_histogram(batch, bins)
    # Cross-check the helper against torch.histc directly.
    ref = torch.histc(batch[1, 2], bins=bins, min=0, max=1)
    assert torch.allclose(hard[1, 2], ref / ref.sum())
    # 8-bit values k/255 never sit on a bin edge j/bins (gcd(255, bins) = 1) except 0 and 1,
    # (they are at least 1 / (255 * bins) away), so a bandwidth far below that reproduces histc.
    tiny = soft_histogram(batch, bins, bandwidth=1e-7)
    assert float((tiny - hard).abs().max()) < 1e-6
    errs = [float((soft_histogram(batch, bins, bandwidth=bw) - hard).abs().sum(-1).max())
            for bw in (0.5 / bins, 0.1 / bins, 0.01 / bins)]
    assert errs[0] > errs[1] > errs[2]


def test_default_bandwidth_is_half_a_bin(batch):
    assert torch.equal(soft_histogram(batch, 16), soft_histogram(batch, 16, bandwidth=1 / 32))
    h = soft_histogram(batch, 16, value_range=(0.0, 2.0))
    assert torch.equal(h, soft_histogram(batch, 16, value_range=(0.0, 2.0), bandwidth=1 / 16))


def test_equals_dense_integrated_gaussian(batch):
    x = batch[:, :, :16, :16].double()
    for bins, bw in [(16, None), (8, 0.2), (32, 0.003)]:
        s = bw if bw is not None else 0.5 / bins
        dense = _naive(x, bins, s)
        # Kernel mass beyond 4 bandwidths (< 6.4e-5 per pixel) is dropped by the sparse version.
        assert float((soft_histogram(x, bins, bandwidth=bw) - dense).abs().max()) < 1e-4


def test_values_outside_the_range_are_clamped():
    x = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.5]).view(1, 1, 1, 5)
    h = soft_histogram(x, 4, bandwidth=1e-6)
    assert torch.allclose(h, torch.tensor([[[0.4, 0.2, 0.0, 0.4]]]), atol=1e-6)
    assert torch.allclose(h, hard_histogram(x, 4), atol=1e-6)


def test_luminance_uses_rec709(batch):
    y = (batch * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(soft_histogram(batch, 16, mode="luminance"), soft_histogram(y, 16), atol=1e-6)


def test_float64_stays_float64(batch):
    assert soft_histogram(batch.double(), 8).dtype == torch.float64
    assert soft_histogram(batch.half(), 8).dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bins, bandwidth", [(8, None), (8, 0.01), (5, 0.3), (1, None)])
def test_gradcheck(bins, bandwidth):
    g = torch.Generator().manual_seed(bins)
    x = torch.rand(2, 2, 4, 5, dtype=torch.float64, generator=g).requires_grad_()
    w = torch.randn(2, 2, bins, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: (soft_histogram(a, bins, bandwidth=bandwidth) * w).sum(), (x,))


def test_gradcheck_luminance():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, generator=g).requires_grad_()
    w = torch.randn(1, 1, 8, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: (soft_histogram(a, 8, mode="luminance") * w).sum(), (x,))


def test_gradient_is_nonzero_where_hard_histogram_has_none(batch):
    x = batch.clone().requires_grad_()
    loss = HistogramLoss(16)(x, batch.flip(0))
    loss.backward()
    assert float(x.grad.abs().sum()) > 0
    assert (x.grad != 0).float().mean() > 0.5            # most pixels get a gradient
    with pytest.raises(RuntimeError):                     # while the hard histogram has no backward
        torch.histc(x, bins=16, min=0, max=1).sum().backward()


def test_emd_grows_with_the_shift_while_l1_saturates(photo):
    l1, emd = HistogramLoss(16), HistogramLoss(16, distance="emd")
    base = photo * 0.5
    l1_vals = [float(l1(base + d, base)) for d in (0.1, 0.3, 0.45)]
    emd_vals = [float(emd(base + d, base)) for d in (0.1, 0.3, 0.45)]
    assert l1_vals[1] > 1.8 and l1_vals[2] - l1_vals[1] < 0.1   # L1 saturates near its max, 2
    assert emd_vals[0] < emd_vals[1] < emd_vals[2]
    assert emd_vals[2] - emd_vals[1] > 0.1
    for d, e in zip((0.1, 0.3, 0.45), emd_vals):          # EMD ~ the brightness shift
        assert abs(e - d) < 0.03


def test_optimising_the_histogram_loss_moves_the_histogram(photo):
    target = photo
    pred = (photo * 0.3).clone().requires_grad_()
    loss_fn = HistogramLoss(16, distance="emd")
    opt = torch.optim.Adam([pred], lr=0.02)
    start = loss_fn(pred, target).item()
    for _ in range(15):
        opt.zero_grad()
        loss_fn(pred, target).backward()
        opt.step()
    assert loss_fn(pred, target).item() < 0.5 * start


def test_spatial_shuffle_is_invisible(photo):
    perm = torch.randperm(photo[0, 0].numel(), generator=torch.Generator().manual_seed(0))
    shuffled = photo.flatten(2)[..., perm].view_as(photo)
    assert float(HistogramLoss(16)(shuffled, photo)) < 1e-6


def test_reduction_none(batch):
    out = HistogramLoss(16, reduction="none")(batch, batch.flip(0))
    assert out.shape == (2,)
    assert torch.allclose(out.mean(), HistogramLoss(16)(batch, batch.flip(0)))


# ---------------------------------------------------------------------------------------------
# Memory: linear in pixels, independent of bins
# ---------------------------------------------------------------------------------------------
class _LargestTensor(TorchDispatchMode):
    """Records the number of elements of the largest tensor any ATen op returns."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize("bins", [16, 256, 4096])
def test_no_pixels_times_bins_tensor(bins):
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    pixels = x.numel()
    w = torch.randn(2, 3, bins)
    with _LargestTensor() as mode:
        (soft_histogram(x, bins) * w).sum().backward()
    assert x.grad is not None
    # The largest intermediate is one value per pixel (or one per histogram bin), never
    # pixels x bins (here 24576 x bins) nor pixels x neighbours.
    assert mode.numel <= max(pixels, 2 * 3 * bins), mode.numel


def test_large_batch_many_bins_runs():
    x = torch.rand(8, 3, 512, 512, requires_grad=True)    # a dense version would need 6.4 GB per tensor
    h = soft_histogram(x, 256)
    (h * torch.randn(8, 3, 256)).sum().backward()
    assert torch.allclose(h.sum(-1), torch.ones(()), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def _ok(*shape):
    return torch.rand(*(shape or (1, 3, 16, 16)))


@pytest.mark.parametrize("x, match", [
    (_ok(3, 16, 16), "unsqueeze"),
    (torch.full((1, 3, 4, 4), float("nan")), "NaN"),
    (_ok() * 255, "255"),
    ((_ok() * 255).to(torch.uint8), "divide by 255"),
])
def test_soft_histogram_rejects_bad_images(x, match):
    with pytest.raises((ImageInputError, TypeError), match=match):
        soft_histogram(x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bins=0), "bins"),
    (dict(bins=16.0), "bins"),
    (dict(bandwidth=0.0), "bandwidth"),
    (dict(bandwidth=-0.1), "bandwidth"),
    (dict(bandwidth=float("nan")), "bandwidth"),
    (dict(value_range=(1.0, 0.0)), "value_range"),
    (dict(value_range=1.0), "value_range"),
    (dict(mode="hsv"), "mode"),
])
def test_soft_histogram_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ImageInputError, match=match):
        soft_histogram(_ok(), **kwargs)


def test_luminance_needs_three_channels():
    with pytest.raises(ImageInputError, match="3 channels"):
        soft_histogram(_ok(1, 1, 8, 8), mode="luminance")


@pytest.mark.parametrize("pred, target, match", [
    (_ok(1, 3, 16, 16), _ok(1, 3, 16, 15), "same shape"),
    (_ok(3, 16, 16), _ok(3, 16, 16), "dimensions"),
    (_ok(), torch.full((1, 3, 16, 16), float("inf")), "NaN or Inf"),
    (_ok() * 255, _ok(), "255"),
    (_ok(), _ok().to("meta"), "device"),
])
def test_histogram_loss_rejects_bad_pairs(pred, target, match):
    with pytest.raises(ImageInputError, match=match):
        HistogramLoss()(pred, target)


def test_histogram_loss_rejects_integer_images():
    x = (_ok() * 255).to(torch.uint8)
    with pytest.raises(TypeError, match="float"):
        HistogramLoss()(x, x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(distance="kl"), "distance"),
    (dict(reduction="sum"), "reduction"),
    (dict(bins=-1), "bins"),
    (dict(bandwidth=0), "bandwidth"),
    (dict(mode="rgb"), "mode"),
])
def test_histogram_loss_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ImageInputError, match=match):
        HistogramLoss(**kwargs)
