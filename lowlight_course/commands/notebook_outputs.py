"""``lowlight-course refresh-outputs`` and ``strip``: the outputs committed notebooks keep."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from lowlight_course.commands._common import usage_error as _error


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



def register(sub, common) -> None:
    p = sub.add_parser("refresh-outputs", parents=[common], help="re-execute (smoke) and keep the checked text outputs")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=_cmd_refresh)
    p = sub.add_parser("strip", parents=[common], help="strip outputs and metadata noise")
    p.add_argument("--all", action="store_true", help="also strip the # NBVAL_CHECK_OUTPUT outputs")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=_cmd_strip)
