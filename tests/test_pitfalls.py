import pytest
import torch

from lowlight_course import pitfalls as P
from lowlight_course.losses import gaussian_window, ssim


@pytest.fixture(scope="module")
def random_pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)


@pytest.fixture(scope="module")
def photo_pair():
    return P.sample_pair("astronaut", 64)


def test_registry():
    assert {"gaussian_window_float_exp", "ssim_data_range_255", "ssim_zero_padding",
            "histogram_loss_histc", "naive_combined_loss", "histogram_blind_to_shuffle"} <= set(P.PITFALLS)
    for name in P.PITFALLS:
        assert callable(getattr(P, name)) and getattr(P, name).__doc__


def test_gaussian_window_float_exp_raises():
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        P.gaussian_window_float_exp(11, 1.5)
    assert gaussian_window(11, 1.5).shape == (11,)   # the fixed version runs


def test_naive_ssim_without_defects_equals_reference(random_pair, photo_pair):
    for p, t in (random_pair, photo_pair):
        assert float(P.naive_ssim(p, t, 1.0, False)) == pytest.approx(float(ssim(p, t)), abs=1e-5)


def test_data_range_255_swamps_statistics(random_pair, photo_pair):
    p, t = random_pair
    assert float(P.ssim_data_range_255(p, t)) > 0.99      # measured 0.9964
    assert float(ssim(p, t)) < 0.15                       # measured 0.0121
    ratio = P.ssim_gradient_ratio(p, t)                   # measured ~152
    assert 20 < ratio < 400
    assert P.ssim_gradient_ratio(*photo_pair) > 100       # measured ~640


def test_zero_padding_shifts_ssim_and_darkens_borders(photo_pair, random_pair):
    p, t = photo_pair
    shift = abs(float(P.ssim_zero_padding(p, t)) - float(ssim(p, t)))
    assert 1e-4 < shift < 1e-2                            # measured 1.7e-3
    assert abs(float(P.ssim_zero_padding(*random_pair)) - float(ssim(*random_pair))) > 1e-2  # 6.1e-2
    flat = torch.full((1, 1, 64, 64), 0.5)
    win = P._window2d(11, 1.5, 1, torch.float32, "cpu")
    mu = torch.nn.functional.conv2d(flat, win, padding=5)
    assert float(mu[0, 0, 0, 0]) < 0.25 and float(mu[0, 0, 32, 32]) == pytest.approx(0.5)


def test_histc_has_no_gradient(photo_pair):
    p, t = photo_pair
    pr = p.clone().requires_grad_()
    loss = P.histogram_loss_histc(pr, t)
    assert loss.grad_fn is None and not loss.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()


def test_histc_term_is_silently_dead_in_the_sum(photo_pair):
    p, t = photo_pair
    grads = []
    for with_hist in (True, False):
        pr = p.clone().requires_grad_()
        total = 0.3 * ((pr - t) ** 2).mean() + 0.3 * (1 - P.naive_ssim(pr, t))
        if with_hist:
            total = total + 0.4 * P.histogram_loss_histc(pr, t)
        total.backward()
        grads.append(pr.grad)
    assert torch.equal(grads[0], grads[1])


def test_naive_combined_loss_magnitudes(photo_pair):
    terms = {k: float(v.detach()) for k, v in P.naive_combined_loss(*photo_pair, terms=True).items()}
    assert 1e-3 < terms["mse"] < 1e-2          # measured 2.7e-3
    assert 1e-5 < terms["ssim"] < 1e-3         # measured 1.5e-4
    assert 1e-5 < terms["hist"] < 1e-3         # measured 3.4e-4
    assert terms["mse"] / terms["ssim"] > 10
    total = P.naive_combined_loss(*photo_pair)
    assert total == pytest.approx(0.3 * terms["mse"] + 0.3 * terms["ssim"] + 0.4 * terms["hist"], rel=1e-5)


def test_shuffle_has_zero_histogram_loss(photo_pair):
    _, t = photo_pair
    out = P.histogram_blind_to_shuffle(t)
    assert out["hist_histc"] == 0.0
    assert out["hist_soft"] < 1e-6
    assert out["mse"] > 0.05 and out["ssim"] < 0.2
    s = P.shuffle_pixels(t)
    assert torch.equal(s.flatten(2).sort(-1).values, t.flatten(2).sort(-1).values)


def test_bad_input(photo_pair):
    p, t = photo_pair
    with pytest.raises(ValueError, match="255"):
        P.ssim_data_range_255(p * 255, t * 255)
    with pytest.raises(ValueError, match="same shape"):
        P.histogram_loss_histc(p, t[..., :32])
    with pytest.raises(ValueError, match="bins"):
        P.histogram_loss_histc(p, t, bins=0)
