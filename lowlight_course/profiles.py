"""Run profiles: how big each notebook's data and training are.

``smoke`` runs in seconds (CI), ``cpu`` fits a laptop (each notebook at most 3 minutes on 2 cores),
``gpu`` is full size. ``auto`` reads the ``LOWLIGHT_PROFILE`` environment variable first (the test
suite sets it to ``smoke``, since nbval cannot inject parameters), then picks ``gpu`` where CUDA is
available and ``cpu`` otherwise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

__all__ = ["Profile", "PROFILES", "get_profile", "ENV_VAR"]

ENV_VAR = "LOWLIGHT_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes a notebook derives its work from.

    Attributes:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        image_size: side of the square training crops, in pixels.
        train_pairs: number of (low, high) training pairs.
        eval_pairs: number of held-out pairs used for measurements.
        steps: optimiser steps per training run.
        batch_size: pairs per step.
        seeds: how many seeds a multi-seed experiment uses.
        sweep_points: grid points per axis in sweeps (weights, bandwidths, ...).
        device: ``"cuda"`` or ``"cpu"``: where ``fit`` trains under ``device="auto"``.
    """

    name: str
    image_size: int
    train_pairs: int
    eval_pairs: int
    steps: int
    batch_size: int
    seeds: int
    sweep_points: int
    device: str = "cpu"

    def scaled(self, **changes) -> "Profile":
        """A copy with some fields changed (for a notebook that needs, say, fewer steps)."""
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", image_size=32, train_pairs=16, eval_pairs=8, steps=60, batch_size=8,
                     seeds=2, sweep_points=3),
    "cpu": Profile("cpu", image_size=64, train_pairs=96, eval_pairs=16, steps=300, batch_size=16,
                   seeds=3, sweep_points=4),
    "gpu": Profile("gpu", image_size=128, train_pairs=512, eval_pairs=64, steps=2000, batch_size=32,
                   seeds=5, sweep_points=6, device="cuda"),
}


def get_profile(name: str = "auto") -> Profile:
    """Return the :class:`Profile` called ``name`` (``"auto"``, ``"smoke"``, ``"cpu"``, ``"gpu"``).

    ``"auto"`` honours ``$LOWLIGHT_PROFILE`` and otherwise picks ``gpu`` when CUDA is available.
    A ``cpu`` or ``smoke`` profile still trains on the GPU when one is present.
    """
    if not isinstance(name, str):
        raise TypeError(f"profile must be a string such as 'auto' or 'smoke', got {name!r}.")
    key = name.strip().lower()
    if key == "auto":
        key = os.environ.get(ENV_VAR, "").strip().lower() or ("gpu" if torch.cuda.is_available() else "cpu")
    if key not in PROFILES:
        source = f" (read from ${ENV_VAR})" if name.strip().lower() == "auto" else ""
        raise ValueError(f"Unknown profile {key!r}{source}. Choose one of: auto, {', '.join(PROFILES)}.")
    profile = PROFILES[key]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return replace(profile, device=device)
