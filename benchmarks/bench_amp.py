"""Mixed precision on versus off: ``fit``'s speed and the trained model's quality (issue 15, item 4).

    python benchmarks/bench_amp.py                    # CUDA: gpu-profile sizes
    python benchmarks/bench_amp.py --dry-run          # the same code on the CPU, tiny sizes
    python benchmarks/bench_amp.py --json build/amp.json

Trains ``UNet(base=16, depth=2)`` (the chapters' model) twice from the same initial weights on the
same seeded pairs (``make_pairs``, outdoor daylight) with L1 + 0.5 (1 - SSIM): once with
``amp=True`` (bfloat16 autocast where the GPU supports it, else float16 with a GradScaler) and once
with ``amp=False``; both timed after a warm-up run, steps/s and held-out PSNR / SSIM compared.
Tolerance stated here and checked: PSNR within 0.5 dB, SSIM within 0.01 (a seeded run is not
bit-identical across precisions, so the two models differ by training noise, not by a bias).
The last line: ``amp speed-up: X (amp A steps/s, float32 B steps/s; PSNR a vs b dB)``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowlight_course.data import make_pairs  # noqa: E402
from lowlight_course.losses import l1, ssim  # noqa: E402
from lowlight_course.metrics import psnr  # noqa: E402
from lowlight_course.models import UNet, seed_everything  # noqa: E402
from lowlight_course.train import fit, predict  # noqa: E402

PSNR_TOL_DB, SSIM_TOL = 0.5, 0.01


def loss_fn(pred, target, low):
    return {"l1": l1(pred, target), "ssim": 0.5 * (1 - ssim(pred, target))}


def train(amp, data, steps, batch, device):
    seed_everything(0)
    model = UNet(base=16, depth=2)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    h = fit(model, loss_fn, data, steps=steps, batch_size=batch, lr=2e-3, device=device, amp=amp, seed=0,
            progress=False, grad_norm_every=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, steps / (time.perf_counter() - t0), h


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="the same code on the CPU with tiny sizes")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.dry_run:
        device, size, n, batch, steps = torch.device("cpu"), 32, 16, 4, args.steps or 3
    else:
        if not torch.cuda.is_available():
            raise SystemExit("CUDA is not available here (use --dry-run to check the plumbing).")
        device, size, n, batch, steps = torch.device("cuda"), 128, 256, 32, args.steps or 300
    low, high = make_pairs(n, size=size, seed=0)
    vlow, vhigh = make_pairs(max(8, n // 8), size=size, seed=1)
    train(True, (low, high), 3, batch, device)          # warm-up: kernels, cuDNN, allocator
    rows = {}
    for amp in (True, False):
        model, rate, h = train(amp, (low, high), steps, batch, device)
        out = predict(model, vlow, device=device)
        rows["amp" if amp else "float32"] = dict(
            steps_per_s=rate, amp_dtype=h.extra.get("amp"), final_loss=h.loss[-1],
            psnr=float(psnr(out.clamp(0, 1), vhigh)), ssim=float(ssim(out.clamp(0, 1), vhigh)))
    a, f = rows["amp"], rows["float32"]
    speedup = a["steps_per_s"] / f["steps_per_s"]
    within = abs(a["psnr"] - f["psnr"]) <= PSNR_TOL_DB and abs(a["ssim"] - f["ssim"]) <= SSIM_TOL
    report = dict(device=str(device), gpu=torch.cuda.get_device_name() if device.type == "cuda" else None,
                  torch=torch.__version__, steps=steps, batch=batch, size=size, rows=rows, speedup=speedup,
                  tolerance=dict(psnr_db=PSNR_TOL_DB, ssim=SSIM_TOL), within_tolerance=within)
    for k, r in rows.items():
        print(f"{k:<8s} ({r['amp_dtype'] or 'float32'}): {r['steps_per_s']:.2f} steps/s, final loss "
              f"{r['final_loss']:.4f}, held-out PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}")
    print(f"within tolerance (PSNR {PSNR_TOL_DB} dB, SSIM {SSIM_TOL}): {within}")
    print(f"amp speed-up: {speedup:.2f}x (amp {a['steps_per_s']:.2f} steps/s, float32 {f['steps_per_s']:.2f} "
          f"steps/s; PSNR {a['psnr']:.2f} vs {f['psnr']:.2f} dB; device {device.type})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
