"""Turn a clean sRGB photo into a plausible low-light photo of the same scene.

The pipeline follows the physics of a camera, in the order light meets it:

1. **sRGB -> linear** (IEC 61966-2-1): undo the display gamma; light adds up in linear units.
2. **Exposure**: multiply by a scale ``e`` (e.g. 0.02 = 1/50 of the light of a good exposure).
3. **Illuminant**: multiply each channel by the light's colour gains (luminance-preserving).
4. **Point lights** (HDR domains only): lamps whose cores exceed the sensor's saturation level
   even in the dark frame (peaks of 1.5 to 12 times full scale), with a faint glare halo.
5. **Sensor noise** in linear units (Brooks et al. 2019, "Unprocessing Images for Learned Raw
   Denoising", CVPR): *shot noise*, Poisson photon counting whose variance grows with the signal,
   ``y = lambda_shot * Poisson(x / lambda_shot)`` (mean ``x``, variance ``lambda_shot * x``), plus
   Gaussian *read noise* of variance ``lambda_read``. We draw exact Poisson samples with
   ``torch.poisson`` and a seeded ``torch.Generator`` (not the Gaussian approximation), so very dark
   pixels keep their discrete, skewed photon statistics.
6. **Clip** to [0, 1]: the sensor saturates; negative read noise cannot make negative light.
7. Optional **ADC quantisation** of the linear signal (``adc_bits``; off by default).
8. **Linear -> sRGB** and **8-bit quantisation**: the photo is saved as an 8-bit image, like the
   low-light photos of the LOL data set. Output values are exact multiples of 1/255.

The 8-bit rounding is applied to the *sRGB* values because that is what a saved photo stores; the
sRGB curve spends many codes on dark tones, so a dark photo keeps ~40 grey levels below linear 0.02.
Rounding *linear* values to 8 bits instead (``adc_bits=8``) leaves only 5 levels there and visibly
posterises the shadows.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from .._validation import check_image
from .color import linear_to_srgb, srgb_to_linear
from .domains import get_domain, normalize_gains, read_noise_from_shot

__all__ = [
    "simulate_low_light", "add_sensor_noise", "apply_illuminant", "render_point_lights",
    "quantize", "sample_params", "derive_seed",
]


def derive_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for item ``index`` of a seeded batch (splitmix64 finaliser)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(index) + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def _as_batch(clean, name="clean") -> tuple[torch.Tensor, bool]:
    """Validate an sRGB image (3, H, W) or batch (B, 3, H, W) in [0, 1]; return it as a batch."""
    if isinstance(clean, torch.Tensor) and clean.dim() == 3:
        batch, single = clean.unsqueeze(0), True
    else:
        batch, single = clean, False
    if isinstance(batch, torch.Tensor) and batch.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape (3, H, W) or (B, 3, H, W), got {tuple(clean.shape)}.")
    check_image(batch, name, data_range=1.0)  # tensor, float, finite, not 0-255
    if batch.shape[1] != 3:
        hint = (" For a grey image use x.expand(3, H, W) or x.repeat(1, 3, 1, 1)." if batch.shape[1] == 1
                else " Drop the alpha channel with x[..., :3, :, :]." if batch.shape[1] == 4 else "")
        raise ValueError(f"{name} must have 3 colour channels (RGB), got {batch.shape[1]} "
                         f"(shape {tuple(clean.shape)}).{hint}")
    lo, hi = float(batch.min()), float(batch.max())
    if hi > 1.0 + 1e-4 or lo < -1e-4:
        raise ValueError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; simulate_low_light needs an sRGB "
                         f"image in [0, 1]. Clamp it with {name}.clamp(0, 1) (or divide by 255 for 8-bit values).")
    return batch.clamp(0.0, 1.0), single


def _check_bits(name: str, bits, *, allow_none: bool = True):
    """``bits`` must be None (when allowed) or an int in 1..16 (2 .. 65536 levels)."""
    if bits is None and allow_none:
        return None
    if isinstance(bits, bool) or not isinstance(bits, Integral) or not 1 <= int(bits) <= 16:
        none = " or None (no rounding)" if allow_none else ""
        raise ValueError(f"{name} must be an integer from 1 to 16{none}, got {bits!r}: use 8 for an 8-bit "
                         f"photo (values are multiples of 1/255).")
    return int(bits)


def _check_real(name: str, value, *, fix: str, positive: bool = False, upper: float | None = None) -> float:
    """A finite real number >= 0 (> 0 when ``positive``, <= ``upper`` when given)."""
    ok = (not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
          and (value > 0 if positive else value >= 0) and (upper is None or value <= upper))
    if not ok:
        cond = "> 0" if positive else ">= 0"
        if upper is not None:
            cond += f" and <= {upper:g}"
        raise ValueError(f"{name} must be a finite number {cond}, got {value!r}: {fix}.")
    return float(value)


def _log_uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def sample_params(domain, seed: int = 0, *, image_size: tuple[int, int] = (64, 64)) -> dict:
    """Draw one image's simulation parameters from ``domain``, deterministically from ``seed``.

    Returns a dict with ``exposure``, ``illuminant`` (3 gains), ``shot_noise``, ``read_noise`` and
    ``lights`` (a list of ``(y, x, radius, peak)``: pixels, and peak in multiples of full scale).
    """
    d = get_domain(domain)
    gen = torch.Generator().manual_seed(int(seed))
    exposure = _log_uniform(gen, *d.exposure_range)
    gains = d.illuminant
    jitter = torch.randn(3, generator=gen, dtype=torch.float64)
    if d.illuminant_jitter > 0:
        gains = normalize_gains(tuple(g * math.exp(d.illuminant_jitter * float(j)) for g, j in zip(gains, jitter)))
    shot = _log_uniform(gen, *d.shot_noise_range)
    residual = float(torch.randn((), generator=gen, dtype=torch.float64)) * d.read_noise_residual
    read = read_noise_from_shot(shot, residual)
    lights = []
    if d.has_lights:
        h, w = image_size
        n = int(torch.randint(d.n_lights[0], d.n_lights[1] + 1, (), generator=gen))
        for _ in range(n):
            y = float(torch.rand((), generator=gen)) * h
            x = float(torch.rand((), generator=gen)) * w
            radius = (d.light_radius[0] + float(torch.rand((), generator=gen)) *
                      (d.light_radius[1] - d.light_radius[0])) * min(h, w)
            lights.append((y, x, max(radius, 0.5), _log_uniform(gen, *d.light_intensity)))
    return {"exposure": exposure, "illuminant": tuple(gains), "shot_noise": shot, "read_noise": read,
            "lights": lights}


def render_point_lights(height: int, width: int, lights, rgb=(1.0, 0.75, 0.45), *, device=None) -> torch.Tensor:
    """Linear signal (3, H, W) of Gaussian point lights ``(y, x, radius, peak)``; 1 = sensor full scale."""
    out = torch.zeros(3, height, width, device=device)
    if not lights:
        return out
    ys = torch.arange(height, dtype=torch.float32, device=device).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32, device=device).view(1, -1) + 0.5
    colour = torch.tensor(rgb, dtype=torch.float32, device=device).view(3, 1, 1)
    for y, x, r, peak in lights:
        blob = torch.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2.0 * r * r))
        # a core plus a wide, faint halo (lens glare, 0.2% of the peak), so lights light up their surroundings
        halo = 0.002 * torch.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2.0 * (5 * r) ** 2))
        out = out + colour * (peak * (blob + halo))
    return out


def apply_illuminant(linear: torch.Tensor, gains) -> torch.Tensor:
    """Multiply each channel of linear RGB (..., 3, H, W) by the light's gains (3 values or (B, 3))."""
    if not isinstance(linear, torch.Tensor) or linear.dim() < 3 or linear.shape[-3] != 3:
        raise ValueError(f"linear must be RGB of shape (..., 3, H, W), got "
                         f"{tuple(linear.shape) if isinstance(linear, torch.Tensor) else type(linear).__name__}"
                         f": drop an alpha channel with x[..., :3, :, :].")
    g = torch.as_tensor(gains, dtype=linear.dtype, device=linear.device)
    if g.shape[-1:] != (3,) or g.dim() > 2 or not bool(torch.isfinite(g).all()) or bool((g <= 0).any()):
        raise ValueError(f"gains must be three positive, finite values (or (B, 3)), got {gains!r}: "
                         f"use normalize_gains((1.2, 1.0, 0.7)).")
    if g.dim() == 1:
        g = g.view(3, 1, 1)
    else:
        g = g.view(-1, 3, 1, 1)
    return linear * g


