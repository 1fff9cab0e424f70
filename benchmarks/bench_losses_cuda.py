"""The loss benchmark on CUDA: SSIM and the soft histogram against their peers, in one run (issue 15).

Called by ``python benchmarks/bench_losses.py --device cuda [--quick] [--json PATH]``.

For each size (8 x 3 x 256 x 256, and 32 x 3 x 128 x 128, a training batch of the ``gpu`` profile)
and each precision (``float32``; ``autocast``: inputs in the autocast dtype, bfloat16 where the GPU
supports it, else float16, and the call inside ``torch.autocast("cuda")``), every contender runs
forward + backward of a scalar loss; contenders are timed in alternation, each call between two
``torch.cuda.synchronize()``, median of the repeats after warm-up.

SSIM contenders: ours (``filter="auto"``, and each formulation ``shift`` / ``conv`` / plain
autograd, so the per-device choice is measured), ``pytorch_msssim.ssim``, ``kornia.metrics.ssim``
(``padding="valid"``), ``piq.ssim`` (``downsample=False``) and ``fused_ssim`` (``padding="valid"``),
each only if it imports (none but pytorch-msssim is a course dependency: kornia and piq pull their
own torch, so they are installed on the GPU machine only, never into the course's environment).
Every contender's SSIM value is printed with its difference from ours; ours must equal
pytorch-msssim to 1e-5 in float32.

Histogram contenders: ours (16 and 256 bins), the naive pixels x bins version of
``bench_losses.py``, and ``kornia.enhance.histogram`` (a Gaussian-kernel density at the bin
centres, not the same estimate: timed, not compared in value).
"""
from __future__ import annotations

import importlib
import statistics
import time

import torch

from lowlight_course.losses.histogram import soft_histogram
from lowlight_course.losses.ssim import default_filter, ssim

SIZES = [(8, 3, 256, 256), (32, 3, 128, 128)]


def _optional(name):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001  (absent, or built for another torch)
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:120]


# Each peer's SSIM as f(pred, target) -> scalar, built from its imported module: 11-tap Gaussian window,
# sigma 1.5, data range 1, 'valid' filtering where the peer offers it.
PEER_SSIM = {
    "pytorch_msssim": lambda m: lambda p, t: m.ssim(p, t, data_range=1.0, win_size=11, win_sigma=1.5,
                                                    size_average=True),
    "kornia": lambda k: lambda p, t: k.metrics.ssim(p, t, 11, max_val=1.0, padding="valid").mean(),
    "piq": lambda q: lambda p, t: q.ssim(p, t, data_range=1.0, kernel_size=11, kernel_sigma=1.5, downsample=False),
    "fused_ssim": lambda f: lambda p, t: f.fused_ssim(p, t, padding="valid"),
}


def ssim_contenders() -> tuple[dict, dict]:
    """``{name: f(pred, target) -> scalar SSIM}`` for ours and every importable peer; ``{name: why not}``."""
    fns = {
        "ours": lambda p, t: ssim(p, t),
        "ours_shift": lambda p, t: ssim(p, t, filter="shift"),
        "ours_conv": lambda p, t: ssim(p, t, filter="conv"),
        "ours_autograd": lambda p, t: ssim(p, t, _impl="autograd"),
    }
    missing = {}
    for name, make in PEER_SSIM.items():
        module = _optional(name)
        if isinstance(module, str):
            missing[name] = module
        else:
            fns[name] = make(module)
    return fns, missing


def naive_histogram(x, bins):
    from bench_losses import naive_soft_histogram

    return naive_soft_histogram(x, bins)


def histogram_contenders() -> tuple[dict, dict]:
    fns = {"ours_16": lambda x: soft_histogram(x, 16), "ours_256": lambda x: soft_histogram(x, 256),
           "naive_16": lambda x: naive_histogram(x, 16), "naive_256": lambda x: naive_histogram(x, 256)}
    missing = {}
    k = _optional("kornia")
    if isinstance(k, str):
        missing["kornia"] = k
    else:
        def kornia_hist(x, bins, k=k):
            flat = x.flatten(0, 1).flatten(1)                      # (B * C, pixels)
            centres = (torch.arange(bins, device=x.device, dtype=flat.dtype) + 0.5) / bins
            bw = torch.tensor(0.5 / bins, device=x.device, dtype=flat.dtype)
            return k.enhance.histogram(flat, centres, bw)
        fns["kornia_16"] = lambda x: kornia_hist(x, 16)
        fns["kornia_256"] = lambda x: kornia_hist(x, 256)
    return fns, missing


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_alternating(fns: dict, device, repeats: int, warmup: int) -> dict:
    """Median seconds of each zero-argument function (alternated, synchronised); errors recorded."""
    times, errors = {k: [] for k in fns}, {}
    for _ in range(warmup):
        for k, f in fns.items():
            if k not in errors:
                try:
                    f()
                except Exception as exc:  # noqa: BLE001  (a peer failing under autocast is a result)
                    errors[k] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
    for _ in range(repeats):
        for k, f in fns.items():
            if k in errors:
                continue
            _sync(device)
            t0 = time.perf_counter()
            f()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    out = {k: {"ms": 1e3 * statistics.median(v)} for k, v in times.items() if v}
    out.update({k: {"error": e} for k, e in errors.items()})
    return out


