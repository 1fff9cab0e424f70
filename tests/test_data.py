"""Tests for lowlight_course.data: images, sRGB curve, simulation physics, domains, datasets."""
import math
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image

from lowlight_course.data import (
    DOMAINS, BROOKS_SHOT_RANGE, Domain, LOLFolder, PROCEDURAL_KINDS, PairedLowLightDataset, add_sensor_noise,
    apply_illuminant, derive_seed, get_domain, illuminant_from_cct, linear_to_srgb, list_images, load_image,
    luminance, make_pairs, normalize_gains, procedural_scene, quantize, random_crops, read_noise_from_shot,
    render_point_lights, resize_image, sample_params, simulate_low_light, srgb_to_linear,
)


def flat(level, size=32):
    return torch.full((3, size, size), float(level))


# --------------------------------------------------------------------------- colour
def test_srgb_known_values_and_round_trip():
    x = torch.tensor([0.0, 0.04045, 0.5, 1.0])
    lin = srgb_to_linear(x)
    assert torch.allclose(lin, torch.tensor([0.0, 0.04045 / 12.92, 0.214041, 1.0]), atol=1e-5)
    v = torch.linspace(0, 1, 1001)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-5)
    # the two pieces of the curve meet (continuity at the threshold)
    assert abs(float(srgb_to_linear(torch.tensor(0.04045 + 1e-7)) - 0.04045 / 12.92)) < 1e-5