def add_sensor_noise(linear: torch.Tensor, shot_noise: float, read_noise: float, *,
                     generator: torch.Generator | None = None, poisson: bool = True) -> torch.Tensor:
    """Add shot and read noise to linear signal (Brooks et al. 2019). Not clipped.

    ``poisson=True``: ``y = shot * Poisson(x / shot) + N(0, read)`` (exact photon counting).
    ``poisson=False``: the Gaussian approximation ``y = x + N(0, shot * x + read)``.
    Either way ``E[y] = x`` and ``Var[y] = shot * x + read`` (for x >= 0).
    """
    shot_noise = _check_real("shot_noise", shot_noise, fix="use a variance factor such as 1e-3 (0 = no shot noise)")
    read_noise = _check_real("read_noise", read_noise, fix="use a variance such as 1e-5 (0 = no read noise)")
    if not isinstance(linear, torch.Tensor) or not linear.is_floating_point():
        raise TypeError(f"linear must be a floating-point tensor, got "
                        f"{getattr(linear, 'dtype', type(linear).__name__)}: use srgb_to_linear(image).")
    x = linear.clamp_min(0.0)
    if shot_noise > 0:
        if poisson:
            y = torch.poisson(x / shot_noise, generator=generator) * shot_noise
        else:
            y = x + torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * (shot_noise * x).sqrt()
    else:
        y = x
    if read_noise > 0:
        y = y + torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * math.sqrt(read_noise)
    return y


