"""Half-precision inputs and autocast give float32 statistics: SSIM and the soft histogram.

Peers' reported failures this guards against: SSIM(0, 0) = 1.32 under autocast (filtering in half
precision), and SSIM above 1 where the variance E[x^2] - E[x]^2 rounds negative. CPU autocast
(bfloat16) runs here; CUDA autocast (float16 and bfloat16) runs where CUDA is present.
"""
from __future__ import annotations

import pytest
import torch

from lowlight_course.losses import HistogramLoss, SSIMLoss, soft_histogram, ssim

HALF = [torch.float16, torch.bfloat16]
FILTERS = ["shift", "conv", "autograd"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _ssim(a, b, how, **kw):
    if how == "autograd":
        return ssim(a, b, _impl="autograd", **kw)
    return ssim(a, b, filter=how, **kw)


def _hostile(device):
    """Pairs where half precision or rounding push SSIM over 1: zeros, constants (bright ones lose
    most in E[x^2] - E[x]^2), identical and nearly identical textures, near-white noise."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    near_white = 0.98 + 0.02 * torch.rand(2, 3, 32, 32, generator=g)
    pairs = [(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))]
    pairs += [(torch.full((2, 3, 32, 32), v), torch.full((2, 3, 32, 32), v)) for v in (1e-3, 0.5, 0.999, 1.0)]
    pairs += [(x, x.clone()), (x, (x + 1e-4 * torch.randn(x.shape, generator=g)).clamp(0, 1)),
              (near_white, near_white.flip(-1)), (near_white, near_white)]
    return [(a.to(device), b.to(device)) for a, b in pairs]


def _autocast(device, dtype):
    return torch.autocast(device, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("how", FILTERS)
def test_ssim_of_zeros_is_one_under_autocast_and_half_inputs(device, how):
    z = torch.zeros(1, 3, 16, 16, device=device)
    assert float(_ssim(z, z, how)) == 1.0
    for dtype in HALF:
        if device == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            continue
        assert float(_ssim(z.to(dtype), z.to(dtype), how)) == 1.0
        with _autocast(device, dtype):
            out = _ssim(z, z, how)
        assert out.dtype == torch.float32 and float(out) == 1.0, (dtype, float(out))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("how", FILTERS)
def test_ssim_never_exceeds_one(device, how):
    """Every value (map, per image, mean) is <= 1, in float32, from half inputs and under autocast."""
    for a, b in _hostile(device):
        for dtype in [torch.float32] + HALF:
            for autocast in (None,) + tuple(HALF if device == "cuda" else [torch.bfloat16]):
                if autocast is not None:
                    ctx = _autocast(device, autocast)
                else:
                    ctx = torch.autocast(device, enabled=False)
                with ctx:
                    for reduction in ("map", "none", "mean"):
                        out = _ssim(a.to(dtype), b.to(dtype), how, reduction=reduction)
                        assert out.dtype == torch.float32
                        assert float(out.max()) <= 1.0, (dtype, autocast, reduction, float(out.max()) - 1)


def test_ssim_cap_keeps_the_gradient():
    """The cap at 1 changes the value only: the gradient near identity is the formula's."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 24, 24, generator=g)
    y = (x + 1e-4 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    p = y.clone().requires_grad_()
    ssim(p, x).backward()
    q = y.double().requires_grad_()
    ssim(q, x.double()).backward()
    assert float((p.grad - q.grad.float()).abs().max()) < 1e-3 * float(q.grad.abs().max()) + 1e-9


@pytest.mark.parametrize("device", DEVICES)
def test_ssim_half_inputs_equal_float32_of_the_same_values(device):
    """A float16 input is scored as the float32 of its values: no half-precision statistics."""
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 40, 40, generator=g).to(device)
    b = (a * 0.7 + 0.1).clamp(0, 1)
    for dtype in HALF:
        ah, bh = a.to(dtype), b.to(dtype)
        want = float(ssim(ah.float(), bh.float()))
        assert abs(float(ssim(ah, bh)) - want) < 1e-6
        ac = torch.bfloat16 if device == "cpu" else torch.float16
        with _autocast(device, ac):
            assert abs(float(ssim(ah, bh)) - want) < 1e-6
            assert abs(float(SSIMLoss()(ah, bh)) - (1 - want)) < 1e-6


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["channels", "luminance"])
def test_soft_histogram_is_float32_and_unchanged_by_autocast(device, mode):
    g = torch.Generator().manual_seed(3)
    edges = torch.linspace(0, 1, 17).repeat(3 * 8 * 8 // 17 + 1)[:3 * 64].view(1, 3, 8, 8)
    xs = [torch.rand(2, 3, 32, 32, generator=g), torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8), edges]
    for x in xs:
        x = x.to(device)
        for dtype in HALF:
            xh = x.to(dtype)
            want = soft_histogram(xh.float(), 16, mode=mode)
            got = soft_histogram(xh, 16, mode=mode)
            ac = torch.bfloat16 if device == "cpu" else torch.float16
            with _autocast(device, ac):
                under = soft_histogram(xh, 16, mode=mode)
                under32 = soft_histogram(x, 16, mode=mode)
            for h in (got, under, under32):
                assert h.dtype == torch.float32
                assert float(h.min()) >= 0.0, "no negative bin mass"
                assert float((h.sum(-1) - 1).abs().max()) < 1e-6
            assert torch.equal(got, want) and torch.equal(under, want)
            assert torch.equal(under32, soft_histogram(x, 16, mode=mode))


@pytest.mark.parametrize("device", DEVICES)
def test_histogram_loss_under_autocast(device):
    g = torch.Generator().manual_seed(4)
    a = torch.rand(2, 3, 32, 32, generator=g).to(device)
    b = (a * 0.5).to(device)
    for distance in ("l1", "emd"):
        loss = HistogramLoss(distance=distance)
        want = float(loss(a, b))
        ac = torch.bfloat16 if device == "cpu" else torch.float16
        with _autocast(device, ac):
            p = a.clone().requires_grad_()
            out = loss(p, b)
            out.backward()
        assert out.dtype == torch.float32 and abs(float(out.detach()) - want) < 1e-7
        assert float(loss(a.half(), a.half())) == 0.0
        assert torch.isfinite(p.grad).all() and float(p.grad.abs().sum()) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: float16 autocast on a GPU")
def test_cuda_training_step_under_float16_autocast_keeps_float32_losses():
    from torch import nn

    model = nn.Conv2d(3, 3, 3, padding=1).cuda()
    x = torch.rand(4, 3, 32, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        pred = torch.sigmoid(model(x))
        assert pred.dtype == torch.float16
        s = ssim(pred, x)
        h = HistogramLoss()(pred, x)
    assert s.dtype == torch.float32 and h.dtype == torch.float32
    assert float(s) <= 1.0
    (1 - s + h).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