def test_linear_to_srgb_has_finite_gradient_at_zero():
    x = torch.zeros(4, requires_grad=True)
    linear_to_srgb(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_luminance_of_white_is_one():
    assert torch.allclose(luminance(torch.ones(3, 2, 2)), torch.ones(2, 2))


# --------------------------------------------------------------------------- images
def test_bundled_images_load_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_image tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    names = list_images()
    assert {"astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"} <= set(names)
    for name in names:
        img = load_image(name, size=16)
        assert img.shape == (3, 16, 16) and img.dtype == torch.float32
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0


def test_load_image_sizes_and_determinism():
    full = load_image("coffee")
    assert full.shape == (3, 400, 600)
    assert load_image("coffee", (20, 40)).shape == (3, 20, 40)
    assert torch.equal(load_image("coffee", 48), load_image("coffee", 48))
    # the returned tensor is a copy: editing it does not change the cache
    a = load_image("chelsea")
    a.zero_()
    assert load_image("chelsea").max() > 0


@pytest.mark.parametrize("bad", ["lena", 3, None])
def test_load_image_unknown_name(bad):
    with pytest.raises(ValueError, match="Choose one of"):
        load_image(bad)


@pytest.mark.parametrize("bad", [0, -3, 2.5, (1, 2, 3), True])
def test_load_image_bad_size(bad):
    with pytest.raises((TypeError, ValueError)):
        load_image("coffee", bad)


def test_resize_image_centre_crop():
    img = torch.zeros(3, 10, 20)
    img[:, :, 5:15] = 1.0  # the centre 10x10 square is white
    assert torch.equal(resize_image(img, 10), torch.ones(3, 10, 10))


@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_procedural_scene(kind):
    a = procedural_scene(kind, 48, seed=3)
    assert a.shape == (3, 48, 48) and a.dtype == torch.float32
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(a, procedural_scene(kind, 48, seed=3))
    assert not torch.equal(a, procedural_scene(kind, 48, seed=4))
    assert procedural_scene(kind, (16, 24), seed=0).shape == (3, 16, 24)


def test_procedural_night_is_high_dynamic_range():
    x = procedural_scene("night", 64, seed=0)
    lum = luminance(srgb_to_linear(x))
    assert float((lum < 0.05).float().mean()) > 0.6   # mostly dark
    assert float((x >= 0.999).any(dim=0).float().mean()) > 0.002  # a few clipped lamp cores


def test_procedural_scene_bad_kind():
    with pytest.raises(ValueError, match="shapes"):
        procedural_scene("cloud", 16)


def test_random_crops():
    img = load_image("astronaut", 64)
    c = random_crops(img, 5, 16, seed=1)
    assert c.shape == (5, 3, 16, 16)
    assert torch.equal(c, random_crops(img, 5, 16, seed=1))
    assert not torch.equal(c, random_crops(img, 5, 16, seed=2))
    assert random_crops(img, 2, (8, 12), seed=0, flip=True).shape == (2, 3, 8, 12)
    with pytest.raises(ValueError, match="does not fit"):
        random_crops(img, 1, 65)
    with pytest.raises(ValueError):
        random_crops(img[None], 1, 8)


# --------------------------------------------------------------------------- domains
def test_domains_present_and_frozen():
    for name in ["outdoor_daylight", "indoor_tungsten", "indoor_fluorescent", "night_point_lights", "randomized"]:
        d = DOMAINS[name]
        assert d.name == name and d.description
        assert get_domain(name) is d and get_domain(d) is d
        # gains keep the luminance of grey
        assert math.isclose(0.2126 * d.illuminant[0] + 0.7152 * d.illuminant[1] + 0.0722 * d.illuminant[2], 1.0,
                            rel_tol=1e-9)
        lo, hi = d.shot_noise_range
        assert BROOKS_SHOT_RANGE[0] <= lo <= hi <= BROOKS_SHOT_RANGE[1]
    with pytest.raises(Exception):
        DOMAINS["indoor_tungsten"].name = "x"


def test_domain_colours():
    t = DOMAINS["indoor_tungsten"].illuminant
    f = DOMAINS["indoor_fluorescent"].illuminant
    assert t[0] / t[2] > 2.5          # warm: red much stronger than blue
    assert f[1] > f[0] and f[1] > f[2]  # green cast
    assert DOMAINS["night_point_lights"].has_lights and not DOMAINS["outdoor_daylight"].has_lights
    # a 6500 K black body is nearly white; 2800 K is orange
    w = illuminant_from_cct(6500)
    assert max(w) / min(w) < 1.06
    r, g, b = illuminant_from_cct(2800)
    assert r > g > b


def test_unknown_domain_lists_names():
    with pytest.raises(ValueError, match="indoor_tungsten"):
        get_domain("moonlight")
    with pytest.raises(ValueError, match="Choose one of"):
        simulate_low_light(flat(0.5), "moonlight")


def test_domain_validation_and_replace():
    with pytest.raises(ValueError):
        Domain("bad", "x", exposure_range=(0.5, 0.1))
    with pytest.raises(ValueError):
        Domain("bad", "x", exposure_range=(0.1, 0.2), illuminant=(1, 0, 1))
    d = DOMAINS["outdoor_daylight"].replace(name="darker", exposure_range=(0.01, 0.01))
    assert d.exposure_range == (0.01, 0.01) and DOMAINS["outdoor_daylight"].exposure_range == (0.02, 0.2)
    with pytest.raises(ValueError):
        normalize_gains((1, -1, 1))


def test_read_noise_fit_of_brooks():
    # log(read) = 2.18 log(shot) + 1.20
    assert math.isclose(read_noise_from_shot(1e-2), math.exp(2.18 * math.log(1e-2) + 1.2))
    assert read_noise_from_shot(1e-2) > read_noise_from_shot(1e-3)


def test_sample_params_in_range_and_deterministic():
    for name, d in DOMAINS.items():
        for s in range(20):
            p = sample_params(d, s, image_size=(32, 32))
            assert d.exposure_range[0] <= p["exposure"] <= d.exposure_range[1]
            assert d.shot_noise_range[0] <= p["shot_noise"] <= d.shot_noise_range[1]
            assert d.n_lights[0] <= len(p["lights"]) <= d.n_lights[1]
        assert sample_params(d, 5) == sample_params(d, 5)
    # the randomized domain varies the light colour
    gains = {sample_params("randomized", s)["illuminant"] for s in range(5)}
    assert len(gains) == 5


# --------------------------------------------------------------------------- simulation: input checks
@pytest.mark.parametrize("bad, err, match", [
    ([[0.5]], TypeError, "torch.Tensor"),
    (np.zeros((3, 8, 8), dtype=np.float32), TypeError, "torch.Tensor"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), TypeError, "divide by 255"),
    (torch.full((3, 8, 8), 200.0), ValueError, "255"),
    (torch.full((3, 8, 8), 1.5), ValueError, "clamp"),
    (torch.zeros(1, 8, 8), ValueError, "3 colour channels"),
    (torch.zeros(2, 4, 8, 8), ValueError, "alpha"),
    (torch.zeros(8, 8), ValueError, r"\(3, H, W\)"),
    (torch.zeros(1, 1, 3, 8, 8), ValueError, r"\(3, H, W\)"),
    (torch.full((3, 8, 8), float("nan")), ValueError, "NaN"),
])
def test_simulate_rejects_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        simulate_low_light(bad)


