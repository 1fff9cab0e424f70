"""Tests for lowlight_course.hdr: dark weighting, total variation, lamp masks, clipping."""
import math

import pytest
import torch

from lowlight_course import hdr
from lowlight_course._validation import ImageInputError


def test_dark_weights_ratio_and_mean():
    t = torch.cat([torch.zeros(2, 3, 4, 2), torch.ones(2, 3, 4, 2)], dim=-1)
    for strength in (0.0, 1.0, 2.0):
        w = hdr.dark_weights(t, strength, eps=0.05)
        assert w.shape == (2, 1, 4, 4)
        assert torch.allclose(w.mean(dim=(2, 3)), torch.ones(2, 1))
        assert math.isclose(float(w[0, 0, 0, 0] / w[0, 0, 0, -1]), 21.0 ** strength, rel_tol=1e-4)


def test_dark_weighted_l1_reduces_to_l1_and_emphasises_dark():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 3, 8, 8, generator=g)
    p = (t + 0.1 * torch.randn(2, 3, 8, 8, generator=g)).clamp(0, 1)
    assert torch.isclose(hdr.dark_weighted_l1(p, t, strength=0.0), (p - t).abs().mean(), atol=1e-6)
    # an error only in the darkest pixels costs more with a higher strength
    dark = (t.mean(1, keepdim=True) < 0.3).expand_as(t)
    p2 = torch.where(dark, t + 0.1, t)
    assert hdr.dark_weighted_l1(p2, t, 2.0) > hdr.dark_weighted_l1(p2, t, 0.0)
    assert hdr.dark_weighted_l1(p, t, reduction="none").shape == (2,)
    loss = hdr.DarkWeightedL1Loss(1.0)
    p.requires_grad_(True)
    loss(p, t).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert "strength=1" in repr(loss)


def test_total_variation_values():
    x = torch.zeros(1, 1, 4, 4)
    x[..., 2:] = 1.0
    assert math.isclose(float(hdr.total_variation(x)), 4 / 12, rel_tol=1e-6)
    assert float(hdr.total_variation(torch.full((1, 3, 8, 8), 0.3))) == 0.0
    g = torch.Generator().manual_seed(0)
    noise = 0.5 + 0.05 * torch.randn(1, 1, 256, 256, generator=g)
    assert math.isclose(float(hdr.total_variation(noise)), 2 * 2 * 0.05 / math.sqrt(math.pi), rel_tol=0.03)
    assert hdr.TVLoss(reduction="none")(torch.rand(3, 3, 5, 5)).shape == (3,)


def test_light_masks_and_clipped_fraction():
    t = torch.zeros(1, 3, 9, 9)
    t[..., 4, 4] = 1.0
    core, ring = hdr.light_masks(t, ring=1)
    assert int(core.sum()) == 1 and int(ring.sum()) == 8 and not (core & ring).any()
    img = torch.zeros(1, 3, 9, 9)
    img[..., 3, 3] = 1.0            # one of the 8 ring pixels blown out
    assert hdr.clipped_fraction(img, ring) == pytest.approx(1 / 8)
    assert hdr.clipped_fraction(img) == pytest.approx(1 / 81)
    assert math.isnan(hdr.clipped_fraction(img, torch.zeros(1, 1, 9, 9, dtype=torch.bool)))


@pytest.mark.parametrize("call", [
    lambda: hdr.dark_weights(torch.rand(1, 3, 4, 4), strength=-1),
    lambda: hdr.dark_weights(torch.rand(1, 3, 4, 4), eps=0),
    lambda: hdr.dark_weighted_l1(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 5)),
    lambda: hdr.dark_weighted_l1(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), reduction="sum"),
    lambda: hdr.dark_weighted_l1(torch.rand(1, 3, 4, 4) * 255, torch.rand(1, 3, 4, 4)),
    lambda: hdr.total_variation(torch.rand(1, 3, 1, 4)),
    lambda: hdr.total_variation(torch.full((1, 3, 4, 4), float("nan"))),
    lambda: hdr.light_masks(torch.rand(1, 3, 4, 4), ring=0),
    lambda: hdr.light_masks(torch.rand(1, 3, 4, 4), core_threshold=1.5),
    lambda: hdr.clipped_fraction(torch.rand(1, 3, 4, 4), torch.ones(1, 1, 3, 3, dtype=torch.bool)),
    lambda: hdr.clipped_fraction(torch.rand(3, 4, 4)),
])
def test_bad_input(call):
    with pytest.raises((ImageInputError, ValueError, TypeError)):
        call()
