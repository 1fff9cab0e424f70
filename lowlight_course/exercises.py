"""Exercise notebooks from solution notebooks: markers, the generation record, a safe build, nbgrader.

``solutions/NN_*.ipynb`` is the single source; ``exercises/NN_*.ipynb`` is generated from it.

Markers (the nbgrader conventions, so nbgrader reads the same notebooks):

- in a code cell, every region from a line ``### BEGIN SOLUTION`` to a line ``### END SOLUTION``
  becomes ``raise NotImplementedError("<hint>")`` at the indentation of the ``BEGIN`` line. The
  hint comes from ``### HINT: ...`` line(s) right after ``BEGIN`` (default :data:`DEFAULT_HINT`);
  a hint says what to compute and why, never code (``tests/test_exercises_sync.py`` checks);
- in a code cell, every region from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` is
  removed, markers included: solution notebooks use it for asserts that only hold for the complete
  answer (``assert result.passed``). A line ``### POINTS: N`` inside it sets the cell's nbgrader
  points (default 1);
- in a markdown cell, every region from ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->``
  becomes :data:`MARKDOWN_PLACEHOLDER`;
- outputs are cleared, execution counts reset, metadata reduced to what matters (cell tags, the
  kernelspec), and the JSON is written with sorted keys, so regenerating is byte-identical.

The generation record (shared by every command that writes course files into a learner's folder):
each generated notebook carries ``metadata.lowlight_course`` with ``generated_from`` (the source)
and ``source_sha256``, a hash of its cells' types and sources (:func:`source_hash`). A file whose
record matches its own cells, and whose name is the one it was generated under, is
:data:`UNTOUCHED` and may be replaced; anything else (edited cells, a Jupyter ``-Copy1``
duplicate, a scratch notebook, a file without a record) is the learner's and is never deleted or
overwritten without ``force``, and then only after a backup (:func:`backup`). Outputs and
execution counts are not in the hash: running a notebook is not editing it.

:func:`build_exercises` generates everything in memory first, refuses before writing anything when
a file it would replace is the learner's, then writes each file through a temporary file and
``os.replace`` (so a file is always either the old or the new version).

:func:`nbgrader_metadata` stamps nbgrader's cell metadata onto a solution notebook from the markers
(``python -m lowlight_course.exercises nbgrader solutions/*.ipynb``; ``--check`` only compares).
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .notebook_tools import _clean_notebook, _read, _source, notebook_bytes

__all__ = [
    "DEFAULT_HINT", "MARKDOWN_PLACEHOLDER", "ExerciseError", "BuildRefused", "exercise_source",
    "exercise_markdown", "make_exercise", "build_exercises", "source_hash", "record", "file_state",
    "backup", "atomic_write", "UNTOUCHED", "EDITED", "MISSING", "FOREIGN", "nbgrader_metadata",
    "stamp_nbgrader", "BuildPlan",
]

DEFAULT_HINT = "Replace this line with your solution."
MARKDOWN_PLACEHOLDER = "*Your answer here.*"
RECORD_KEY = "lowlight_course"
BACKUP_DIR = "backups"

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)###\s*BEGIN SOLUTION\s*$")
_END = re.compile(r"^[ \t]*###\s*END SOLUTION\s*$")
_HINT = re.compile(r"^[ \t]*###\s*HINT:\s?(?P<hint>.*?)\s*$")
_HIDDEN_BEGIN = re.compile(r"^[ \t]*###\s*BEGIN HIDDEN TESTS\s*$")
_HIDDEN_END = re.compile(r"^[ \t]*###\s*END HIDDEN TESTS\s*$")
_POINTS = re.compile(r"^[ \t]*###\s*POINTS:\s*(?P<points>\S+)\s*$")
_MD_BEGIN = re.compile(r"^\s*<!--\s*BEGIN SOLUTION\s*-->\s*$")
_MD_END = re.compile(r"^\s*<!--\s*END SOLUTION\s*-->\s*$")


class ExerciseError(ValueError):
    """A solution notebook's markers are malformed, or the course folder cannot be built."""