def test_simulate_rejects_bad_arguments():
    with pytest.raises(TypeError):
        simulate_low_light(flat(0.5), seed=1.5)
    with pytest.raises(ValueError):
        simulate_low_light(flat(0.5), exposure=-0.1)


# --------------------------------------------------------------------------- simulation: behaviour
def test_simulate_shapes_range_and_determinism():
    x = load_image("coffee", 32)
    low = simulate_low_light(x, seed=7)
    assert low.shape == x.shape and low.dtype == torch.float32
    assert 0.0 <= float(low.min()) and float(low.max()) <= 1.0
    assert torch.equal(low, simulate_low_light(x, seed=7))
    assert not torch.equal(low, simulate_low_light(x, seed=8))
    batch = torch.stack([x, x, x])
    lows = simulate_low_light(batch, seed=7)
    assert lows.shape == (3, 3, 32, 32)
    assert torch.equal(lows[0], low)                    # image 0 of a batch == the single image
    assert not torch.equal(lows[0], lows[1])            # same image, different draws
    assert not torch.equal(lows[1], lows[2])
    assert torch.equal(lows, simulate_low_light(batch, seed=7))


def test_simulate_accepts_domain_object_and_params():
    d = DOMAINS["indoor_tungsten"]
    low, params = simulate_low_light(flat(0.5), d, seed=0, return_params=True)
    assert set(params) >= {"exposure", "illuminant", "shot_noise", "read_noise", "lights", "seed"}
    assert d.exposure_range[0] <= params["exposure"][0] <= d.exposure_range[1]
    assert params["illuminant"][0] == d.illuminant


def test_darker_exposure_lowers_mean():
    x = load_image("astronaut", 32)
    means = [float(simulate_low_light(x, exposure=e, seed=0).mean()) for e in (0.5, 0.1, 0.02)]
    assert means[0] > means[1] > means[2]
    assert means[0] < float(x.mean())


def test_noiseless_simulation_is_exact_exposure_in_linear_light():
    x = load_image("chelsea", 24)
    low = simulate_low_light(x, exposure=0.1, illuminant=(1, 1, 1), noise=False, out_bits=None)
    assert torch.allclose(srgb_to_linear(low), 0.1 * srgb_to_linear(x), atol=1e-6)


def test_tungsten_shifts_colour_towards_red():
    x = load_image("astronaut", 48)
    ratios = {}
    for name in ("outdoor_daylight", "indoor_tungsten"):
        low = simulate_low_light(x, name, seed=0, exposure=0.1, shot_noise=1e-4)
        m = srgb_to_linear(low).mean(dim=(1, 2))
        ratios[name] = float(m[0] / m[2])
    assert ratios["indoor_tungsten"] > 2.0 * ratios["outdoor_daylight"]


def test_fluorescent_shifts_colour_towards_green():
    grey = flat(0.5)
    low = simulate_low_light(grey, "indoor_fluorescent", exposure=0.2, noise=False)
    m = srgb_to_linear(low).mean(dim=(1, 2))
    assert m[1] > m[0] and m[1] > m[2]


def test_shot_noise_variance_grows_linearly_with_signal():
    """Poisson shot noise: Var[y] = shot * x + read. Fit the slope on flat patches (no clipping)."""
    shot, read = 4e-3, 1e-6
    gen = torch.Generator().manual_seed(0)
    levels = torch.tensor([0.02, 0.05, 0.1, 0.2, 0.4])
    var = torch.stack([add_sensor_noise(torch.full((200_000,), float(v)), shot, read, generator=gen).var()
                       for v in levels])
    slope, intercept = np.polyfit(levels.numpy(), var.numpy(), 1)
    assert (var[1:] > var[:-1]).all()
    assert abs(slope - shot) / shot < 0.05
    assert abs(intercept - read) < 2e-5
    # unbiased: the mean is the signal
    y = add_sensor_noise(torch.full((200_000,), 0.05), shot, read, generator=gen)
    assert abs(float(y.mean()) - 0.05) < 1e-3


