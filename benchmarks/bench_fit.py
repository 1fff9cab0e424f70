"""What ``fit`` costs against a plain PyTorch loop (issue 15, item 1).

Run from the repository root::

    python benchmarks/bench_fit.py                 # CPU, and CUDA where present
    python benchmarks/bench_fit.py --quick         # fewer steps and repeats
    python benchmarks/bench_fit.py --device cpu    # one device only

Both sides train the same model (``UNet(base=8, depth=2)``, the same initial weights), with the
same loss (a dict ``{"mse", "ssim"}``: the package's ``mse`` and ``0.5 * (1 - SSIM)``), data
(32 pairs of 3 x 64 x 64, batch 8, the same batch order), optimiser (Adam, lr 1e-3) and number of
steps. ``fit`` runs with ``progress=False`` (the bar is not what is measured), once with
``grad_norm_every`` at its default (10) and once with it off (0). The plain loop is the loop a
learner would write: batch, forward, loss, ``backward``, ``step``, no reads of the loss.
The two are timed alternately (plain, fit, plain, fit, ...) so that load slows both alike; the
median of the repeats is reported. The plain loop's weights must equal ``fit``'s (gradient norms
off) bit for bit on the CPU: the benchmark checks that it compares like with like.

The last line is ``fit overhead: X% (fit A steps/s, plain loop B steps/s, device D)``, for the
last device measured with gradient norms off (the goal: under 10%); the lines above give every
device and the cost of gradient norms. Give ``cat /proc/loadavg`` beside any figure you quote.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowlight_course.losses import SSIMLoss, mse  # noqa: E402
from lowlight_course.models import UNet, seed_everything  # noqa: E402
from lowlight_course.train import fit  # noqa: E402

SSIM = SSIMLoss()


def loss_fn(pred, target, low):
    return {"mse": mse(pred, target), "ssim": 0.5 * SSIM(pred, target)}


def make_data(n=32, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 8, 8, generator=g)
    high = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    low = (0.2 * high + 0.01 * torch.rand(high.shape, generator=g)).clamp(0, 1)
    return low, high


def make_model(device):
    seed_everything(0)
    return UNet(base=8, depth=2).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(model, data, steps, batch_size, device, seed=0):
    """The loop a learner writes; same batch order as fit (torch.randperm with a seeded generator)."""
    low_all, high_all = (t.to(device) for t in data)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n = low_all.shape[0]
    order, pos = torch.randperm(n, generator=gen), 0
    model.train()
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        low, high = low_all[idx.to(device)], high_all[idx.to(device)]
        terms = loss_fn(model(low).float(), high, low)
        total = torch.stack([t.float() for t in terms.values()]).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    model.to("cpu")


def run_fit(model, data, steps, batch_size, device, grad_norm_every):
    fit(model, loss_fn, data, steps=steps, batch_size=batch_size, lr=1e-3, device=device, amp=False,
        seed=0, progress=False, grad_norm_every=grad_norm_every)


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def same_weights(device, data, steps, batch_size):
    a, b = make_model("cpu"), make_model("cpu")
    plain_loop(a.to(device), data, steps, batch_size, device)
    run_fit(b, data, steps, batch_size, device, 0)
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def bench(device, steps, repeats, batch_size=8):
    data = make_data()
    results = {"plain": [], "fit": [], "fit+gn": []}
    # warm-up (allocator, kernels, cuDNN autotuning)
    plain_loop(make_model(device), data, 3, batch_size, device)
    run_fit(make_model("cpu"), data, 3, batch_size, device, 10)
    for _ in range(repeats):
        m = make_model(device)
        results["plain"].append(timed(lambda: plain_loop(m, data, steps, batch_size, device), device))
        m = make_model("cpu")
        results["fit"].append(timed(lambda: run_fit(m, data, steps, batch_size, device, 0), device))
        m = make_model("cpu")
        results["fit+gn"].append(timed(lambda: run_fit(m, data, steps, batch_size, device, 10), device))
    rate = {k: steps / statistics.median(v) for k, v in results.items()}
    return rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps or (10 if args.quick else 20)
    repeats = args.repeats or (2 if args.quick else 3)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif args.device == "cuda":
        sys.exit("CUDA is not available here.")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print(f"torch {torch.__version__}, {args.threads} CPU threads, {steps} steps x {repeats} repeats, "
          f"load average {' '.join(load)}")
    last = None
    for dev in devices:
        if dev.type == "cpu":
            ok = same_weights(dev, make_data(), 5, 8)
            print(f"cpu: plain loop and fit (gradient norms off) give identical weights: {ok}")
            if not ok:
                sys.exit("the plain loop does not train like fit: the comparison would be unfair")
        r = bench(dev, steps, repeats)
        gn_cost = r["fit"] / r["fit+gn"] - 1
        print(f"{dev.type}: plain loop {r['plain']:.2f} steps/s; fit {r['fit']:.2f} steps/s "
              f"(gradient norms off); fit {r['fit+gn']:.2f} steps/s (grad_norm_every=10: "
              f"{100 * gn_cost:+.1f}% time)")
        last = (dev, r)
    dev, r = last
    overhead = r["plain"] / r["fit"] - 1
    print(f"fit overhead: {100 * overhead:.1f}% (fit {r['fit']:.2f} steps/s, plain loop {r['plain']:.2f} "
          f"steps/s, device {dev.type})")


if __name__ == "__main__":
    main()
