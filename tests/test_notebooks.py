"""Every notebook in notebooks/, solutions/ and exercises/ is executed twice:

(a) with papermill, ``profile = "smoke"`` injected into the cell tagged ``parameters``, on PyTorch's
    plain kernels (``ATEN_CPU_CAPABILITY=default``, oneDNN and MKL limited to match) with one thread: the
    smoke row of the kernel matrix that `make test-course` does not run (see the Makefile);
(b) with nbval in lax mode (cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their stored output),
    under ``LOWLIGHT_PROFILE=smoke``, on this machine's kernels with one thread.

All of them run strictly: any error in any cell fails the test. Exercise notebooks are committed with
their stubs (``raise NotImplementedError(...)`` inside the learner's functions); their check cells
report "not implemented yet" instead of raising, and the cells after them fall back to the package's
reference (``lowlight_course.checks.use_or_reference``), so an exercise runs to the end as committed.
Solution notebooks assert that every check passes (``### BEGIN HIDDEN TESTS`` regions, removed from
the exercises); the executed outputs are scanned as well: no failed check in a solution, and in an
exercise every check reports "not implemented yet".
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
# The kernel reads these at start-up (papermill's kernel inherits this process's environment).
PLAIN_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _is_exercise(path: Path) -> bool:
    return path.parent.name == "exercises"


def _stream_text(nb) -> str:
    return "".join("".join(o.get("text", "")) if isinstance(o.get("text"), list) else o.get("text", "")
                   for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _check_calls(nb) -> int:
    return sum(len(re.findall(r"checks\.check_\w+\(", _source(c))) for c in nb["cells"]
               if c.get("cell_type") == "code")


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
def test_papermill(path, tmp_path, monkeypatch):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    rel = path.relative_to(ROOT)
    out = tmp_path / path.name
    for name, value in PLAIN_KERNELS.items():
        monkeypatch.setenv(name, value)
    try:
        pm.execute_notebook(str(path), str(out), parameters={"profile": "smoke"}, kernel_name="python3", language="python",
                            cwd=str(path.parent), progress_bar=False, execution_timeout=TIMEOUT)
    except PapermillExecutionError as exc:
        pytest.fail(describe_failure(exc, rel), pytrace=False)
    nb = _load(out)
    text, calls = _stream_text(nb), _check_calls(nb)
    if path.parent.name == "solutions":
        assert calls, f"{rel}: a solution notebook should call at least one lowlight_course.checks.check_*"
        assert "[FAIL]" not in text and "not implemented yet" not in text, f"{rel}: a check failed:\n{text[-3000:]}"
        passed = len(re.findall(r": (?:all \d+ cases|the one case) passed\. Well done!", text))
        assert passed == calls, f"{rel}: expected {calls} passed checks:\n{text[-3000:]}"
    elif _is_exercise(path):
        assert text.count("not implemented yet") >= calls > 0, \
            f"{rel}: every check should report 'not implemented yet' on the committed stubs:\n{text[-3000:]}"
        assert "Traceback" not in text, f"{rel}: a traceback was printed:\n{text[-3000:]}"


def _nbval_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["LOWLIGHT_PROFILE"] = "smoke"
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbval(path, tmp_path):
    target = path
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
           f"--nbval-cell-timeout={TIMEOUT}", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
           str(target)]
    proc = subprocess.run(cmd, cwd=str(target.parent), env=_nbval_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"nbval failed on {path.relative_to(ROOT)} (exit {proc.returncode}):\n{tail}", pytrace=False)