def test_gaussian_approximation_matches_poisson_moments():
    gen = torch.Generator().manual_seed(1)
    x = torch.full((200_000,), 0.2)
    p = add_sensor_noise(x, 5e-3, 0.0, generator=gen, poisson=True)
    g = add_sensor_noise(x, 5e-3, 0.0, generator=gen, poisson=False)
    assert abs(float(p.var()) - float(g.var())) / 1e-3 < 0.05
    # Poisson values are whole photon counts times the shot factor; Gaussian values are not
    counts = p / 5e-3
    assert torch.allclose(counts, counts.round(), atol=1e-3)


def test_simulated_noise_grows_with_signal_end_to_end():
    x = torch.stack([flat(v, 64) for v in (0.3, 0.6, 0.9)])
    _, stages = simulate_low_light(x, exposure=0.2, shot_noise=5e-3, illuminant=(1, 1, 1), seed=0,
                                   return_stages=True)
    lin_var = stages["noisy"].var(dim=(1, 2, 3))
    assert (lin_var[1:] > lin_var[:-1]).all()


def test_output_is_8bit_quantised():
    """What is checked: the returned sRGB photo (what an 8-bit file stores) is a multiple of 1/255;
    with ``adc_bits=8`` the clipped *linear* signal is too; ``out_bits=None`` keeps floats."""
    x = load_image("coffee", 32)
    low, st = simulate_low_light(x, seed=0, return_stages=True)
    assert torch.allclose(low * 255, (low * 255).round(), atol=1e-4)
    assert not torch.allclose(st["clipped"] * 255, (st["clipped"] * 255).round(), atol=1e-4)
    _, st8 = simulate_low_light(x, seed=0, adc_bits=8, return_stages=True)
    assert torch.allclose(st8["clipped"] * 255, (st8["clipped"] * 255).round(), atol=1e-4)
    raw = simulate_low_light(x, seed=0, out_bits=None)
    assert not torch.allclose(raw * 255, (raw * 255).round(), atol=1e-4)
    assert torch.equal(quantize(torch.tensor([0.0, 0.6, 1.2]), 1), torch.tensor([0.0, 1.0, 1.0]))


def test_stages_are_consistent():
    x = load_image("rocket", 32)
    low, st = simulate_low_light(x, "indoor_tungsten", seed=2, return_stages=True)
    assert torch.equal(st["low"], low)
    assert torch.allclose(st["linear"], srgb_to_linear(x))
    assert torch.equal(st["clipped"], st["noisy"].clamp(0, 1))
    assert torch.allclose(st["srgb"], linear_to_srgb(st["clipped"]))


def test_night_lights_saturate_and_pairs_share_them():
    x = flat(0.3, 64)
    low, params = simulate_low_light(x, "night_point_lights", seed=0, return_params=True)
    assert len(params["lights"][0]) >= 2
    assert float(low.max()) == 1.0                       # lamp cores clip even in a dark frame
    assert float(low.median()) < 0.15                    # the rest is very dark
    rad = render_point_lights(64, 64, params["lights"][0])
    assert rad.shape == (3, 64, 64) and float(rad.max()) > 1.0  # cores above full scale
    lo, hi = make_pairs(4, 32, "night_point_lights", seed=0)
    assert float((hi >= 0.999).float().mean()) > 0.001   # the same lamps appear in the target


def test_apply_illuminant_and_derive_seed():
    y = apply_illuminant(torch.ones(2, 3, 2, 2), torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]))
    assert float(y[0, 2, 0, 0]) == 3.0 and float(y[1, 2, 0, 0]) == 1.0
    assert derive_seed(0, 0) != derive_seed(0, 1) != derive_seed(1, 0)
    assert derive_seed(3, 4) == derive_seed(3, 4) and 0 <= derive_seed(-5, -1) < 2**63


