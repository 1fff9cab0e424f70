"""Speed and memory of the package's SSIM and soft histogram against straightforward versions.

Run from the repository root::

    python benchmarks/bench_losses.py                  # CPU, full run (2-3 minutes on 2 cores)
    python benchmarks/bench_losses.py --quick          # CPU, fewer repeats
    python benchmarks/bench_losses.py --device cuda --json build/bench_losses_cuda.json

``--device cuda`` (see :func:`main_cuda`) times SSIM and the soft histogram at 8 x 3 x 256 x 256 and
at a training size, 32 x 3 x 128 x 128, in float32 and under autocast, against every peer that
imports (pytorch-msssim, kornia, piq, fused-ssim), with ``torch.cuda.synchronize`` around each
timed call, prints a table and writes it as JSON (``--json``). The CPU run below is unchanged.

Every timing is forward + backward of a scalar loss on a batch of 8 x 3 x 256 x 256 images, with
``torch.set_num_threads(2)``, median of several repeats after warm-up. The two contenders of each
comparison are timed alternately (A, B, A, B, ...) so that a busy machine slows both alike.

* SSIM: ``lowlight_course.losses.ssim.ssim`` (stacked separable filtering, analytic backward)
  against ``pytorch_msssim.ssim`` (win_size 11, win_sigma 1.5, data_range 1, size_average) and
  against our own plain-autograd path. The values must agree to 1e-5.
* Soft histogram: ``soft_histogram`` (visits only the bins within 4 bandwidths of each pixel)
  against :func:`naive_soft_histogram` below, which evaluates the same integrated-Gaussian kernel
  for every pixel at every bin edge: a ``pixels x (bins + 1)`` tensor. Both give the same
  histogram (up to the < 6.4e-5 of kernel mass the sparse version drops), checked here.

Peak memory: the process's maximum resident set size (``resource.getrusage``) is recorded after
the sparse histogram runs and again after the naive one (it only grows, so the order matters).
The largest tensor of the sparse version is measured (a dispatch mode sees every ATen output,
backward included); the naive version's is given analytically (pixels x (bins + 1) float32).
"""
from __future__ import annotations

import argparse
import math
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lowlight_course.losses.histogram import soft_histogram  # noqa: E402
from lowlight_course.losses.ssim import ssim  # noqa: E402


def naive_soft_histogram(x: torch.Tensor, bins: int, bandwidth: float | None = None) -> torch.Tensor:
    """The same soft histogram as ``soft_histogram`` (values in [0, 1]), the obvious way.

    Broadcasts every pixel against every bin edge: the tensors are (B, C, pixels, bins + 1).
    """
    width = 1.0 / bins
    s = 0.5 * width if bandwidth is None else bandwidth
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=x.dtype)
    v = x.clamp(0.0, 1.0).flatten(2).unsqueeze(-1)                  # (B, C, N, 1)
    cdf = 0.5 * (1.0 + torch.erf((edges - v) / (s * math.sqrt(2.0))))  # (B, C, N, bins + 1)
    lower = torch.cat([torch.zeros_like(cdf[..., :1]), cdf[..., 1:-1]], dim=-1)   # open ends
    upper = torch.cat([cdf[..., 1:-1], torch.ones_like(cdf[..., :1])], dim=-1)
    counts = (upper - lower).sum(dim=2)                              # (B, C, bins)
    return counts / counts.sum(dim=-1, keepdim=True)


def maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if platform.system() == "Darwin" else rss / 1024