def quantize(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round values in [0, 1] to ``2**bits`` levels (multiples of ``1 / (2**bits - 1)``), bits 1..16."""
    bits = _check_bits("bits", bits, allow_none=False)
    levels = float(2 ** bits - 1)
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


def simulate_low_light(clean, domain="outdoor_daylight", *, seed: int = 0, exposure: float | None = None,
                       shot_noise: float | None = None, read_noise: float | None = None,
                       illuminant=None, noise: bool = True, poisson: bool = True, out_bits: int | None = 8,
                       adc_bits: int | None = None, return_params: bool = False, return_stages: bool = False):
    """Simulate a low-light photo of a clean sRGB image, following the camera's physics.

    Args:
        clean: sRGB image (3, H, W) or batch (B, 3, H, W), float, values in [0, 1].
        domain: a name in :data:`~lowlight_course.data.DOMAINS` or a :class:`Domain`.
        seed: same seed, same output. Image ``i`` of a batch draws its own parameters and noise
            from ``derive_seed(seed, i)``, so images in a batch differ.
        exposure, shot_noise, read_noise, illuminant: fix a parameter instead of drawing it from the
            domain (``read_noise`` defaults to Brooks et al.'s fit to ``shot_noise``).
        noise: ``False`` skips the sensor noise (to look at the other steps alone).
        poisson: exact Poisson shot noise (default) or its Gaussian approximation.
        out_bits: bits of the saved sRGB photo (8: values are multiples of 1/255); ``None`` keeps floats.
        adc_bits: if set, also round the *linear* signal to this many bits (sensor ADC).
        return_params: also return a dict of the drawn parameters (lists, one entry per image).
        return_stages: also return a dict of intermediate batches: ``"linear"``, ``"exposed"``,
            ``"lit"`` (illuminant applied, lamps added), ``"noisy"`` (unclipped), ``"clipped"``,
            ``"srgb"`` (before rounding) and ``"low"``.

    Returns:
        The low-light image with the shape of ``clean``; then ``params`` and/or ``stages`` if asked.

    Reference:
        Brooks, Mildenhall, Xue, Chen, Sharlet & Barron, "Unprocessing Images for Learned Raw
        Denoising", CVPR 2019 (noise model and ranges); IEC 61966-2-1 (sRGB curve).

    Example:
        >>> from lowlight_course.data import load_image
        >>> x = load_image("coffee", size=64)
        >>> low = simulate_low_light(x, "indoor_tungsten", seed=0)
        >>> low.shape, bool(low.mean() < x.mean())
        (torch.Size([3, 64, 64]), True)
    """
    batch, single = _as_batch(clean)
    d = get_domain(domain)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    if exposure is not None:
        exposure = _check_real("exposure", exposure, positive=True, upper=1e3,
                               fix="use a scale of the light such as 0.05 (1/20 of a good exposure)")
    if shot_noise is not None:
        shot_noise = _check_real("shot_noise", shot_noise,
                                 fix=f"use a variance factor in Brooks et al.'s range {d.shot_noise_range} "
                                     f"(0 = no shot noise)")
    if read_noise is not None:
        read_noise = _check_real("read_noise", read_noise, fix="use a variance such as 1e-5 (0 = no read noise)")
    if illuminant is not None:
        normalize_gains(illuminant)  # three positive, finite gains, or a clear error
    out_bits = _check_bits("out_bits", out_bits)
    adc_bits = _check_bits("adc_bits", adc_bits)
    for flag, value in (("noise", noise), ("poisson", poisson), ("return_params", return_params),
                        ("return_stages", return_stages)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}.")
    b, _, h, w = batch.shape
    device, dtype = batch.device, batch.dtype
    params = {"exposure": [], "illuminant": [], "shot_noise": [], "read_noise": [], "lights": [], "seed": []}
    stage_names = ("linear", "exposed", "lit", "noisy", "clipped", "srgb", "low")
    stages = {k: [] for k in stage_names} if return_stages else None
    outs = []
    for i in range(b):
        s = derive_seed(seed, i)
        p = sample_params(d, s, image_size=(h, w))
        if exposure is not None:
            p["exposure"] = float(exposure)
        if shot_noise is not None:
            p["shot_noise"] = float(shot_noise)
            if read_noise is None:
                p["read_noise"] = read_noise_from_shot(float(shot_noise))
        if read_noise is not None:
            p["read_noise"] = float(read_noise)
        if illuminant is not None:
            p["illuminant"] = normalize_gains(illuminant)
        gen = torch.Generator(device=device).manual_seed(s)

        lin = srgb_to_linear(batch[i])                                   # 1. decode
        exposed = lin * p["exposure"]                                    # 2. exposure
        lit = apply_illuminant(exposed, p["illuminant"])                 # 3. light colour
        if p["lights"]:                                                  # 4. HDR lamps
            lit = lit + render_point_lights(h, w, p["lights"], d.light_rgb, device=device).to(dtype)
        noisy = (add_sensor_noise(lit, p["shot_noise"], p["read_noise"], generator=gen, poisson=poisson)
                 if noise else lit)                                      # 5. sensor noise
        clipped = noisy.clamp(0.0, 1.0)                                  # 6. saturate
        if adc_bits is not None:                                         # 7. ADC (optional)
            clipped = quantize(clipped, adc_bits)
        srgb = linear_to_srgb(clipped)                                   # 8. encode ...
        low = quantize(srgb, out_bits) if out_bits is not None else srgb  # ... and save 8-bit
        outs.append(low)
        for k in ("exposure", "illuminant", "shot_noise", "read_noise", "lights"):
            params[k].append(p[k])
        params["seed"].append(s)
        if stages is not None:
            for k, v in zip(stage_names, (srgb_to_linear(batch[i]), exposed, lit, noisy, clipped, srgb, low)):
                stages[k].append(v)
    result = torch.stack(outs).to(dtype)
    if single:
        result = result[0]
    extras = []
    if return_params:
        extras.append(params)
    if return_stages:
        st = {k: torch.stack(v) for k, v in stages.items()}
        extras.append({k: (v[0] if single else v) for k, v in st.items()})
    return (result, *extras) if extras else result