class BuildRefused(ExerciseError):
    """``build-exercises`` would delete or overwrite a file that is not an untouched generated one."""


def _py_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop_hidden_tests(lines: list[str], where: str) -> list[str]:
    """Remove every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region, markers included."""
    out, start = [], None
    for i, line in enumerate(lines):
        if _HIDDEN_BEGIN.match(line):
            if start is not None:
                raise ExerciseError(f"{where}: hidden-tests region opened on line {start + 1} is not closed "
                                    f"before another BEGIN on line {i + 1}.")
            start = i
        elif _HIDDEN_END.match(line):
            if start is None:
                raise ExerciseError(f"{where}: line {i + 1} has '### END HIDDEN TESTS' without a matching BEGIN.")
            start = None
        elif start is None:
            if _POINTS.match(line):
                raise ExerciseError(f"{where}: line {i + 1} has '### POINTS:' outside a hidden-tests region; "
                                    f"put it between '### BEGIN HIDDEN TESTS' and '### END HIDDEN TESTS'.")
            out.append(line)
    if start is not None:
        raise ExerciseError(f"{where}: '### BEGIN HIDDEN TESTS' on line {start + 1} has no '### END HIDDEN TESTS'.")
    return out


def exercise_source(source: str, where: str = "cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a code cell.

    >>> print(exercise_source("def f(x):\\n    ### BEGIN SOLUTION\\n    ### HINT: square it\\n"
    ...                       "    return x ** 2\\n    ### END SOLUTION\\n"))
    def f(x):
        raise NotImplementedError("square it")
    <BLANKLINE>
    """
    lines = _drop_hidden_tests(source.split("\n"), where)
    out, i = [], 0
    while i < len(lines):
        m = _BEGIN.match(lines[i])
        if _END.match(lines[i]):
            raise ExerciseError(f"{where}: line {i + 1} has '### END SOLUTION' without a matching BEGIN.")
        if not m:
            if _HINT.match(lines[i]):
                raise ExerciseError(f"{where}: line {i + 1} has '### HINT:' outside a solution region; "
                                    f"put it right after '### BEGIN SOLUTION'.")
            out.append(lines[i])
            i += 1
            continue
        start, j, hints = i, i + 1, []
        while j < len(lines) and _HINT.match(lines[j]):
            hints.append(_HINT.match(lines[j]).group("hint"))
            j += 1
        while j < len(lines) and not _END.match(lines[j]):
            if _BEGIN.match(lines[j]):
                raise ExerciseError(f"{where}: solution region opened on line {start + 1} is not closed "
                                    f"before another BEGIN on line {j + 1}.")
            j += 1
        if j == len(lines):
            raise ExerciseError(f"{where}: '### BEGIN SOLUTION' on line {start + 1} has no "
                                f"'### END SOLUTION'.")
        hint = " ".join(h for h in hints if h) or DEFAULT_HINT
        out.append(f"{m.group('indent')}raise NotImplementedError({_py_string(hint)})")
        i = j + 1
    return "\n".join(out)


def exercise_markdown(source: str, where: str = "cell", placeholder: str = MARKDOWN_PLACEHOLDER) -> str:
    """Replace every ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` region of a markdown cell."""
    lines = source.split("\n")
    out, inside, start = [], False, 0
    for i, line in enumerate(lines):
        if _MD_BEGIN.match(line):
            if inside:
                raise ExerciseError(f"{where}: nested <!-- BEGIN SOLUTION --> on line {i + 1}.")
            inside, start = True, i
            out.append(placeholder)
        elif _MD_END.match(line):
            if not inside:
                raise ExerciseError(f"{where}: <!-- END SOLUTION --> on line {i + 1} without a BEGIN.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError(f"{where}: <!-- BEGIN SOLUTION --> on line {start + 1} is never closed.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The generation record
# ---------------------------------------------------------------------------------------------
UNTOUCHED, EDITED, MISSING, FOREIGN = "untouched", "edited", "missing", "foreign"


def source_hash(nb) -> str:
    """sha256 (hex) of a notebook's cell types and sources, in order: what a learner writes.

    Outputs, execution counts and metadata are left out, so running or re-saving a notebook
    in Jupyter does not change it; editing, adding, deleting or reordering a cell does."""
    cells = [[c.get("cell_type", ""), _source(c)] for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()


def record(nb, generated_from: str, note: str) -> None:
    """Stamp the generation record onto ``nb`` (in place): origin, note, :func:`source_hash`."""
    nb.metadata[RECORD_KEY] = {"generated_from": generated_from, "note": note, "source_sha256": source_hash(nb)}


def file_state(path, expected_name: str | None = None) -> str:
    """What a file on disk is, for a command about to replace it.

    Returns :data:`MISSING` (no file), :data:`UNTOUCHED` (a generated notebook whose cells still
    match its record, under the name it was generated as: ``expected_name``, default its own
    name), :data:`EDITED` (a generated notebook whose cells changed since), or :data:`FOREIGN`
    (anything else: no record, another name such as a ``-Copy1`` duplicate, unreadable JSON, a
    link or a folder)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return MISSING
    if path.is_symlink() or not path.is_file():
        return FOREIGN
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return FOREIGN
    rec = nb.get("metadata", {}).get(RECORD_KEY) if isinstance(nb, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("generated_from"), str):
        return FOREIGN
    if Path(rec["generated_from"]).name != (expected_name or path.name):
        return FOREIGN
    cells = nb.get("cells") if isinstance(nb.get("cells"), list) else []
    for c in cells:
        if isinstance(c, dict) and isinstance(c.get("source"), list):
            c["source"] = "".join(c["source"])
    return UNTOUCHED if rec.get("source_sha256") == source_hash({"cells": cells}) else EDITED


def _same_sources(path: Path, data: bytes) -> bool:
    """True when the file on disk has exactly the cells (types and sources) of ``data``."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        new = json.loads(data.decode("utf-8"))
        for nb in (old, new):
            for c in nb.get("cells", []):
                if isinstance(c.get("source"), list):
                    c["source"] = "".join(c["source"])
        return source_hash(old) == source_hash(new)
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def backup(path, backup_dir=None, *, now: _dt.datetime | None = None) -> Path:
    """Copy ``path`` to ``backup_dir`` (default ``<its folder>/backups``) as
    ``NAME.YYYYmmdd-HHMMSS.ipynb``; never overwrites an earlier backup (adds ``-2``, ``-3``, ...).
    Returns the backup's path."""
    path = Path(path)
    backup_dir = Path(backup_dir) if backup_dir is not None else path.parent / BACKUP_DIR
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    data = path.read_bytes()
    n = 1
    while True:
        target = backup_dir / f"{path.stem}.{stamp}{'' if n == 1 else f'-{n}'}{path.suffix}"
        try:
            with open(target, "xb") as fh:  # exclusive: an existing backup is never replaced
                fh.write(data)
            return target
        except FileExistsError:
            n += 1


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Building exercises/
# ---------------------------------------------------------------------------------------------
GENERATED_NOTE = "generated by `lowlight-course build-exercises`; edit the solution"


def make_exercise(solution_nb, name: str = "notebook"):
    """Return the exercise version of a solution notebook (a new ``NotebookNode``) with its
    generation record (``metadata.lowlight_course``)."""
    nb = copy.deepcopy(solution_nb)
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        if cell.get("cell_type") == "code":
            cell["source"] = exercise_source(_source(cell), where)
        elif cell.get("cell_type") == "markdown":
            cell["source"] = exercise_markdown(_source(cell), where)
    _clean_notebook(nb)
    for cell in nb.cells:  # learners need no nbgrader: its metadata stays in the solutions
        cell.get("metadata", {}).pop("nbgrader", None)
    record(nb, f"solutions/{name}", GENERATED_NOTE)
    return nb


@dataclass
class BuildPlan:
    """What :func:`build_exercises` will do: ``writes`` (path -> bytes), ``deletes``, ``backups``
    (files to back up first, with ``force``), ``refused`` (file -> reason), ``report`` lines, and
    ``foreign`` notebooks in exercises/ that it did not generate (never touched; ``--check`` names them)."""

    writes: dict = field(default_factory=dict)
    deletes: list = field(default_factory=list)
    backups: list = field(default_factory=list)
    refused: dict = field(default_factory=dict)
    report: list = field(default_factory=list)
    foreign: list = field(default_factory=list)


def _plan(root: Path, sol_dir: Path, ex_dir: Path, solutions_dir: str, exercises_dir: str, force: bool) -> BuildPlan:
    plan = BuildPlan()
    if not sol_dir.is_dir():
        where = f"no {solutions_dir}/ folder in {root.resolve()}"
        if ex_dir.is_dir():
            raise ExerciseError(f"{where}: this looks like a learner's copy (it has {exercises_dir}/ only), and "
                                f"build-exercises is a maintainer command: it rebuilds {exercises_dir}/ from "
                                f"{solutions_dir}/ in a clone of the course repository. Your {exercises_dir}/ was "
                                f"left untouched; for a fresh exercise run `lowlight-course get-course "
                                f"{root} --reset NAME` (it backs yours up first).")
        raise ExerciseError(f"{where}: build-exercises is a maintainer command; it needs a clone of the course "
                            f"repository (its {solutions_dir}/ folder): run it in the clone's root or pass --root "
                            f"PATH_TO_THE_CLONE. Learners get the exercises with `lowlight-course get-course DIR`.")
    solutions = sorted(p for p in sol_dir.glob("*.ipynb") if p.is_file())
    if not solutions:
        raise ExerciseError(f"{sol_dir} holds no .ipynb notebook: nothing to build from (is --root right?).")
    if ex_dir.exists() and not ex_dir.is_dir():
        raise ExerciseError(f"{ex_dir} exists but is not a folder: move it away, then run build-exercises again.")
    generated = {}
    for sol in solutions:  # everything in memory first: a broken solution changes nothing
        try:
            nb = _read(sol)
        except Exception as exc:  # noqa: BLE001 - nbformat raises several types
            raise ExerciseError(f"{solutions_dir}/{sol.name} is not a readable notebook ({exc}); "
                                f"nothing was written.") from None
        generated[sol.name] = notebook_bytes(make_exercise(nb, sol.name))
    for name, data in generated.items():
        target = ex_dir / name
        rel = f"{exercises_dir}/{name}"
        state = file_state(target)
        if state == MISSING:
            plan.writes[target] = data
            plan.report.append(f"{rel}: created")
            continue
        if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            continue
        if state == UNTOUCHED or (target.is_file() and not target.is_symlink() and _same_sources(target, data)):
            plan.writes[target] = data
            plan.report.append(f"{rel}: updated")
        elif force and target.is_file() and not target.is_symlink():
            plan.backups.append(target)
            plan.writes[target] = data
            plan.report.append(f"{rel}: replaced (--force; your version is kept in {exercises_dir}/{BACKUP_DIR}/)")
        else:
            why = ("its cells were edited since it was generated" if state == EDITED
                   else "it is not a notebook build-exercises generated (no matching record)"
                   if target.is_file() and not target.is_symlink() else "it is a link or a folder, not a file")
            plan.refused[rel] = why
    if ex_dir.is_dir():
        for ex in sorted(ex_dir.glob("*.ipynb")):
            if ex.name in generated:
                continue
            state = file_state(ex)
            rel = f"{exercises_dir}/{ex.name}"
            if state == UNTOUCHED:
                plan.deletes.append(ex)
                plan.report.append(f"{rel}: removed (generated, unedited, and its solution is gone)")
            elif state == EDITED:
                plan.report.append(f"{rel}: kept (you edited it; its solution {solutions_dir}/{ex.name} is gone)")
            else:  # scratch notebooks, -Copy1 duplicates: the learner's, never touched (only --check names them)
                plan.foreign.append(ex)
    return plan


