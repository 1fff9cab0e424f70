"""The images every probe measures on: real photographs under the course's low-light simulation, seeded.

:func:`probe_data` returns a :class:`ProbeData` with ``target`` (clean photo crops), ``low`` (the same
under :func:`lowlight_course.data.simulate_low_light`, outdoor daylight), ``pred`` (a plausible,
imperfect enhancement: ``clamp(0.9 target + 0.03 + N(0, 0.04^2))``, the pair of
:func:`lowlight_course.pitfalls.sample_pair`) and an unrelated random pair (``a`` uniform, ``b`` an independent uniform squared, so their
histograms differ too; Chapter 2 used two uniform images).
Full audit: 64 x 64, photos astronaut and coffee; quick: 48 x 48, astronaut only.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["ProbeData", "probe_data", "FULL", "QUICK"]

FULL = {"size": 64, "photos": ("astronaut", "coffee")}
QUICK = {"size": 48, "photos": ("astronaut",)}


@dataclass(frozen=True)
class ProbeData:
    """Probe images, all (B, 3, S, S) float32 in [0, 1] (``unrelated_*``: (1, 3, S, S))."""

    target: torch.Tensor
    low: torch.Tensor
    pred: torch.Tensor
    unrelated_a: torch.Tensor
    unrelated_b: torch.Tensor
    noise: torch.Tensor  # a fixed N(0, 1) field shaped like target
    photos: tuple
    size: int
    seed: int


@functools.lru_cache(maxsize=8)
def _build(size: int, photos: tuple, seed: int) -> ProbeData:
    from ..data import load_image, simulate_low_light

    target = torch.stack([load_image(name, size) for name in photos])
    low = simulate_low_light(target, "outdoor_daylight", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    pred = (0.9 * target + 0.03 + 0.04 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    a = torch.rand((1, 3, size, size), generator=gen)
    b = torch.rand((1, 3, size, size), generator=gen) ** 2  # independent of a, and a different histogram
    noise = torch.randn(target.shape, generator=gen)
    return ProbeData(target, low, pred, a, b, noise, photos, size, seed)


def probe_data(quick: bool = False, seed: int = 0) -> ProbeData:
    """The probe images for a full (``quick=False``) or quick audit; cached, so callers must not modify them."""
    cfg = QUICK if quick else FULL
    return _build(cfg["size"], cfg["photos"], int(seed))
