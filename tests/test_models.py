import pytest
import torch

from lowlight_course.models import CurveNet, UNet, count_parameters, seed_everything


@pytest.mark.parametrize("output", UNet.OUTPUTS)
@pytest.mark.parametrize("size", [(32, 32), (30, 45)])
def test_unet_shape_and_range(output, size):
    seed_everything(0)
    net = UNet(base=8, depth=2, output=output)
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_unet_residual_starts_as_identity_and_passes_gradients():
    net = UNet(base=8)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(net(x), x)
    x = torch.full((1, 3, 16, 16), 0.99)
    net.head.bias.data.fill_(0.5)  # push every pixel above 1: the straight-through clamp keeps a gradient
    y = net(x)
    assert float(y.detach().max()) == 1.0
    y.sum().backward()
    assert float(net.head.bias.grad.abs().sum()) > 0


def test_unet_hard_clamp_has_dead_gradient_outside_range():
    net = UNet(base=8, output="clamp")
    net.head.bias.data.fill_(5.0)
    net(torch.rand(1, 3, 16, 16)).sum().backward()
    assert float(net.head.bias.grad.abs().sum()) == 0.0


def test_parameter_counts_match_docstrings():
    assert count_parameters(UNet()) == 117_075
    assert count_parameters(UNet(base=32)) == 466_595
    assert count_parameters(CurveNet()) == 79_416


def test_curvenet_shapes_range_and_curves():
    net = CurveNet(channels=8, iterations=4)
    x = torch.rand(2, 3, 20, 24)
    with torch.no_grad():
        y, a = net(x, return_curves=True)
    assert y.shape == x.shape and a.shape == (2, 12, 20, 24)
    assert float(a.abs().max()) <= 1.0
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert net.last_curves is a
    assert torch.allclose(net(x), CurveNet.apply_curves(x, a))


def test_curve_formula():
    x = torch.full((1, 3, 2, 2), 0.25)
    a = torch.ones(1, 3, 2, 2)
    assert torch.allclose(CurveNet.apply_curves(x, a), torch.full_like(x, 0.25 + 0.25 * 0.75))


def test_seeded_init_is_deterministic():
    seed_everything(3)
    a = UNet(base=4)
    seed_everything(3)
    b = UNet(base=4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    seed_everything(4)
    c = UNet(base=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("net", [UNet(base=4), CurveNet(channels=4, iterations=2)], ids=["unet", "curvenet"])
def test_bad_input(net):
    with pytest.raises(ValueError, match="unsqueeze"):
        net(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="channels"):
        net(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="permute"):
        net(torch.rand(1, 16, 16, 3))
    with pytest.raises(TypeError, match="255"):
        net(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(TypeError):
        net([[0.0]])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="output"):
        UNet(output="relu")
    with pytest.raises(ValueError):
        UNet(base=0)
    with pytest.raises(ValueError):
        CurveNet(iterations=0)
    with pytest.raises(TypeError):
        seed_everything("zero")