def _refusal(plan: BuildPlan, exercises_dir: str) -> str:
    lines = [f"build-exercises changed nothing: {len(plan.refused)} file(s) would be overwritten but hold "
             f"work that is not from build-exercises:"]
    lines += [f"  {rel}: {why}" for rel, why in plan.refused.items()]
    lines.append(f"Keep them by renaming them (e.g. to NAME-mine.ipynb), or run `lowlight-course build-exercises "
                 f"--force`, which first copies each one to {exercises_dir}/{BACKUP_DIR}/NAME.<date-time>.ipynb.")
    return "\n".join(lines)


def build_exercises(root=".", *, check: bool = False, force: bool = False, solutions_dir: str = "solutions",
                    exercises_dir: str = "exercises") -> list[str]:
    """Generate ``exercises/NN_*.ipynb`` from ``solutions/NN_*.ipynb`` under ``root``, safely.

    Replaces or deletes only untouched generated notebooks (see :func:`file_state`); an edited
    or foreign file makes the whole build refuse (:class:`BuildRefused`, nothing written) unless
    ``force``, which backs each one up first (:func:`backup`). Writes are atomic per file and
    happen only after every exercise was generated. Raises :class:`ExerciseError` for malformed
    markers, outside a course folder (no ``solutions/``) and when ``exercises/`` is not writable.

    With ``check=True`` nothing is written. Returns the list of differences (``check``) or of
    changes made (otherwise), as human-readable lines.
    """
    root = Path(root)
    sol_dir, ex_dir = root / solutions_dir, root / exercises_dir
    plan = _plan(root, sol_dir, ex_dir, solutions_dir, exercises_dir, force)
    if check:
        out = [f"{exercises_dir}/{p.name}: {'missing' if not p.exists() else 'out of date'} (regenerate with "
               f"`lowlight-course build-exercises`)" for p in plan.writes]
        out += [f"{rel}: out of date and {why} (build-exercises would refuse)" for rel, why in plan.refused.items()]
        out += [f"{exercises_dir}/{p.name}: stale (no {solutions_dir}/{p.name}); build-exercises removes it"
                for p in plan.deletes]
        out += [f"{exercises_dir}/{p.name}: not generated from {solutions_dir}/ (a copy or a scratch notebook); "
                f"build-exercises never touches it: remove it from the course if it should not ship" for p in plan.foreign]
        return out
    if plan.refused:
        raise BuildRefused(_refusal(plan, exercises_dir))
    if not plan.writes and not plan.deletes:
        return []
    temps = {}
    try:
        ex_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(ex_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(ex_dir))
        for target in plan.backups:  # backups only add files
            backup(target, ex_dir / BACKUP_DIR)
        for target, data in plan.writes.items():  # every new version on disk before any file changes
            temps[target] = _write_temp(target, data)
    except OSError as exc:
        for tmp in temps.values():
            _remove_quietly(tmp)
        raise ExerciseError(f"cannot write in {ex_dir} ({exc.strerror or exc}); nothing was changed: make the "
                            f"folder writable (chmod u+w {ex_dir}) or work in a copy you own.") from None
    for target, tmp in temps.items():  # renames within one folder: atomic, and do not fail for space
        os.replace(tmp, target)
    for target in plan.deletes:
        target.unlink()
    return plan.report


