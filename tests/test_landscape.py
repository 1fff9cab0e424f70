"""Tests for lowlight_course.landscape: filter-normalised directions and loss slices."""
import pytest
import torch
from torch import nn

from lowlight_course import landscape as LS
from lowlight_course.models import UNet


def _quadratic_setup():
    net = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    y = net(x).detach()
    return net, (x, y)


def test_direction_is_filter_normalised_and_seeded():
    net = UNet(base=4, depth=1, output="sigmoid")
    d1 = LS.filter_normalized_direction(net, seed=3)
    d2 = LS.filter_normalized_direction(net, seed=3)
    d3 = LS.filter_normalized_direction(net, seed=4)
    for p, a, b, c in zip(net.parameters(), d1, d2, d3):
        assert a.shape == p.shape and torch.equal(a, b)
        if p.dim() > 1:
            assert torch.allclose(a.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-4)
            assert not torch.equal(a, c)
        else:
            assert torch.count_nonzero(a) == 0
    full = LS.filter_normalized_direction(net, seed=3, ignore_1d=False)
    assert any(p.dim() == 1 and torch.count_nonzero(d) > 0 for p, d in zip(net.parameters(), full))


def test_slice_1d_is_a_parabola_and_restores_parameters():
    net, batch = _quadratic_setup()
    before = net.weight.detach().clone()
    f = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()
    alphas = [-1.0, -0.5, 0.0, 0.5, 1.0]
    s = LS.loss_slice_1d(net, f, batch, alphas, seed=0)
    assert torch.equal(net.weight, before)
    assert s.shape == (5,) and float(s[2]) < 1e-12        # the minimum sits at the trained weights
    assert torch.isclose(s[0], s[4], rtol=1e-5) and torch.isclose(s[4], 4 * s[3], rtol=1e-4)
    assert LS.flatness(alphas, [float(v) + 1.0 for v in s], radius=1.0) > 0
    assert LS.flatness(alphas, s.tolist()) == float("inf")


def test_slice_2d_shape_and_centre():
    net = UNet(base=4, depth=1)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    f = lambda m, b: ((m(b) - b) ** 2).mean()
    z = LS.loss_slice_2d(net, f, x, [-1, 0, 1], [-0.5, 0, 0.5, 1.0], seed=0)
    assert z.shape == (4, 3)
    assert torch.isclose(z[1, 1], f(net, x).double().detach(), atol=1e-7)
    assert net.training  # mode restored


def test_flatness():
    assert LS.flatness([-1, 0, 1], [2.0, 1.0, 4.0]) == pytest.approx(2.0)
    assert LS.flatness([-2, -1, 0, 1, 2], [9, 2, 1, 2, 9], radius=1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        LS.flatness([-1, 1], [1.0, 1.0])


@pytest.mark.parametrize("call", [
    lambda net: LS.filter_normalized_direction("not a model"),
    lambda net: LS.filter_normalized_direction(net, seed=1.5),
    lambda net: LS.loss_slice_1d(net, lambda m, b: 0.0, None, []),
    lambda net: LS.loss_slice_1d(net, lambda m, b: 0.0, None, [0.0], direction=[torch.zeros(1)]),
    lambda net: LS.loss_slice_1d(net, "not callable", None, [0.0]),
    lambda net: LS.loss_slice_2d(net, lambda m, b: 0.0, None, [0.0], ["a"]),
])
def test_bad_input(call):
    net = nn.Linear(2, 1)
    with pytest.raises((TypeError, ValueError)):
        call(net)
