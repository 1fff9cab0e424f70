"""The ``lowlight-course`` command line: jobs people run outside a notebook.

    lowlight-course doctor                         check the environment
    lowlight-course run [--profile P] [--output build] [--solutions] [--timeout S] [NOTEBOOK ...]
    lowlight-course build-exercises [--check] [--force]  regenerate exercises/ from solutions/
    lowlight-course refresh-outputs NOTEBOOK ...   re-execute (smoke) and keep checked outputs
    lowlight-course strip [--all] NOTEBOOK ...     strip outputs (keeps checked ones unless --all)

Run it from the repository root (or pass ``--root``).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

__all__ = ["main", "doctor"]

_PACKAGES = ["torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "tqdm", "scikit-image", "pillow",
             "papermill", "nbconvert", "nbformat", "ipykernel", "pytest", "pytest-xdist", "nbval",
             "pytorch-msssim"]


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def doctor(echo=print) -> int:
    """Print an environment report; return 0 when the course can run, 1 otherwise."""
    problems = []
    echo(f"python        {platform.python_version()} ({sys.executable})")
    echo(f"platform      {platform.platform()}")
    echo(f"cpu cores     {os.cpu_count()}")
    try:
        import torch

        echo(f"torch         {torch.__version__}, {torch.get_num_threads()} threads")
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            echo(f"CUDA          available: {names} (bf16: {torch.cuda.is_bf16_supported()})")
        else:
            echo("CUDA          not available (training runs on the CPU)")
        mps = getattr(torch.backends, "mps", None)
        echo(f"MPS           {'available' if mps is not None and mps.is_available() else 'not available'}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"torch cannot be imported: {exc}")
        echo(f"torch         FAILED: {exc}")
    echo("packages")
    for name in _PACKAGES:
        v = _version(name)
        echo(f"  {name:<15} {v}")
    try:
        from lowlight_course.profiles import ENV_VAR, get_profile

        p = get_profile("auto")
        env = os.environ.get(ENV_VAR)
        echo(f"profile auto  -> {p.name} (device {p.device}"
             f"{f'; ${ENV_VAR}={env}' if env else ''}): {p.image_size}px, {p.steps} steps")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"profiles: {exc}")
        echo(f"profile       FAILED: {exc}")
    try:
        from lowlight_course.data import list_images, load_image

        names = list(list_images())
        ok = []
        for n in names:
            img = load_image(n)
            ok.append(f"{n} {tuple(img.shape)}")
        echo(f"images        {len(ok)} bundled image(s) readable" + (f": {', '.join(ok[:4])}" if ok else ""))
        if not ok:
            problems.append("no bundled images found")
    except ImportError as exc:
        echo(f"images        skipped (lowlight_course.data not importable: {exc})")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"bundled images: {exc}")
        echo(f"images        FAILED: {exc}")
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        argv0 = spec.argv[0]
        if argv0 in ("python", "python3"):
            argv0 = f"{argv0} (resolves to {sys.executable})"
        echo(f"kernel        python3 -> {argv0}")
    except Exception as exc:  # noqa: BLE001
        echo(f"kernel        python3 not found ({exc}); notebooks cannot run headless")
        problems.append("no python3 Jupyter kernel")
    if problems:
        echo("\nproblems:")
        for p in problems:
            echo(f"  - {p}")
        return 1
    echo("\nall good")
    return 0


def _error(message: str) -> int:
    """Print a one-line error (no traceback) and return the usage-error exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _cmd_run(args) -> int:
    """Exit 0 all ran, 1 a notebook failed, 2 bad arguments (no notebook, unusable --output)."""
    from lowlight_course.runner import (NotebookPathError, OutputError, check_notebook_path, check_output_dir,
                                        find_notebooks, run_notebooks)

    root = Path(args.root)
    if args.notebooks:
        try:
            paths = [check_notebook_path(p) for p in args.notebooks]
        except NotebookPathError as exc:
            return _error(str(exc))
    else:
        if not (root / "notebooks").is_dir():
            return _error(f"no notebooks/ folder in {root.resolve()}: run this in the course folder, pass "
                          f"--root COURSE_FOLDER, or name the notebooks to run")
        folders = ["notebooks"]
        if args.solutions:
            if (root / "solutions").is_dir():
                folders.append("solutions")
            else:
                print(f"note: no solutions/ folder in {root.resolve()} (a learner's copy?): running notebooks/ "
                      f"only", file=sys.stderr)
        paths = find_notebooks(root, folders)
    if not paths:
        return _error(f"no notebooks found in {root.resolve() / 'notebooks'}")
    protected = find_notebooks(root, ("notebooks", "solutions", "exercises"))
    try:
        check_output_dir(paths, args.output, protected=protected)
        results = run_notebooks(paths, args.output, profile=args.profile, html=not args.no_html,
                                timeout=args.timeout)
    except OutputError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot write to --output {args.output}: {exc.strerror or exc} "
                      f"({exc.filename or args.output}); pass another folder")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} of {len(results)} notebook(s) failed: "
              f"{', '.join(r.notebook for r in failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(results)} notebook(s) ran; executed copies, HTML and timings.json in {args.output}/")
    return 0


