"""The prepared GPU run (issue 15): every measurement in one script, within about 8 minutes.

    python benchmarks/gpu_run.py --out "$OUT"            # on the GPU machine
    python benchmarks/gpu_run.py --dry-run --out build/gpu_dry   # here: the plumbing, on the CPU

Written for the GPU machine as it is: Python 3.12 with its own torch (2.11), no Jupyter, no package
registry. Nothing is installed from the network; the package runs from the checkout
(``PYTHONPATH``). A folder of wheels carried along (``--wheels DIR``, default ``build/wheels``,
made by ``benchmarks/gpu_wheels.sh``) supplies, offline, each distribution that does not import there
(never a torch). Then:

1. ``preflight``: Python, torch, CUDA, the GPU, and which of the course's imports are missing.
2. The benchmarks, one after another while the GPU is otherwise idle: ``bench_losses.py --device
   cuda --quick`` (SSIM and the soft histogram against the peers that import), ``bench_fit.py
   --device cuda --quick`` (fit against a plain loop), ``bench_amp.py`` (mixed precision on vs off).
3. At the same time on the one GPU: every lecture and solution under the ``gpu`` profile, run as
   scripts by ``nb_script.py`` (all at once by default, ``--jobs``), and the unit tests (CUDA ones
   included) that need no Jupyter, the GPU code paths' first.
4. ``summary.json`` and ``summary.md``: per notebook ok, seconds, peak GPU memory and the headline
   numbers; the loss table; fit's overhead line; the AMP speed-up; the tests' tally.

Every step has a time limit (``--budget`` seconds in all, default 480) and writes its output under
``--out`` as it goes, so a run cut short still leaves what finished. ``--dry-run`` runs the same
steps on the CPU with the ``smoke`` profile and tiny benchmark sizes (``CUDA_VISIBLE_DEVICES=""``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

#: Imports the course and its tests use (distribution name for the wheels list in brackets).
IMPORTS = {"numpy": "numpy", "matplotlib": "matplotlib", "skimage": "scikit-image", "PIL": "pillow",
           "tqdm": "tqdm", "pytorch_msssim": "pytorch-msssim", "pytest": "pytest", "IPython": "ipython",
           "ipywidgets": "ipywidgets", "scipy": "scipy", "kornia": "kornia", "piq": "piq",
           "fused_ssim": "fused-ssim"}

#: Unit-test modules that need Jupyter, a browser, a hub or the CLI's notebook runs: not run there.
NEEDS_JUPYTER = {"test_notebooks.py", "test_nbgrader.py", "test_exercises_sync.py", "test_build_exercises_safety.py",
                 "test_cli.py", "test_cli_safety.py", "test_get_course.py", "test_book_build.py",
                 "test_course_files.py", "test_setup_cell.py", "test_environment.py"}


#: Run first, so a run cut short has the tests of the GPU code paths (CUDA ones included).
FIRST_TESTS = {"test_precision.py", "test_ssim.py", "test_devices.py", "test_profiles.py", "test_histogram.py",
               "test_train.py", "test_train_golden.py", "test_train_recovery.py", "test_train_groups.py",
               "test_train_arguments.py", "test_train_checkpoint.py"}


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))


def unit_tests() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name not in NEEDS_JUPYTER]


def _env(dry: bool, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg", OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
               PYTHONUNBUFFERED="1")
    if dry:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def step(name, cmd, out: Path, env, timeout) -> dict:
    """Run ``cmd``; stdout+stderr to ``out/<name>.txt``; return rc, seconds and the last lines."""
    t0 = time.perf_counter()
    log = out / f"{name}.txt"
    with open(log, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=max(1, timeout)).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = round(time.perf_counter() - t0, 1)
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    print(f"[{name}] rc={rc} in {seconds} s: {tail[-1] if tail else ''}", flush=True)
    return dict(name=name, rc=rc, seconds=seconds, tail=tail, log=log.name)


def _probe(env) -> dict:
    probe = ("import importlib, json, torch\n"
             f"mods = {sorted(IMPORTS)!r}\n"
             "miss = {}\n"
             "for m in mods:\n"
             "    try: importlib.import_module(m)\n"
             "    except Exception as e: miss[m] = type(e).__name__ + ': ' + str(e)[:100]\n"
             "gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None\n"
             "props = torch.cuda.get_device_properties(0) if gpu else None\n"
             "print(json.dumps(dict(torch=torch.__version__, cuda=torch.version.cuda, gpu=gpu,"
             " sms=getattr(props, 'multi_processor_count', None),"
             " memory_gib=round(props.total_memory / 2**30, 1) if props else None,"
             " bf16=torch.cuda.is_bf16_supported() if gpu else None, missing=miss)))\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return dict(probe_error=(r.stdout + r.stderr)[-2000:], missing={})


def preflight(out: Path, wheels: Path | None, env) -> dict:
    """Facts about the machine; installs each missing distribution from ``wheels`` (offline, one at a
    time, so one that cannot install, such as piq without torchvision, does not stop the others;
    pip never replaces the machine's torch: no torch wheel is carried)."""
    facts = dict(python=platform.python_version(), platform=platform.platform(), cpu_count=os.cpu_count())
    facts.update(_probe(env))
    if wheels is not None and wheels.is_dir() and any(wheels.glob("*.whl")) and facts.get("missing"):
        installed = {}
        for dist in sorted({IMPORTS[m] for m in facts["missing"]}):
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                                dist], capture_output=True, text=True)
            installed[dist] = "ok" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["failed"])[-1][:200]
        facts["wheels_installed"] = installed
        facts.update(_probe(env))
    facts["missing_distributions"] = sorted({IMPORTS[m] for m in facts.get("missing", {})})
    print("preflight: " + json.dumps(facts), flush=True)
    (out / "preflight.json").write_text(json.dumps(facts, indent=1) + "\n")
    return facts


