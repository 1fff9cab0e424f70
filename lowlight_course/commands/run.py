"""``lowlight-course run``: execute notebooks headless with a timing and memory table."""
from __future__ import annotations

import sys
from pathlib import Path

from lowlight_course.commands._common import positive_seconds, usage_error as _error


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



def register(sub, common) -> None:
    p = sub.add_parser("run", parents=[common], help="execute notebooks headless (papermill) and export HTML")
    p.add_argument("--profile", default="auto", choices=["auto", "smoke", "cpu", "gpu"])
    p.add_argument("--output", default="build")
    p.add_argument("--solutions", action="store_true", help="also run solutions/")
    p.add_argument("--no-html", action="store_true")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                   help="stop a notebook that runs longer than this (default: no limit)")
    p.add_argument("notebooks", nargs="*")
    p.set_defaults(func=_cmd_run)