def _write_temp(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return tmp


def _remove_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# nbgrader cell metadata from the markers
# ---------------------------------------------------------------------------------------------
def _role(cell, where: str) -> tuple[str, float]:
    """('solution' | 'manual' | 'test' | 'readonly' | '', points) of a cell, from its markers."""
    src = _source(cell)
    kind = cell.get("cell_type")
    if kind == "markdown":
        if any(_MD_BEGIN.match(line) for line in src.split("\n")):
            return "manual", 1.0
        return "readonly", 0.0
    if kind != "code":
        return "", 0.0
    lines = src.split("\n")
    has_solution = any(_BEGIN.match(line) for line in lines)
    has_tests = any(_HIDDEN_BEGIN.match(line) for line in lines)
    if has_solution and has_tests:
        raise ExerciseError(f"{where}: a cell holds both a solution region and hidden tests; nbgrader needs "
                            f"them in separate cells (answer cell, then test cell).")
    if has_solution:
        return "solution", 0.0
    if has_tests:
        points = [m.group("points") for m in map(_POINTS.match, lines) if m]
        if len(points) > 1:
            raise ExerciseError(f"{where}: more than one '### POINTS:' line.")
        try:
            value = float(points[0]) if points else 1.0
        except ValueError:
            raise ExerciseError(f"{where}: '### POINTS: {points[0]}' is not a number.") from None
        if not value > 0:
            raise ExerciseError(f"{where}: '### POINTS: {points[0]}' must be > 0.")
        return "test", value
    return "", 0.0


def nbgrader_metadata(nb, name: str = "notebook") -> dict:
    """The nbgrader cell metadata (schema 3) each cell of a solution notebook should carry.

    Returns ``{cell index: metadata or None}``: a code cell with a solution region is an
    autograded answer; a code cell with hidden tests an autograded test cell (locked, ``### POINTS``
    or 1 point); a markdown cell with a solution region a manually graded answer (1 point); every
    other markdown cell read-only; other code cells carry none (the learner may experiment there).
    ``grade_id`` is ``<role>-<cell id>`` (stable when cells are inserted)."""
    out = {}
    for i, cell in enumerate(nb.cells):
        role, points = _role(cell, f"{name}, cell {i}")
        if not role:
            out[i] = None
            continue
        cid = cell.get("id") or f"cell-{i:03d}"
        meta = {"grade": role in ("test", "manual"), "grade_id": f"{role}-{cid}",
                "locked": role in ("test", "readonly"), "schema_version": 3,
                "solution": role in ("solution", "manual"), "task": False}
        if meta["grade"]:
            meta["points"] = points
        out[i] = meta
    return out


def stamp_nbgrader(nb, name: str = "notebook") -> bool:
    """Set every cell's nbgrader metadata to :func:`nbgrader_metadata` (in place); return whether
    anything changed."""
    changed = False
    for i, meta in nbgrader_metadata(nb, name).items():
        cm = nb.cells[i].setdefault("metadata", {})
        if meta is None:
            changed |= cm.pop("nbgrader", None) is not None
        elif cm.get("nbgrader") != meta:
            cm["nbgrader"] = meta
            changed = True
    return changed


def _main(argv=None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m lowlight_course.exercises",
                                     description="Stamp nbgrader cell metadata onto solution notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("nbgrader", help="stamp (or --check) nbgrader metadata from the markers")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 listing notebooks that differ")
    p.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    stale = 0
    for path in args.notebooks:
        try:
            nb = _read(path)
            changed = stamp_nbgrader(nb, Path(path).name)
        except (ExerciseError, OSError, ValueError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        if args.check:
            if changed:
                stale += 1
                print(f"{path}: nbgrader metadata out of date (run without --check)")
        elif changed:
            atomic_write(Path(path), notebook_bytes(nb))
            print(f"stamped {path}")
        else:
            print(f"unchanged {path}")
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