def run_notebooks(out: Path, profile: str, jobs: int, env, deadline: float, only=None) -> list[dict]:
    nb_out = out / "notebooks"
    nb_out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in notebooks() if not only or any(o in p.name for o in only)]
    # Longest first (the cpu-profile times of the README), so the slow ones do not start last.
    order = ["05_", "07_", "06_", "04_", "03_", "01_", "02_", "08_"]
    paths.sort(key=lambda p: next((i for i, o in enumerate(order) if p.name.startswith(o)), 99))

    def one(p: Path) -> dict:
        left = deadline - time.time()
        name = f"nb_{p.parent.name}_{p.stem}"
        if left < 20:
            return dict(notebook=str(p.relative_to(ROOT)), ok=False, error="not started: out of time")
        s = step(name, [sys.executable, str(BENCH / "nb_script.py"), str(p), "--profile", profile,
                        "--out", str(nb_out)], out / "logs", env, left)
        res_file = nb_out / f"{p.parent.name}__{p.stem}.json"
        res = json.loads(res_file.read_text()) if res_file.exists() else dict(notebook=str(p.relative_to(ROOT)),
                                                                              ok=False, error=f"rc={s['rc']}")
        res["wall_seconds"] = s["seconds"]
        return res

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, paths))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary_md(facts, benches, nbs, tests) -> str:
    lines = [f"# GPU run: {facts.get('gpu') or 'CPU (dry run)'}", "",
             f"torch {facts.get('torch')} (CUDA {facts.get('cuda')}), Python {facts.get('python')}; "
             f"missing: {', '.join(facts.get('missing_distributions', [])) or 'nothing'}", "",
             "| notebook | ok | seconds | peak GPU MiB | error |", "| --- | --- | ---: | ---: | --- |"]
    for r in nbs:
        peak = r.get("peak_gpu_mb")
        lines.append(f"| `{r.get('notebook')}` | {'ok' if r.get('ok') else 'FAILED'} | {r.get('seconds') or '-'} | "
                     f"{'-' if peak is None else f'{peak:.0f}'} | {(r.get('error') or '')[:120]} |")
    lines += ["", "## Benchmarks", ""]
    for b in benches:
        lines.append(f"- `{b['name']}` rc={b['rc']} in {b['seconds']} s: {b['tail'][-1] if b['tail'] else ''}")
    lines += ["", "## Unit tests", "", f"rc={tests.get('rc')} in {tests.get('seconds')} s: "
              f"{'; '.join(tests.get('tail') or [])}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "build/gpu_run")
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU: smoke profile, tiny benchmarks")
    ap.add_argument("--jobs", type=int, default=None,
                    help="notebooks at once (default: all of them on a GPU, so the run fits its budget; their "
                         "times are then under contention, upper bounds on each alone; dry run 2)")
    ap.add_argument("--budget", type=float, default=480, help="seconds for everything (default 480)")
    ap.add_argument("--wheels", default=None,
                    help="folder of wheels to install missing imports from (default: build/wheels, "
                         "made by benchmarks/gpu_wheels.sh)")
    ap.add_argument("--only", nargs="*", default=None, help="notebook name fragments to run (default: all)")
    ap.add_argument("--tests", nargs="*", default=None, help="unit-test paths (default: all that need no Jupyter)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["benches", "notebooks", "tests"])
    args = ap.parse_args(argv)
    t_start = time.time()
    deadline = t_start + args.budget
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    dry = args.dry_run
    jobs = args.jobs or (2 if dry else len(notebooks()))
    threads = 1 if dry else max(1, (os.cpu_count() or 2) // (jobs + 1))
    env = _env(dry, threads)
    # A dry run installs nothing (it runs in the course's own environment, whose torch must stay).
    wheels = None if dry else (Path(args.wheels) if args.wheels else (ROOT / "build" / "wheels"))
    facts = preflight(out, wheels, env)

    benches = []
    if "benches" not in args.skip:
        cuda = [] if dry else ["--device", "cuda"]
        plan = [
            ("bench_losses", [str(BENCH / "bench_losses.py"), "--device", "cuda", "--json", str(out / "bench_losses.json")]
             + (["--dry-run"] if dry else ["--quick"]), 150),
            ("bench_fit", [str(BENCH / "bench_fit.py"), *(["--device", "cpu", "--steps", "2", "--repeats", "1"] if dry
                                                          else [*cuda, "--quick"])], 90),
            ("bench_amp", [str(BENCH / "bench_amp.py"), "--json", str(out / "bench_amp.json")]
             + (["--dry-run"] if dry else []), 120),
        ]
        for name, cmd, limit in plan:
            benches.append(step(name, [sys.executable, *cmd], out / "logs", _env(dry, 8 if not dry else 1),
                                min(limit, deadline - time.time())))

    tests: dict = {}
    nbs: list = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        if "tests" not in args.skip:
            test_paths = args.tests or unit_tests()
            first = [t for t in test_paths if Path(t).name in FIRST_TESTS]
            rest = [t for t in test_paths if t not in first]

            def tests_run():
                runs = []
                for name, paths in (("unit_tests_gpu_paths", first), ("unit_tests_rest", rest)):
                    if paths:
                        runs.append(step(name, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                                                f"--junitxml={out / (name + '.xml')}", *paths],
                                         out / "logs", _env(dry, 2), deadline - time.time() - 10))
                bad = [r["rc"] for r in runs if r["rc"] != 0]
                return dict(rc=bad[0] if bad else 0, seconds=sum(r["seconds"] for r in runs),
                            tail=[f"{r['name']}: {r['tail'][-1] if r['tail'] else ''}" for r in runs], runs=runs)

            tfut = pool.submit(tests_run)
        if "notebooks" not in args.skip:
            nbs = run_notebooks(out, "smoke" if dry else "gpu", jobs, env, deadline - 5, args.only)
        if "tests" not in args.skip:
            tests = tfut.result()

    report = dict(facts=facts, dry_run=dry, seconds=round(time.time() - t_start, 1), benches=benches,
                  bench_losses=_read_json(out / "bench_losses.json"), bench_amp=_read_json(out / "bench_amp.json"),
                  notebooks=nbs, unit_tests=tests)
    (out / "summary.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "summary.md").write_text(summary_md(facts, benches, nbs, tests))
    ok_nb = sum(bool(r.get("ok")) for r in nbs)
    print(f"\ngpu_run: {ok_nb}/{len(nbs)} notebooks ok, benches rc {[b['rc'] for b in benches]}, unit tests rc "
          f"{tests.get('rc')}; {report['seconds']} s; results in {out}", flush=True)
    return 0 if ok_nb == len(nbs) and all(b["rc"] == 0 for b in benches) and tests.get("rc", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
