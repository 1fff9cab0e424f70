"""Full and quick audit times (a benchmark, not a test): the article's combined loss, the course's L1 + SSIM, MSE.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_audit.py

Targets (issue 16): a full audit <= 30 s and --quick <= 5 s on 2 CPU cores. Prints the load beside the times.
"""
import os
import time

import torch

from lowlight_course import audit
from lowlight_course.audit import examples as E
from lowlight_course.losses import mse


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    audit(mse, quick=True)  # warm-up (imports, probe data)
    for name, loss in [("article combined", E.article_combined), ("course L1 + SSIM", E.course_l1_ssim), ("MSE", mse)]:
        for quick in (False, True):
            t0 = time.perf_counter()
            r = audit(loss, quick=quick)
            dt = time.perf_counter() - t0
            print(f"{name:18s} {'quick' if quick else 'full ':5s} {dt:6.2f} s  ({len(r)} rows, {r.settings['calls']} calls)")
    with open("/proc/loadavg") as fh:
        print(f"threads {torch.get_num_threads()}, load average {fh.read().split()[0]}")


if __name__ == "__main__":
    main()
