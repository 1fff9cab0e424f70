import pytest
import torch

from lowlight_course.losses import CharbonnierLoss, L1Loss, MSELoss, charbonnier, l1, mse


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)


def test_values_match_torch(pair):
    p, t = pair
    assert torch.allclose(mse(p, t), torch.nn.functional.mse_loss(p, t))
    assert torch.allclose(l1(p, t), torch.nn.functional.l1_loss(p, t))
    assert torch.allclose(charbonnier(p, t, eps=1e-3), torch.sqrt((p - t) ** 2 + 1e-6).mean())
    assert float(charbonnier(p, p)) == pytest.approx(1e-3)


def test_reductions(pair):
    p, t = pair
    per = mse(p, t, reduction="none")
    assert per.shape == (2,)
    assert torch.allclose(per.mean(), mse(p, t))
    assert torch.allclose(l1(p, t, reduction="sum"), (p - t).abs().sum())
    assert charbonnier(p, t, reduction="none").shape == (2,)


def test_modules_and_gradients(pair):
    p, t = pair
    p = p.clone().requires_grad_()
    for mod, fn in ((MSELoss(), mse), (L1Loss(), l1), (CharbonnierLoss(), charbonnier)):
        loss = mod(p, t)
        assert torch.allclose(loss, fn(p, t))
        (g,) = torch.autograd.grad(loss, p)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert "eps=0.001" in repr(CharbonnierLoss())


def test_charbonnier_finite_gradient_at_zero_error():
    p = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    charbonnier(p, p.detach()).backward()
    assert torch.all(p.grad == 0)


def test_data_range(pair):
    p, t = pair
    assert torch.allclose(mse(p * 255, t * 255, data_range=255), mse(p, t) * 255 ** 2, rtol=1e-4)


@pytest.mark.parametrize("fn", [mse, l1, charbonnier])
def test_bad_input(fn, pair):
    p, t = pair
    with pytest.raises(ValueError, match="same shape"):
        fn(p, t[..., :8])
    with pytest.raises(ValueError, match="dimensions"):
        fn(p[0], t[0])
    with pytest.raises(TypeError, match="dtype"):
        fn((p * 255).to(torch.uint8), t)
    with pytest.raises(ValueError, match="NaN"):
        fn(p.masked_fill(p > 0.9, float("nan")), t)
    with pytest.raises(ValueError, match="255"):
        fn(p * 255, t)
    with pytest.raises(ValueError, match="reduction"):
        fn(p, t, reduction="avg")


def test_bad_eps(pair):
    with pytest.raises(ValueError, match="eps"):
        charbonnier(*pair, eps=0)
    with pytest.raises(ValueError, match="eps"):
        CharbonnierLoss(eps=-1)
