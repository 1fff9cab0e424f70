"""`doctor`, `run`, `strip` and `refresh-outputs` on bad paths, read-only folders and a learner's copy.

Every refusal is one line on stderr (``error: ...``), exit status 2, no traceback, and no file
changed. Read-only folders are tested twice: with real permissions (skipped as root, who may write
anywhere) and with ``os.access`` reporting read-only (runs everywhere, as root too).
"""
import json
import os
import stat
import subprocess
import sys

import nbformat
import pytest

from lowlight_course.cli import main

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _notebook(path, code="print(profile)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def course(tmp_path):
    """A learner's copy: notebooks/ and exercises/, no solutions/, plus a stray text file."""
    root = tmp_path / "course"
    _notebook(root / "notebooks" / "01_demo.ipynb")
    _notebook(root / "exercises" / "01_demo.ipynb", "raise NotImplementedError('your answer')")
    (root / "notes.txt").write_text("my notes")
    (root / "broken.ipynb").write_text("{not json")
    return root


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- bad paths: one line, exit 2, nothing written -----------------------------------------------
BAD_PATHS = {
    "a text file": ("notes.txt", "not a Jupyter notebook"),
    "a folder": ("notebooks", "is a folder"),
    "a missing file": ("missing.ipynb", "no such file"),
    "a broken .ipynb": ("broken.ipynb", "cannot be read as a notebook"),
}


@pytest.mark.parametrize("command", ["strip", "refresh-outputs"])
@pytest.mark.parametrize("case", BAD_PATHS)
def test_bad_notebook_paths_are_refused(course, capsys, command, case):
    rel, words = BAD_PATHS[case]
    before = _snapshot(course)
    good = str(course / "notebooks" / "01_demo.ipynb")
    # the good notebook comes first: nothing may be written before every path is checked
    assert main([command, good, str(course / rel)]) == 2
    assert words in _one_line_error(capsys)
    assert _snapshot(course) == before


RUN_OUTPUTS = {
    "the course folder itself": (".", "over the source notebook"),
    "a path that resolves to it": ("notebooks/..", "over the source notebook"),
    "a file": ("notes.txt", "is a file"),
    "below a file": ("notes.txt/build", "is a file"),
}


@pytest.mark.parametrize("case", RUN_OUTPUTS)
def test_run_output_that_would_destroy_work_is_refused(course, capsys, monkeypatch, case):
    out, words = RUN_OUTPUTS[case]
    monkeypatch.chdir(course)
    before = _snapshot(course)
    assert main(["run", "--output", out, "--profile", "smoke"]) == 2
    assert words in _one_line_error(capsys)
    assert _snapshot(course) == before


def test_run_refuses_to_write_over_an_exercise_named_on_the_command_line(course, capsys, monkeypatch):
    # `run exercises/01_demo.ipynb --output .` would write ./exercises/01_demo.ipynb: the learner's work
    monkeypatch.chdir(course)
    before = _snapshot(course)
    assert main(["run", "exercises/01_demo.ipynb", "--output", "."]) == 2
    assert "over the source notebook" in _one_line_error(capsys)
    assert _snapshot(course) == before


def test_run_outside_a_course_folder_says_where_to_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "no notebooks/ folder" in _one_line_error(capsys)


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_run_timeout_must_be_positive_seconds(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--timeout", value])
    assert exc.value.code == 2 and "seconds" in capsys.readouterr().err


# --- read-only folders ---------------------------------------------------------------------------
def _fake_read_only(monkeypatch, root):
    real = os.access
    root = str(root.resolve())

    def access(path, mode, *a, **kw):
        inside = os.path.realpath(path) == root or os.path.realpath(path).startswith(root + os.sep)
        if inside and mode & os.W_OK:
            return False
        return real(path, mode, *a, **kw)

    monkeypatch.setattr(os, "access", access)


@pytest.fixture(params=["simulated", "chmod"])
def read_only_course(request, course, monkeypatch):
    if request.param == "simulated":
        _fake_read_only(monkeypatch, course)
        yield course
        return
    if IS_ROOT:
        pytest.skip("root writes into read-only folders; the simulated case covers root")
    modes = {}
    for p in [course, *course.rglob("*")]:
        modes[p] = p.stat().st_mode
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield course
    for p, m in sorted(modes.items(), key=lambda kv: len(str(kv[0])), reverse=True):
        p.chmod(m)


def test_run_into_a_read_only_folder_is_refused(read_only_course, capsys, monkeypatch):
    monkeypatch.chdir(read_only_course)
    before = _snapshot(read_only_course)
    assert main(["run", "--profile", "smoke"]) == 2          # default --output build, inside it
    assert "not writable" in _one_line_error(capsys)
    assert _snapshot(read_only_course) == before


@pytest.mark.parametrize("command", ["strip", "refresh-outputs"])
def test_strip_and_refresh_in_a_read_only_folder_are_refused(read_only_course, capsys, command):
    before = _snapshot(read_only_course)
    assert main([command, str(read_only_course / "notebooks" / "01_demo.ipynb")]) == 2
    assert "read-only" in _one_line_error(capsys)
    assert _snapshot(read_only_course) == before


def test_doctor_in_a_read_only_folder_writes_nothing(read_only_course, capsys, monkeypatch):
    monkeypatch.chdir(read_only_course)
    before = _snapshot(read_only_course)
    assert main(["doctor"]) in (0, 1)
    assert "torch" in capsys.readouterr().out
    assert _snapshot(read_only_course) == before


# --- a learner's copy (no solutions/) ------------------------------------------------------------
def test_strip_works_in_a_learners_copy(course, capsys):
    ex = course / "exercises" / "01_demo.ipynb"
    nb = nbformat.read(str(ex), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    nbformat.write(nb, str(ex))
    assert main(["strip", str(ex)]) == 0
    assert nbformat.read(str(ex), as_version=4).cells[1].outputs == []
    assert "raise NotImplementedError('your answer')" in ex.read_text()  # the learner's code is kept


@pytest.mark.notebook
def test_run_and_refresh_in_a_learners_copy(course, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(course)
    exercise = (course / "exercises" / "01_demo.ipynb").read_bytes()
    assert main(["run", "--solutions", "--profile", "smoke", "--no-html", "--output", str(tmp_path / "b")]) == 0
    out = capsys.readouterr()
    assert "no solutions/ folder" in out.err and "Traceback" not in out.err
    data = json.loads((tmp_path / "b" / "timings.json").read_text())
    assert [n["notebook"] for n in data["notebooks"]] == ["01_demo.ipynb"]
    assert main(["refresh-outputs", "notebooks/01_demo.ipynb"]) == 0
    assert (course / "exercises" / "01_demo.ipynb").read_bytes() == exercise


def test_entry_point_prints_no_traceback(course):
    proc = subprocess.run([sys.executable, "-m", "lowlight_course.cli", "strip", str(course / "notes.txt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
