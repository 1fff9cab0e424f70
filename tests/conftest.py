"""Test-suite setup. Runs before any test module imports torch or matplotlib.

- ``LOWLIGHT_PROFILE=smoke``: every notebook (papermill, nbval) and ``get_profile("auto")`` use the
  seconds-long profile; nbval cannot inject parameters, so the environment variable carries it.
- ``MPLBACKEND=Agg``: no windows, in this process and in the notebook kernels it starts.
- Under pytest-xdist each worker gets an equal share of the CPU threads, so parallel workers and
  their kernels do not oversubscribe the cores.
"""
import os

os.environ["LOWLIGHT_PROFILE"] = "smoke"
os.environ["MPLBACKEND"] = "Agg"
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, workers)))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_pairs():
    """16 seeded (low, high) pairs of 3x32x32 images: high is a smooth scene, low a dim copy."""
    import torch

    g = torch.Generator().manual_seed(0)
    base = torch.rand(16, 3, 4, 4, generator=g)
    high = torch.nn.functional.interpolate(base, size=32, mode="bilinear", align_corners=False)
    low = (0.2 * high + 0.01 * torch.rand(high.shape, generator=g)).clamp(0, 1)
    return low, high