def _amp_dtype(device):
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def bench_ssim(shape, device, precision, repeats, warmup):
    fns, missing = ssim_contenders()
    g = torch.Generator().manual_seed(0)
    base = torch.rand(shape, generator=g).mul_(0.8).add_(0.1)
    tgt = (base + 0.1 * torch.randn(shape, generator=g)).clamp_(0, 1)
    dtype = torch.float32 if precision == "float32" else _amp_dtype(device)
    pred = base.to(device, dtype).requires_grad_(True)
    target = tgt.to(device, dtype)
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if precision == "autocast" else \
        (lambda: torch.autocast(device.type, enabled=False))

    values = {}
    for k, f in fns.items():
        try:
            with torch.no_grad(), ctx():
                values[k] = float(f(pred, target))
        except Exception as exc:  # noqa: BLE001
            values[k] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]

    def step(f):
        def run():
            pred.grad = None
            with ctx():
                loss = 1 - f(pred, target)
            loss.backward()
        return run

    res = time_alternating({k: step(f) for k, f in fns.items()}, device, repeats, warmup)
    for k in fns:
        res.setdefault(k, {})["value"] = values[k]
        if isinstance(values[k], float) and isinstance(values.get("ours"), float):
            res[k]["diff_vs_ours"] = abs(values[k] - values["ours"])
    return res, missing


def bench_histogram(shape, device, precision, repeats, warmup):
    fns, missing = histogram_contenders()
    g = torch.Generator().manual_seed(1)
    dtype = torch.float32 if precision == "float32" else _amp_dtype(device)
    x = torch.rand(shape, generator=g).to(device, dtype).requires_grad_(True)
    w = {b: torch.randn(shape[0] * shape[1], b, generator=g).to(device) for b in (16, 256)}
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if precision == "autocast" else \
        (lambda: torch.autocast(device.type, enabled=False))

    def step(f, bins):
        def run():
            x.grad = None
            with ctx():
                h = f(x).reshape(-1, bins).float()
            (h * w[bins]).sum().backward()
        return run

    runs = {k: step(f, int(k.rsplit("_", 1)[1])) for k, f in fns.items()}
    if shape[0] * shape[2] * shape[3] > 8 * 256 * 256 and device.type == "cpu":
        runs = {k: v for k, v in runs.items() if not k.startswith("naive")}
    return time_alternating(runs, device, repeats, warmup), missing


def _fmt(r):
    if "error" in r:
        return f"failed ({r['error'][:60]})"
    value = r.get("value")
    v = f"  SSIM {value:.6f}" if isinstance(value, float) else ""
    d = f"  |diff| {r['diff_vs_ours']:.1e}" if "diff_vs_ours" in r else ""
    return f"{r['ms']:8.2f} ms{v}{d}"


def main_cuda(quick=False, json_path=None, device="cuda", sizes=None, repeats=None) -> dict:
    """Run the CUDA benchmark (``device="cpu"`` with tiny ``sizes``: the same code, for a dry run)."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here.")
    sizes = sizes or SIZES
    repeats = repeats or (5 if quick else 20)
    warmup = 1 if repeats <= 2 else 3
    facts = dict(torch=torch.__version__, cuda=torch.version.cuda, device=str(device),
                 gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                 autocast_dtype=str(_amp_dtype(device)).replace("torch.", ""),
                 ssim_auto_filter=default_filter(device), repeats=repeats)
    print(f"torch {facts['torch']} (CUDA {facts['cuda']}), {facts['gpu'] or device}, autocast "
          f"{facts['autocast_dtype']}, SSIM filter='auto' -> {facts['ssim_auto_filter']}, {repeats} repeats")
    results, missing_all = [], {}
    for shape in sizes:
        for precision in ("float32", "autocast"):
            s, missing = bench_ssim(shape, device, precision, repeats, warmup)
            h, missing_h = bench_histogram(shape, device, precision, repeats, warmup)
            missing_all.update(missing)
            missing_all.update({f"{k} (histogram)": v for k, v in missing_h.items()})
            row = dict(shape=list(shape), precision=precision, ssim=s, histogram=h)
            ref = s.get("pytorch_msssim", {})
            if "ms" in ref and "ms" in s.get("ours", {}):
                row["ssim_speedup_vs_pytorch_msssim"] = ref["ms"] / s["ours"]["ms"]
            results.append(row)
            print(f"\n{'x'.join(map(str, shape))}, {precision}: forward + backward, median")
            for k, r in s.items():
                print(f"  SSIM  {k:<15s} {_fmt(r)}")
            for k, r in h.items():
                print(f"  hist  {k:<15s} {_fmt(r)}")
            if "ssim_speedup_vs_pytorch_msssim" in row:
                print(f"  SSIM ours vs pytorch-msssim: {row['ssim_speedup_vs_pytorch_msssim']:.2f}x faster")
            if precision == "float32" and isinstance(ref.get("value"), float):
                assert ref["diff_vs_ours"] < 1e-5, f"SSIM differs from pytorch-msssim by {ref['diff_vs_ours']:.1e}"
    if missing_all:
        print("\nnot measured (did not import): " + "; ".join(f"{k}: {v}" for k, v in missing_all.items()))
    ratios = [r["ssim_speedup_vs_pytorch_msssim"] for r in results if "ssim_speedup_vs_pytorch_msssim" in r]
    if ratios:
        print(f"Goal SSIM >= 2x pytorch-msssim at every size and precision: min {min(ratios):.2f}x -> "
              f"{'met' if min(ratios) >= 2 else 'MISSED'}; never slower: {'yes' if min(ratios) >= 1 else 'NO'}")
    report = dict(facts, results=results, missing=missing_all)
    if json_path:
        from bench_losses import write_json

        write_json(json_path, report)
    return report


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main_cuda(quick="--quick" in sys.argv)
