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
            return _error(_not_a_course(root, args))
        folders = ["notebooks"]
        for flag, folder in ((args.solutions, "solutions"), (args.exercises, "exercises")):
            if not flag:
                continue
            if (root / folder).is_dir():
                folders.append(folder)
            else:
                fix = ("`lowlight-course get-course DIR --solutions` copies them" if folder == "solutions"
                       else "`lowlight-course get-course DIR` copies them")
                print(f"note: no {folder}/ folder in {root.resolve()}: running the others only ({fix})",
                      file=sys.stderr)
        paths = find_notebooks(root, folders)
    if not paths:
        return _error(f"no notebooks found in {root.resolve() / 'notebooks'}")
    protected = find_notebooks(root, ("notebooks", "solutions", "exercises")) + _installed_course()
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



def _not_a_course(root: Path, args) -> str:
    """The one-line error for ``run`` outside a course folder, with a command that works."""
    flags = "".join(f" --{f}" for f in ("solutions", "exercises") if getattr(args, f, False))
    if args.profile != "auto":
        flags += f" --profile {args.profile}"
    where = f"no notebooks/ folder in {root.resolve()}: this is not a course folder"
    default = Path("lowlight-course")
    if (root / default / "notebooks").is_dir():
        return f"{where}; the course you copied is in {root / default}: `lowlight-course run --root {root / default}{flags}`"
    get = " --solutions" if getattr(args, "solutions", False) else ""
    return (f"{where}. Copy the course into one, then run it there: `lowlight-course get-course {default}{get} && "
            f"cd {default} && lowlight-course run{flags}` (or pass --root COURSE_FOLDER, or the notebooks to run)")


def _installed_course() -> list:
    """The installed course's notebooks (an executed copy must never land on them)."""
    from lowlight_course.course_files import CourseSourceError, course_source
    from lowlight_course.runner import find_notebooks

    try:
        return find_notebooks(course_source(), ("notebooks", "solutions", "exercises"))
    except CourseSourceError:
        return []


def register(sub, common) -> None:
    p = sub.add_parser("run", parents=[common], help="execute notebooks headless (papermill) and export HTML")
    p.add_argument("--profile", default="auto", choices=["auto", "smoke", "cpu", "gpu"])
    p.add_argument("--output", default="build")
    p.add_argument("--solutions", action="store_true", help="also run solutions/")
    p.add_argument("--exercises", action="store_true",
                   help="also run exercises/ (as they are: an unanswered exercise's checks say 'not implemented yet')")
    p.add_argument("--no-html", action="store_true")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                   help="stop a notebook that runs longer than this (default: no limit)")
    p.add_argument("notebooks", nargs="*")
    p.set_defaults(func=_cmd_run)
