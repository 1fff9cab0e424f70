"""Every notebook in notebooks/, solutions/ and exercises/ is executed twice:

(a) with papermill, ``profile = "smoke"`` injected into the cell tagged ``parameters``;
(b) with nbval in lax mode (cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their stored output),
    under ``LOWLIGHT_PROFILE=smoke``.

Exercise notebooks contain ``raise NotImplementedError(...)`` stubs, so they are run from a copy in
which every code cell is tagged ``raises-exception``: the run must reach the end, and the first error
(if any) must be a ``NotImplementedError`` from a stub. Everything before the first stub runs
strictly, and every other line is covered by the matching solution notebook.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lowlight_course.notebook_tools import describe_failure

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
NOTEBOOKS = sorted(p for f in FOLDERS for p in (ROOT / f).glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
TIMEOUT = 900


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _is_exercise(path: Path) -> bool:
    return path.parent.name == "exercises"


def _tagged_copy(path: Path, dest: Path) -> Path:
    """A copy of the notebook with every code cell allowed to raise (for exercises)."""
    nb = _load(path)
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "raises-exception" not in tags and "parameters" not in tags:
                tags.append("raises-exception")
    dest.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return dest


def _errors(nb):
    """(cell index, source, ename, evalue) of every error output."""
    return [(i, _source(c), o.get("ename"), o.get("evalue")) for i, c in enumerate(nb["cells"])
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_notebook_discovery():
    """Always present, so this module never collects zero tests."""
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet in notebooks/, solutions/ or exercises/")
    names = {p.name for p in NOTEBOOKS if p.parent.name == "exercises"}
    assert names <= {p.name for p in NOTEBOOKS if p.parent.name == "solutions"}, \
        "every exercise notebook must come from a solution notebook"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_parameters_cell(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), \
        f"{path.name}: the first code cell must be tagged 'parameters' (papermill injects the profile there)"
    assert re.search(r"^profile\s*=\s*[\"']auto[\"']", _source(first), re.M), \
        f"{path.name}: the parameters cell must hold profile = \"auto\""


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_papermill(path, tmp_path):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    rel = path.relative_to(ROOT)
    src = _tagged_copy(path, tmp_path / f"input_{path.name}") if _is_exercise(path) else path
    out = tmp_path / path.name
    try:
        pm.execute_notebook(str(src), str(out), parameters={"profile": "smoke"}, kernel_name="python3", language="python",
                            cwd=str(path.parent), progress_bar=False, execution_timeout=TIMEOUT)
    except PapermillExecutionError as exc:
        if not _is_exercise(path):
            pytest.fail(describe_failure(exc, rel), pytrace=False)
        errors = _errors(_load(out))
        index, source, ename, evalue = errors[0]
        if ename != "NotImplementedError":
            excerpt = "\n".join("    " + s for s in source.strip().splitlines()[:12])
            pytest.fail(f"{rel}: cell {index} raised {ename}: {evalue} before any exercise stub "
                        f"(only NotImplementedError is expected in an exercise)\n  source:\n{excerpt}",
                        pytrace=False)


def _nbval_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["LOWLIGHT_PROFILE"] = "smoke"
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbval(path, tmp_path):
    target = _tagged_copy(path, tmp_path / path.name) if _is_exercise(path) else path
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
           f"--nbval-cell-timeout={TIMEOUT}", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
           str(target)]
    proc = subprocess.run(cmd, cwd=str(target.parent), env=_nbval_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"nbval failed on {path.relative_to(ROOT)} (exit {proc.returncode}):\n{tail}", pytrace=False)