# --------------------------------------------------------------------------- datasets
def test_make_pairs_shapes_determinism_and_speed():
    t = time.perf_counter()
    low, high = make_pairs(96, 64, "outdoor_daylight", seed=0)
    elapsed = time.perf_counter() - t
    assert low.shape == high.shape == (96, 3, 64, 64)
    assert elapsed < 3.0, f"make_pairs(96, 64) took {elapsed:.2f} s"
    assert float(low.mean()) < 0.6 * float(high.mean())
    low2, high2 = make_pairs(10, 64, "outdoor_daylight", seed=0)
    assert torch.equal(low2, low[:10]) and torch.equal(high2, high[:10])   # prefix-stable
    low3, _ = make_pairs(10, 64, "outdoor_daylight", seed=1)
    assert not torch.equal(low3, low2)
    # crops are diverse
    assert float(high.mean(dim=(1, 2, 3)).std()) > 0.03


def test_make_pairs_sources_and_bad_input():
    low, high = make_pairs(6, 16, "indoor_tungsten", seed=0, sources=["procedural:shapes", "coffee"])
    assert low.shape == (6, 3, 16, 16)
    with pytest.raises(ValueError, match="Valid sources"):
        make_pairs(2, 16, sources=["lena"])
    with pytest.raises(ValueError):
        make_pairs(0, 16)
    with pytest.raises(ValueError):
        make_pairs(2, 2)
    with pytest.raises(ValueError, match="Choose one of"):
        make_pairs(2, 16, domain="moon")


def test_paired_dataset_and_dataloader():
    ds = PairedLowLightDataset(8, 16, "indoor_fluorescent", seed=0)
    assert len(ds) == 8
    low, high = ds[3]
    assert low.shape == high.shape == (3, 16, 16)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 16, 16)
    ds2 = PairedLowLightDataset.from_tensors(*ds.tensors())
    assert torch.equal(ds2[3][0], low)
    with pytest.raises(ValueError):
        PairedLowLightDataset.from_tensors(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))


def _write(path, value, size=(8, 6)):
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


def _lol(tmp_path, names_low=("1.png", "2.png"), names_high=("1.png", "2.png")):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    for n in names_low:
        _write(tmp_path / "low" / n, 10)
    for n in names_high:
        _write(tmp_path / "high" / n, 200)
    return tmp_path


def test_lol_folder_reads_pairs(tmp_path):
    ds = LOLFolder(_lol(tmp_path, ("1.png", "2.bmp", "3.jpg"), ("1.png", "2.bmp", "3.png")))
    assert len(ds) == 3 and ds.names == ["1", "2", "3"]
    low, high = ds[0]
    assert low.shape == (3, 6, 8) and low.dtype == torch.float32
    assert abs(float(low.mean()) - 10 / 255) < 1e-6 and abs(float(high.mean()) - 200 / 255) < 1e-6
    assert LOLFolder(tmp_path, size=4)[1][0].shape == (3, 4, 4)


def test_lol_folder_reports_unpaired_files(tmp_path):
    root = _lol(tmp_path, ("1.png", "2.png", "only_low.png"), ("1.png", "2.png", "only_high.png"))
    with pytest.raises(ValueError, match="only_low.png") as err:
        LOLFolder(root)
    assert "only_high.png" in str(err.value)
    with pytest.warns(UserWarning, match="only_low.png"):
        ds = LOLFolder(root, strict=False)
    assert len(ds) == 2


def test_lol_folder_missing_folders_and_unreadable_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LOLFolder(tmp_path / "nope")
    (tmp_path / "low").mkdir()
    with pytest.raises(FileNotFoundError, match="high/"):
        LOLFolder(tmp_path)
    (tmp_path / "high").mkdir()
    with pytest.raises(ValueError, match="No image pairs"):
        LOLFolder(tmp_path)
    _write(tmp_path / "low" / "a.png", 5)
    (tmp_path / "high" / "a.png").write_bytes(b"this is not a png")
    ds = LOLFolder(tmp_path)
    with pytest.raises(OSError, match=r"high.a\.png.*re-export"):
        ds[0]


def test_lol_folder_size_mismatch(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    _write(tmp_path / "low" / "a.png", 5, size=(8, 6))
    _write(tmp_path / "high" / "a.png", 5, size=(6, 6))
    with pytest.raises(ValueError, match="size="):
        LOLFolder(tmp_path)[0]
