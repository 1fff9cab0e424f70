"""Maintainer tools for the notebooks: output stripping/refreshing, headless runs (exercise generation
lives in :mod:`lowlight_course.exercises`; its names are re-exported here so old imports work).

Committed notebooks keep only the text outputs of cells whose source holds ``# NBVAL_CHECK_OUTPUT``
(see ``docs/CONTRACTS.md``): :func:`strip_outputs` does that, :func:`refresh_outputs` re-executes a
notebook under the ``smoke`` profile first.

The notebook packages (nbformat, papermill, nbconvert) are imported lazily, so the rest of
``lowlight_course`` never needs them.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

__all__ = [
    "DEFAULT_HINT", "MARKDOWN_PLACEHOLDER", "ExerciseError", "exercise_source", "exercise_markdown",
    "make_exercise", "notebook_bytes", "write_notebook", "build_exercises", "strip_outputs",
    "refresh_outputs", "find_notebooks", "run_notebook", "run_notebooks", "RunResult", "describe_failure",
]

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"

# Cell and notebook metadata that survive cleaning; everything else (execution times, papermill
# records, widget state, collapsed/scrolled flags) is noise that changes on every run.
_CELL_META_KEEP = ("tags", "editable", "deletable", "slideshow", "nbgrader")  # nbgrader: solutions/ only
_NB_META_KEEP = ("kernelspec", "language_info", "lowlight_course")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _clean_cell(cell, index: int, keep_outputs=None) -> None:
    meta = {k: v for k, v in cell.get("metadata", {}).items() if k in _CELL_META_KEEP}
    if "tags" in meta:
        meta["tags"] = [t for t in meta["tags"] if t != "injected-parameters"]
        if not meta["tags"]:
            del meta["tags"]
    cell["metadata"] = meta
    if cell.get("cell_type") == "code":
        cell["outputs"] = keep_outputs(cell) if keep_outputs else []
        # nbval rejects a cell with outputs but no execution count ("unrun reference cell"), so a
        # kept output gets a deterministic count: the cell's position among the code cells.
        cell["execution_count"] = index if cell["outputs"] else None
        for out in cell["outputs"]:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = cell["execution_count"]
    if "attachments" in cell and not cell["attachments"]:
        del cell["attachments"]


def _clean_notebook(nb, keep_outputs=None):
    nb.metadata = {k: v for k, v in nb.get("metadata", {}).items() if k in _NB_META_KEEP}
    li = nb.metadata.get("language_info")
    if isinstance(li, dict):  # the version and other fields differ from machine to machine
        nb.metadata["language_info"] = {"name": li.get("name", "python")}
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    code_index = 0
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code":
            code_index += 1
        _clean_cell(cell, code_index, keep_outputs)
        if nb.get("nbformat_minor", 0) >= 5 and not cell.get("id"):
            cell["id"] = f"cell-{i:03d}"
    return nb


def notebook_bytes(nb) -> bytes:
    """The notebook's canonical JSON (sorted keys, one-space indent, trailing newline) as bytes."""
    import nbformat

    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def write_notebook(nb, path) -> bool:
    """Write ``nb`` canonically to ``path``; return whether the file changed."""
    path = Path(path)
    data = notebook_bytes(nb)
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def _read(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _text_outputs(cell) -> list:
    """Outputs nbval compares, for a cell marked ``# NBVAL_CHECK_OUTPUT``; [] for any other cell."""
    if CHECK_MARKER not in _source(cell):
        return []
    kept = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            kept.append(out)
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in out.get("data", {}).items() if k.startswith("text/")}
            if data:
                out = copy.deepcopy(out)
                out["data"], out["metadata"] = data, {}
                kept.append(out)
    return kept


def strip_outputs(nb, keep_checked: bool = True):
    """Clear outputs (keeping the text outputs of ``# NBVAL_CHECK_OUTPUT`` cells when
    ``keep_checked``), execution counts and metadata noise; returns ``nb`` (modified in place)."""
    return _clean_notebook(nb, _text_outputs if keep_checked else None)


def _kernel_name() -> str:
    return "python3"


def refresh_outputs(path, *, kernel_name: str | None = None, timeout: int = 600) -> None:
    """Execute the notebook at ``path`` under ``LOWLIGHT_PROFILE=smoke`` and store only the text
    outputs of its ``# NBVAL_CHECK_OUTPUT`` cells (everything else stripped), in place."""
    import papermill as pm

    from .runner import check_notebook_path

    path = check_notebook_path(path).resolve()
    old = os.environ.get("LOWLIGHT_PROFILE")
    os.environ["LOWLIGHT_PROFILE"] = "smoke"
    try:
        nb = pm.execute_notebook(str(path), None, kernel_name=kernel_name or _kernel_name(), language="python",
                                 cwd=str(path.parent), progress_bar=False, execution_timeout=timeout)
    finally:
        if old is None:
            os.environ.pop("LOWLIGHT_PROFILE", None)
        else:
            os.environ["LOWLIGHT_PROFILE"] = old
    original = _read(path)
    nb.metadata = original.metadata  # keep the author's metadata, not papermill's
    write_notebook(strip_outputs(nb), path)


# The run part lives in lowlight_course.runner; these names stay importable from here.
from .runner import RunResult, describe_failure, find_notebooks, run_notebook, run_notebooks  # noqa: E402


_EXERCISE_NAMES = ("DEFAULT_HINT", "MARKDOWN_PLACEHOLDER", "ExerciseError", "exercise_source", "exercise_markdown",
                   "make_exercise", "build_exercises")


def __getattr__(name):  # PEP 562: the exercise part moved to lowlight_course.exercises (imported lazily,
    if name in _EXERCISE_NAMES:  # because it imports the cleaning helpers from this module)
        from . import exercises

        return getattr(exercises, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
