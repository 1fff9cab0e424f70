import math

import pytest
import torch

from lowlight_course.losses import (
    ZERO_DCE_WEIGHTS, ColorConstancyLoss, ExposureControlLoss, IlluminationSmoothnessLoss,
    SpatialConsistencyLoss, color_constancy_loss, exposure_control_loss, illumination_smoothness_loss,
    spatial_consistency_loss,
)


@pytest.fixture
def low():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=g) * 0.2


def test_weights_of_released_code():
    assert ZERO_DCE_WEIGHTS == {"spa": 1.0, "exp": 10.0, "col": 5.0, "tvA": 200.0}


def test_spatial_consistency(low):
    assert float(spatial_consistency_loss(low, low)) == 0.0
    # a global brightness offset keeps every neighbour difference: still 0
    assert float(spatial_consistency_loss(low + 0.3, low)) < 1e-10
    # scaling changes contrast: penalised; flattening the image too
    assert float(spatial_consistency_loss(low * 3, low)) > 0
    flat = low.mean(dim=(2, 3), keepdim=True).expand_as(low).contiguous()
    assert float(spatial_consistency_loss(flat, low)) > 0
    assert spatial_consistency_loss(low * 2, low, reduction="none").shape == (2,)


def test_spatial_consistency_matches_hand_computation():
    # 8x8 images -> 2x2 cells with region 4; enhanced cell values d = Y - I
    low = torch.zeros(1, 3, 8, 8)
    enh = torch.zeros(1, 3, 8, 8)
    enh[..., :4, :4] = 0.4   # one cell differs by 0.4
    # the cell has 2 neighbours; each pair counted from both sides: 4 * 0.16 / 4 cells
    assert float(spatial_consistency_loss(enh, low)) == pytest.approx(4 * 0.16 / 4)


def test_exposure_control():
    assert float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.6))) < 1e-12
    assert float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.1))) == pytest.approx(0.25)
    assert float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.1), level=0.1)) < 1e-12
    x = torch.full((1, 3, 32, 32), 0.2, requires_grad=True)
    exposure_control_loss(x).backward()
    assert torch.all(x.grad < 0)  # pushes a dark image brighter


def test_color_constancy():
    grey = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    loss = color_constancy_loss(grey)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(grey.grad).all()
    cast = torch.stack([torch.full((8, 8), v) for v in (0.6, 0.5, 0.5)])[None]
    assert float(color_constancy_loss(cast)) == pytest.approx(math.sqrt(2 * 0.01 ** 2), rel=1e-4)


def test_illumination_smoothness():
    assert float(illumination_smoothness_loss(torch.full((1, 24, 8, 8), 0.3))) == 0.0
    a = torch.zeros(1, 3, 4, 4)
    a[..., :, 2:] = 1.0      # one vertical step of height 1 in each of 3 maps
    # per map: mean dh^2 = 0, mean dw^2 = 4/12; times 2, summed over 3 maps
    assert float(illumination_smoothness_loss(a)) == pytest.approx(3 * 2 * (4 / 12))


def test_modules(low):
    enh = (low * 3).clamp(0, 1)
    assert torch.allclose(SpatialConsistencyLoss()(enh, low), spatial_consistency_loss(enh, low))
    assert torch.allclose(ExposureControlLoss()(enh), exposure_control_loss(enh))
    assert torch.allclose(ColorConstancyLoss()(enh), color_constancy_loss(enh))
    a = torch.rand(2, 6, 16, 16)
    assert torch.allclose(IlluminationSmoothnessLoss()(a), illumination_smoothness_loss(a))
    assert "patch_size=16" in repr(ExposureControlLoss())


def test_train_a_curve_net_step(low):
    from lowlight_course.models import CurveNet

    torch.manual_seed(0)
    net = CurveNet(channels=8, iterations=4)
    enh, a = net(low, return_curves=True)
    w = ZERO_DCE_WEIGHTS
    loss = (w["spa"] * spatial_consistency_loss(enh, low) + w["exp"] * exposure_control_loss(enh)
            + w["col"] * color_constancy_loss(enh) + w["tvA"] * illumination_smoothness_loss(a))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_bad_input(low):
    with pytest.raises(ValueError, match="same shape"):
        spatial_consistency_loss(low, low[..., :16])
    with pytest.raises(ValueError, match="larger than"):
        exposure_control_loss(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="3 colour channels"):
        color_constancy_loss(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="dimensions"):
        color_constancy_loss(torch.rand(3, 8, 8))
    with pytest.raises(TypeError):
        exposure_control_loss(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        illumination_smoothness_loss(torch.full((1, 3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="255"):
        exposure_control_loss(low * 255)
    with pytest.raises(ValueError, match="level"):
        ExposureControlLoss(level=2)
    with pytest.raises(ValueError, match="reduction"):
        color_constancy_loss(low, reduction="sum")