def _cmd_build(args) -> int:
    """Exit 0 built (or up to date), 1 refused (a learner's file is in the way) or ``--check`` found
    differences, 2 could not build (malformed solution, no course folder, unwritable exercises/)."""
    from lowlight_course.exercises import BuildRefused, ExerciseError, build_exercises

    try:
        report = build_exercises(args.root, check=args.check, force=args.force)
    except BuildRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report:
        print(line)
    if args.check:
        if report:
            print(f"{len(report)} exercise notebook(s) differ from their solutions.", file=sys.stderr)
            return 1
        print("exercises are up to date")
    elif not report:
        print("exercises already up to date")
    return 0


def _writable_notebooks(names) -> list[Path] | str:
    """The notebooks as paths, or a one-line error (missing, a folder, not a notebook, read-only)."""
    from lowlight_course.runner import NotebookPathError, check_notebook_path

    paths = []
    for nb in names:
        try:
            p = check_notebook_path(nb)
        except NotebookPathError as exc:
            return str(exc)
        if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK | os.X_OK):
            return f"{nb}: is read-only (file or folder); copy the course to a folder you can write to"
        paths.append(p)
    return paths


def _cmd_refresh(args) -> int:
    """Exit 0 refreshed, 1 a notebook failed to execute, 2 bad arguments (nothing executed)."""
    from lowlight_course.notebook_tools import describe_failure, refresh_outputs

    paths = _writable_notebooks(args.notebooks)
    if isinstance(paths, str):
        return _error(paths)
    status = 0
    for nb in paths:
        try:
            refresh_outputs(nb)
            print(f"refreshed {nb}")
        except OSError as exc:
            return _error(f"cannot write {nb}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001
            print(describe_failure(exc, nb), file=sys.stderr)
            status = 1
    return status


def _cmd_strip(args) -> int:
    """Exit 0 stripped, 2 bad arguments (every path is checked before any file is written)."""
    from lowlight_course.notebook_tools import _read, strip_outputs, write_notebook

    paths = _writable_notebooks(args.notebooks)
    if isinstance(paths, str):
        return _error(paths)
    for nb in paths:
        try:
            changed = write_notebook(strip_outputs(_read(nb), keep_checked=not args.all), nb)
        except OSError as exc:
            return _error(f"cannot write {nb}: {exc.strerror or exc}")
        print(f"{'stripped' if changed else 'unchanged'} {nb}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lowlight-course", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=".", help="repository root (default: current folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check the environment", parents=[common])
    p = sub.add_parser("run", parents=[common], help="execute notebooks headless (papermill) and export HTML")
    p.add_argument("--profile", default="auto", choices=["auto", "smoke", "cpu", "gpu"])
    p.add_argument("--output", default="build")
    p.add_argument("--solutions", action="store_true", help="also run solutions/")
    p.add_argument("--no-html", action="store_true")
    p.add_argument("--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="stop a notebook that runs longer than this (default: no limit)")
    p.add_argument("notebooks", nargs="*")
    p = sub.add_parser("build-exercises", parents=[common], help="generate exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="only check; exit 1 listing differences")
    p.add_argument("--force", action="store_true",
                   help="also replace exercises you edited, after backing each up to exercises/backups/")
    p = sub.add_parser("refresh-outputs", parents=[common], help="re-execute (smoke) and keep the checked text outputs")
    p.add_argument("notebooks", nargs="+")
    p = sub.add_parser("strip", parents=[common], help="strip outputs and metadata noise")
    p.add_argument("--all", action="store_true", help="also strip the # NBVAL_CHECK_OUTPUT outputs")
    p.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    handlers = {"doctor": lambda a: doctor(), "run": _cmd_run, "build-exercises": _cmd_build,
                "refresh-outputs": _cmd_refresh, "strip": _cmd_strip}
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
