"""Named illumination domains: where a low-light photo was taken, as numbers.

A :class:`Domain` fixes the distributions that :func:`~lowlight_course.data.simulate_low_light`
draws from: how dark (exposure scale), what colour the light is (illuminant gains), how noisy the
sensor is (shot and read noise), and, for night scenes, how many bright point lights sit in the
frame (high dynamic range).

Noise ranges follow Brooks et al. (2019), "Unprocessing Images for Learned Raw Denoising", CVPR,
Sec. 3.3: shot-noise variance factor ``lambda_shot`` log-uniform on [1e-4, 1.2e-2] and read-noise
variance ``lambda_read`` from their log-linear fit
``log(lambda_read) = 2.18 log(lambda_shot) + 1.20 + N(0, 0.26)``. Each domain uses a sub-range:
dim daylight is the clean end, night the noisy end.

Illuminant colours are linear-sRGB gains of the light relative to D65 (sRGB white), the colour
cast a camera keeps when its white balance does not fully correct the light. They are normalised
so that a grey surface keeps its luminance (0.2126 R + 0.7152 G + 0.0722 B = 1): the illuminant
changes colour, the exposure changes brightness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from .color import REC709_LUMA

__all__ = [
    "Domain", "DOMAINS", "get_domain", "illuminant_from_cct", "normalize_gains", "read_noise_from_shot",
    "BROOKS_SHOT_RANGE",
]

#: Shot-noise variance factor range of Brooks et al. (2019), linear units with white = 1.
BROOKS_SHOT_RANGE = (1e-4, 1.2e-2)


def normalize_gains(rgb) -> tuple[float, float, float]:
    """Scale per-channel gains so that their Rec. 709 luminance is 1 (a grey keeps its brightness)."""
    fix = "pass three positive, finite (R, G, B) gains such as (1.2, 1.0, 0.7), or illuminant_from_cct(2800)"
    try:
        values = [float(v) for v in rgb]
    except (TypeError, ValueError):
        raise ValueError(f"illuminant gains must be three numbers, got {rgb!r}: {fix}.") from None
    if len(values) != 3 or any(isinstance(v, bool) for v in rgb):
        raise ValueError(f"illuminant gains must be three numbers (R, G, B), got {rgb!r}: {fix}.")
    r, g, b = values
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"illuminant gains must be positive and finite, got {rgb!r}: {fix}.")
    y = REC709_LUMA[0] * r + REC709_LUMA[1] * g + REC709_LUMA[2] * b
    return (r / y, g / y, b / y)


def read_noise_from_shot(shot: float, residual: float = 0.0) -> float:
    """Read-noise variance tied to shot noise by Brooks et al. (2019)'s fit.

    ``log(read) = 2.18 * log(shot) + 1.20 + residual``, with ``residual ~ N(0, 0.26)`` when drawn.
    ``shot = 0`` (no shot noise) gives 0, the limit of the fit.
    """
    if isinstance(shot, bool) or not isinstance(shot, (int, float)) or not math.isfinite(shot) or shot < 0:
        raise ValueError(f"shot-noise variance must be a finite number >= 0, got {shot!r}: use a value "
                         f"in Brooks et al.'s range {BROOKS_SHOT_RANGE} (0 = no shot noise).")
    if shot == 0:
        return 0.0
    return math.exp(2.18 * math.log(shot) + 1.20 + residual)


def _planck_xy(kelvin: float) -> tuple[float, float]:
    """CIE 1931 xy of a black body, cubic-spline fit of Kim et al. (2002), valid 1667-25000 K.

    Kim, Kim, Lee, Kim, Park & Kim, "Design of advanced color temperature control system for HDTV
    applications", J. Korean Physical Society 41(6), 2002.
    """
    try:
        t = float(kelvin)
    except (TypeError, ValueError):
        raise ValueError(f"colour temperature must be a number of kelvin within 1667-25000, got {kelvin!r}.") from None
    if not 1667.0 <= t <= 25000.0:
        raise ValueError(f"colour temperature must be within 1667-25000 K, got {kelvin!r}.")
    if t <= 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222.0:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000.0:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def illuminant_from_cct(kelvin: float, strength: float = 1.0) -> tuple[float, float, float]:
    """Linear-sRGB gains of a black-body light of ``kelvin`` seen by a camera balanced for D65.

    The black body's chromaticity (Kim et al. 2002) is converted to XYZ and then to linear sRGB with
    the IEC 61966-2-1 matrix, relative to D65 white. ``strength`` in [0, 1] keeps that fraction of
    the cast (in log space): 1 is no white balance at all, 0 is perfect white balance. Returns
    luminance-normalised gains. 2800 K (a tungsten bulb) gives a strong orange cast.
    """
    x, y = _planck_xy(kelvin)
    X, Y, Z = x / y, 1.0, (1.0 - x - y) / y
    r = 3.2406 * X - 1.5372 * Y - 0.4986 * Z
    g = -0.9689 * X + 1.8758 * Y + 0.0415 * Z
    b = 0.0557 * X - 0.2040 * Y + 1.0570 * Z
    r, g, b = (max(v, 1e-3) for v in (r, g, b))
    gains = normalize_gains((r, g, b))
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"strength must be in [0, 1] (1: no white balance, 0: perfect), got {strength!r}.")
    return normalize_gains(tuple(v ** s for v in gains))


@dataclass(frozen=True)
class Domain:
    """One illumination domain: the distributions a simulated low-light photo is drawn from.

    Attributes:
        name: short identifier (key in :data:`DOMAINS`).
        description: one sentence a learner can read.
        exposure_range: (min, max) scale applied to linear light; drawn log-uniformly per image.
            0.05 means the photo collected 1/20 of the light of a good exposure.
        illuminant: linear-sRGB gains (R, G, B) of the light, normalised to luminance 1.
        illuminant_jitter: std of a random per-image, per-channel log-gain added to ``illuminant``
            (0 for a fixed light; > 0 for randomised augmentation).
        shot_noise_range: (min, max) of the shot-noise variance factor, log-uniform (Brooks 2019).
        read_noise_residual: std of the residual of the read-noise fit (0.26 in Brooks 2019).
        n_lights: (min, max) number of bright point lights added to the scene (HDR); (0, 0) = none.
        light_intensity: (min, max) peak of a light in the *dark* frame, in multiples of the sensor's
            full scale (log-uniform). Above 1 the core saturates: a lamp is hundreds of times brighter
            than the surfaces it lights, so it clips even when everything else is nearly black.
        light_radius: (min, max) Gaussian radius of a light as a fraction of the image side.
        light_rgb: colour of the lights (linear gains; street lamps are orange).
    """

    name: str
    description: str
    exposure_range: tuple[float, float]
    illuminant: tuple[float, float, float] = (1.0, 1.0, 1.0)
    illuminant_jitter: float = 0.0
    shot_noise_range: tuple[float, float] = (1e-4, 3e-3)
    read_noise_residual: float = 0.26
    n_lights: tuple[int, int] = (0, 0)
    light_intensity: tuple[float, float] = (1.5, 12.0)
    light_radius: tuple[float, float] = (0.01, 0.03)
    light_rgb: tuple[float, float, float] = (1.0, 0.75, 0.45)

    def __post_init__(self):
        lo, hi = self.exposure_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"exposure_range must satisfy 0 < min <= max <= 1, got {self.exposure_range}.")
        slo, shi = self.shot_noise_range
        if not 0 < slo <= shi:
            raise ValueError(f"shot_noise_range must satisfy 0 < min <= max, got {self.shot_noise_range}.")
        if len(self.illuminant) != 3 or min(self.illuminant) <= 0:
            raise ValueError(f"illuminant must be three positive gains, got {self.illuminant}.")
        nlo, nhi = self.n_lights
        if not 0 <= nlo <= nhi:
            raise ValueError(f"n_lights must satisfy 0 <= min <= max, got {self.n_lights}.")
        object.__setattr__(self, "illuminant", normalize_gains(self.illuminant))

    @property
    def has_lights(self) -> bool:
        """True when the domain adds point lights (an HDR scene)."""
        return self.n_lights[1] > 0

    def replace(self, **changes) -> "Domain":
        """A copy with some fields changed, e.g. ``DOMAINS['indoor_tungsten'].replace(exposure_range=(0.01, 0.02))``."""
        return replace(self, **changes)


DOMAINS: dict[str, Domain] = {d.name: d for d in [
    Domain(
        "outdoor_daylight",
        "Dusk or shade outdoors: neutral (D65) light, 1/50 to 1/5 of a good exposure, mild noise.",
        exposure_range=(0.02, 0.2),
        illuminant=(1.0, 1.0, 1.0),
        shot_noise_range=(1e-4, 3e-3),
    ),
    Domain(
        "indoor_tungsten",
        "A room lit by incandescent bulbs (~2800 K): strong orange cast that white balance only half "
        "removes, dark, moderate noise.",
        exposure_range=(0.02, 0.15),
        illuminant=illuminant_from_cct(2800.0, strength=0.6),
        shot_noise_range=(5e-4, 6e-3),
    ),
    Domain(
        "indoor_fluorescent",
        "An office under fluorescent tubes: the mercury line at 546 nm puts the light above the "
        "black-body locus, leaving a green cast after white balance; moderate noise.",
        exposure_range=(0.03, 0.2),
        illuminant=(0.80, 1.0, 0.78),
        shot_noise_range=(3e-4, 5e-3),
    ),
    Domain(
        "night_point_lights",
        "A street at night: very dark, warm background light, a few bright lamps that saturate "
        "(high dynamic range), heavy noise.",
        exposure_range=(0.005, 0.04),
        illuminant=illuminant_from_cct(3200.0, strength=0.5),
        shot_noise_range=(3e-3, 1.2e-2),
        n_lights=(2, 5),
        light_intensity=(1.5, 12.0),
        light_radius=(0.01, 0.035),
        light_rgb=(1.0, 0.72, 0.38),
    ),
    Domain(
        "randomized",
        "Augmentation: a random light colour around neutral, exposure from 1/100 to 1/3, noise over "
        "the whole range of Brooks et al. (2019).",
        exposure_range=(0.01, 0.3),
        illuminant=(1.0, 1.0, 1.0),
        illuminant_jitter=0.3,
        shot_noise_range=BROOKS_SHOT_RANGE,
    ),
]}


def get_domain(domain) -> Domain:
    """Return a :class:`Domain` given one or its name (a key of :data:`DOMAINS`)."""
    if isinstance(domain, Domain):
        return domain
    if isinstance(domain, str) and domain in DOMAINS:
        return DOMAINS[domain]
    raise ValueError(f"Unknown domain {domain!r}. Choose one of: {', '.join(DOMAINS)}, "
                     f"or pass a Domain(...) of your own.")