def largest_tensor_mib(fn) -> float:
    """Size of the largest tensor any ATen op produces while ``fn`` runs (forward and backward)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Largest(TorchDispatchMode):
        nbytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    Largest.nbytes = max(Largest.nbytes, t.numel() * t.element_size())
            return out

    with Largest():
        fn()
    return Largest.nbytes / 2 ** 20


def time_alternating(fns: dict, repeats: int, warmup: int) -> dict:
    """Median seconds of each zero-argument function, timed in alternation."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --device cuda: run the CUDA benchmark's code on the CPU at 2 x 3 x 32 x 32 "
                             "(checks the plumbing, measures nothing)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        from bench_losses_cuda import main_cuda

        if args.dry_run:
            return main_cuda(json_path=args.json, device="cpu", sizes=[(2, 3, 32, 32)], repeats=1)
        return main_cuda(quick=args.quick, json_path=args.json)
    torch.manual_seed(0)
    rep_fast, rep_slow = (5, 1) if args.quick else (15, 3)

    shape = (8, 3, 256, 256)
    pred = torch.rand(shape).mul_(0.8).add_(0.1).requires_grad_(True)
    target = (pred.detach() + 0.1 * torch.randn(shape)).clamp_(0, 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {shape}")
    results = {}

    # ---------------------------------------------------------------- SSIM
    from pytorch_msssim import ssim as msssim

    def ours():
        pred.grad = None
        (1 - ssim(pred, target)).backward()

    def ours_conv():
        pred.grad = None
        (1 - ssim(pred, target, filter="conv")).backward()

    def ours_autograd():
        pred.grad = None
        (1 - ssim(pred, target, _impl="autograd")).backward()

    def theirs():
        pred.grad = None
        (1 - msssim(pred, target, data_range=1.0, win_size=11, win_sigma=1.5, size_average=True)).backward()

    with torch.no_grad():
        v_ours = float(ssim(pred, target))
        v_theirs = float(msssim(pred, target, data_range=1.0, win_size=11, win_sigma=1.5, size_average=True))
    diff = abs(v_ours - v_theirs)
    print(f"\nSSIM value: ours {v_ours:.7f}, pytorch-msssim {v_theirs:.7f}, |diff| {diff:.2e}")
    assert diff < 1e-5, "SSIM values disagree"
    t = time_alternating({"ours": ours, "pytorch_msssim": theirs, "ours_conv": ours_conv,
                          "ours_autograd": ours_autograd}, repeats=rep_fast, warmup=3)
    for k, v in t.items():
        print(f"  {k:<16s} forward+backward median {v * 1e3:8.1f} ms")
    ratio = t["pytorch_msssim"] / t["ours"]
    print(f"  speed-up vs pytorch-msssim: {ratio:.2f}x (goal >= 2x); "
          f"vs our conv formulation: {t['ours_conv'] / t['ours']:.2f}x; "
          f"vs our autograd path: {t['ours_autograd'] / t['ours']:.2f}x")
    results["ssim"] = dict(t, speedup=ratio)

    # ---------------------------------------------------------------- soft histogram
    x = torch.rand(shape, requires_grad=True)
    w = {b: torch.randn(shape[0], shape[1], b) for b in (16, 256)}

    def run_sparse(bins):
        x.grad = None
        (soft_histogram(x, bins) * w[bins]).sum().backward()

    def run_naive(bins):
        x.grad = None
        (naive_soft_histogram(x, bins) * w[bins]).sum().backward()

    pixels = math.prod(shape)
    rss_before = maxrss_mib()
    # Sparse first: the peak RSS only grows, so it is read before the naive version runs.
    sparse_t = {b: time_alternating({"s": lambda b=b: run_sparse(b)}, rep_fast, 2)["s"] for b in (16, 256)}
    rss_sparse = maxrss_mib()
    largest = {b: largest_tensor_mib(lambda b=b: run_sparse(b)) for b in (16, 256)}
    naive_t = {b: time_alternating({"n": lambda b=b: run_naive(b)}, rep_slow, 0)["n"] for b in (16, 256)}
    rss_naive = maxrss_mib()
    print()
    for bins in (16, 256):
        with torch.no_grad():
            err = float((soft_histogram(x, bins) - naive_soft_histogram(x, bins)).abs().max())
        ratio = naive_t[bins] / sparse_t[bins]
        big = pixels * (bins + 1) * 4 / 2 ** 20
        print(f"Soft histogram, {bins:3d} bins: sparse {sparse_t[bins] * 1e3:7.1f} ms, "
              f"naive {naive_t[bins] * 1e3:8.1f} ms, speed-up {ratio:6.1f}x, max |sparse - naive| {err:.1e}")
        print(f"  largest tensor: sparse {largest[bins]:5.1f} MiB (measured), "
              f"naive {big:6.0f} MiB (pixels x {bins + 1} float32)")
        assert err < 1e-4, "soft histograms disagree"
        results[f"hist{bins}"] = dict(sparse=sparse_t[bins], naive=naive_t[bins], speedup=ratio)
    print(f"Peak RSS: {rss_before:.0f} MiB before the histograms, {rss_sparse:.0f} MiB after the sparse "
          f"runs, {rss_naive:.0f} MiB after the naive runs (input batch: {pixels * 4 / 2 ** 20:.0f} MiB)")
    print(f"Goals: SSIM >= 2x -> {'met' if results['ssim']['speedup'] >= 2 else 'MISSED'}; "
          f"histogram >= 50x at 256 bins -> {'met' if results['hist256']['speedup'] >= 50 else 'MISSED'}")
    if args.json:
        write_json(args.json, dict(device="cpu", torch=torch.__version__, threads=args.threads,
                                   shape=list(shape), results=results))
    return results


def write_json(path, data) -> None:
    """Write ``data`` to ``path`` (folders made as needed)."""
    import json

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"(written to {out})")


if __name__ == "__main__":
    main()
