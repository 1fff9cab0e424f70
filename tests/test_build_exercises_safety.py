"""build-exercises never loses a learner's work (issue 10 item 1): one row per accident.

Each row builds a small course folder, does what a learner or maintainer does by accident, runs
`lowlight-course build-exercises` (in process, through the CLI's main), and checks the exit status,
the message and, above all, that every file the learner had is still there, byte for byte.
"""
import datetime as dt
import json
import os
from pathlib import Path

import nbformat
import pytest

from lowlight_course import cli
from lowlight_course import exercises as E


def _solution(answer="return x * 2", hint="double it"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Exercise"),
        nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"def f(x):\n    ### BEGIN SOLUTION\n    ### HINT: {hint}\n    {answer}\n"
                                  f"    ### END SOLUTION"),
    ]
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:03d}"
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return nb


def _course(root: Path, names=("01_a.ipynb", "02_b.ipynb"), build=True):
    (root / "solutions").mkdir(parents=True)
    for n in names:
        nbformat.write(_solution(), str(root / "solutions" / n))
    if build:
        assert E.build_exercises(root)  # the generated, untouched starting point
    return root


def _build(root, *args, capsys):
    code = cli.main(["build-exercises", "--root", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _snapshot(folder: Path):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _edit(path: Path, text="    return x + x  # my answer"):
    nb = json.loads(path.read_text())
    nb["cells"][2]["source"] = f"def f(x):\n{text}"
    path.write_text(json.dumps(nb, indent=1))


def _run_in_jupyter(path: Path):
    """What running every cell does: outputs and execution counts, sources as lists; no edit."""
    nb = json.loads(path.read_text())
    for i, c in enumerate(nb["cells"]):
        c["source"] = c["source"].splitlines(keepends=True) if isinstance(c["source"], str) else c["source"]
        if c["cell_type"] == "code":
            c["execution_count"] = i
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
    nb["metadata"]["widgets"] = {"state": {}}
    path.write_text(json.dumps(nb, indent=2))


# ---- the accidents -----------------------------------------------------------------------------
def learner_copy_without_solutions(tmp):
    """A learner's copy: exercises/ but no solutions/ (used to delete all exercises, exit 0)."""
    root = _course(tmp / "repo")
    learner = tmp / "learner"
    (learner / "exercises").mkdir(parents=True)
    for p in (root / "exercises").glob("*.ipynb"):
        (learner / "exercises" / p.name).write_bytes(p.read_bytes())
    _edit(learner / "exercises" / "01_a.ipynb")
    return learner, [], 2, ["no solutions/ folder", "learner's copy", "untouched"]


def wrong_folder(tmp):
    """Run from a folder that is not a course (used to say 'already up to date')."""
    (tmp / "somewhere").mkdir()
    (tmp / "somewhere" / "notes.ipynb").write_text("{}")
    return tmp / "somewhere", [], 2, ["no solutions/ folder", "--root"]


def empty_solutions_folder(tmp):
    (tmp / "c" / "solutions").mkdir(parents=True)
    return tmp / "c", [], 2, ["no .ipynb"]


def copy1_and_scratch_notebooks(tmp):
    """Jupyter's -Copy1 duplicate (it carries the original's record) and a scratch notebook."""
    root = _course(tmp / "c")
    ex = root / "exercises"
    (ex / "01_a-Copy1.ipynb").write_bytes((ex / "01_a.ipynb").read_bytes())
    (ex / "scratch.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (ex / "Untitled.ipynb").write_text("not even json")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))  # a real change too
    return root, [], 0, ["01_a.ipynb: updated"]


def edited_exercise(tmp):
    """The learner filled in an exercise; the solution changed meanwhile (used to overwrite it)."""
    root = _course(tmp / "c")
    _edit(root / "exercises" / "02_b.ipynb")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "02_b.ipynb"))
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    return root, [], 1, ["exercises/02_b.ipynb", "edited", "--force", "changed nothing"]


def hand_made_exercise_without_record(tmp):
    """A notebook under a generated name that build-exercises did not write (no record)."""
    root = _course(tmp / "c")
    mine = _solution("return x * 3")
    mine.metadata = {}
    nbformat.write(mine, str(root / "exercises" / "01_a.ipynb"))
    return root, [], 1, ["exercises/01_a.ipynb", "not a notebook build-exercises generated"]


def exercise_is_a_link(tmp):
    root = _course(tmp / "c")
    (tmp / "elsewhere.ipynb").write_bytes((root / "exercises" / "01_a.ipynb").read_bytes())
    (root / "exercises" / "01_a.ipynb").unlink()
    (root / "exercises" / "01_a.ipynb").symlink_to(tmp / "elsewhere.ipynb")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    return root, [], 1, ["exercises/01_a.ipynb", "link"]


def broken_later_solution(tmp):
    """The second solution's markers are broken: the first exercise must not be half-updated."""
    root = _course(tmp / "c")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    bad = _solution()
    bad.cells[2].source = "def f(x):\n    ### BEGIN SOLUTION\n    return x"
    nbformat.write(bad, str(root / "solutions" / "02_b.ipynb"))
    return root, [], 2, ["02_b.ipynb", "no '### END SOLUTION'"]


def unreadable_solution(tmp):
    root = _course(tmp / "c")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    (root / "solutions" / "02_b.ipynb").write_text("{ not json")
    return root, [], 2, ["02_b.ipynb", "not a readable notebook", "nothing was written"]


def exercises_is_a_file(tmp):
    root = _course(tmp / "c", build=False)
    (root / "exercises").write_text("oops")
    return root, [], 2, ["not a folder"]


def run_but_not_edited(tmp):
    """Running the cells (outputs, counts, list sources) is not editing: the update goes through."""
    root = _course(tmp / "c")
    _run_in_jupyter(root / "exercises" / "01_a.ipynb")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    return root, [], 0, ["01_a.ipynb: updated"]


def stale_exercises(tmp):
    """Solutions removed: an untouched generated exercise goes, an edited one stays."""
    root = _course(tmp / "c", names=("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"))
    _edit(root / "exercises" / "03_c.ipynb")
    (root / "solutions" / "02_b.ipynb").unlink()
    (root / "solutions" / "03_c.ipynb").unlink()
    return root, [], 0, ["02_b.ipynb: removed", "03_c.ipynb: kept"]


def force_keeps_backups(tmp):
    """--force replaces an edited exercise after a backup; a second --force never overwrites the first."""
    root = _course(tmp / "c")
    _edit(root / "exercises" / "01_a.ipynb")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    return root, ["--force"], 0, ["01_a.ipynb: replaced", "backups"]


ROWS = [learner_copy_without_solutions, wrong_folder, empty_solutions_folder, copy1_and_scratch_notebooks,
        edited_exercise, hand_made_exercise_without_record, exercise_is_a_link, broken_later_solution,
        unreadable_solution, exercises_is_a_file, run_but_not_edited, stale_exercises, force_keeps_backups]

# what each row's build may change in exercises/ (everything else must be byte-identical afterwards)
MAY_CHANGE = {"copy1_and_scratch_notebooks": {"01_a.ipynb"}, "run_but_not_edited": {"01_a.ipynb"},
              "stale_exercises": {"02_b.ipynb"}, "force_keeps_backups": {"01_a.ipynb"}}


@pytest.mark.parametrize("accident", ROWS, ids=[r.__name__ for r in ROWS])
def test_accident(accident, tmp_path, capsys):
    root, args, want_code, want_words = accident(tmp_path)
    ex = root / "exercises"
    before = _snapshot(ex) if ex.is_dir() else {}
    code, out, err = _build(root, *args, capsys=capsys)
    text = out + err
    assert code == want_code, text
    for word in want_words:
        assert word in text, f"{word!r} not in:\n{text}"
    assert "Traceback" not in text
    after = _snapshot(ex) if ex.is_dir() else {}
    may = MAY_CHANGE.get(accident.__name__, set())
    for name, data in before.items():
        if name in may:
            continue
        assert after.get(name) == data, f"{name} was changed or removed"
    assert not [n for n in after if n.endswith(".tmp")], "temporary files left behind"
    if accident is force_keeps_backups:
        backups = sorted((ex / "backups").glob("01_a.*.ipynb"))
        assert [b.read_bytes() for b in backups] == [before["01_a.ipynb"]]
        assert E.file_state(ex / "01_a.ipynb") == E.UNTOUCHED
    if accident is stale_exercises:
        assert "02_b.ipynb" not in after


def test_force_twice_in_the_same_second_keeps_both_backups(tmp_path, capsys):
    root = _course(tmp_path / "c")
    target = root / "exercises" / "01_a.ipynb"
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    _edit(target, "    return 1  # first attempt")
    first = E.backup(target, now=now)
    _edit(target, "    return 2  # second attempt")
    second = E.backup(target, now=now)
    assert first != second and first.exists() and second.exists()
    assert b"first attempt" in first.read_bytes() and b"second attempt" in second.read_bytes()
    assert second.name == "01_a.20260102-030405-2.ipynb"


def test_refusal_writes_nothing_even_for_files_it_could_update(tmp_path, capsys):
    """All or nothing: one edited exercise blocks the update of the untouched one too."""
    root = _course(tmp_path / "c")
    before = _snapshot(root / "exercises")
    _edit(root / "exercises" / "02_b.ipynb")
    edited = (root / "exercises" / "02_b.ipynb").read_bytes()
    for n in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / n))
    code, _, err = _build(root, capsys=capsys)
    assert code == 1
    assert (root / "exercises" / "01_a.ipynb").read_bytes() == before["01_a.ipynb"]
    assert (root / "exercises" / "02_b.ipynb").read_bytes() == edited


def test_check_mode_writes_nothing_and_reports_the_refusal(tmp_path, capsys):
    root = _course(tmp_path / "c")
    _edit(root / "exercises" / "02_b.ipynb")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "02_b.ipynb"))
    before = _snapshot(root / "exercises")
    code, out, err = _build(root, "--check", capsys=capsys)
    assert code == 1 and "would refuse" in out
    assert _snapshot(root / "exercises") == before


def test_read_only_exercises_folder(tmp_path, capsys, monkeypatch):
    """A read-only exercises/: a one-line error, exit 2, no traceback, nothing changed. (As root
    chmod does not stop writes, so the permission error is also injected where the files are written.)"""
    root = _course(tmp_path / "c")
    nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / "01_a.ipynb"))
    ex = root / "exercises"
    before = _snapshot(ex)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(E.tempfile, "mkstemp", denied)
    os.chmod(ex, 0o555)
    try:
        code, out, err = _build(root, capsys=capsys)
    finally:
        os.chmod(ex, 0o755)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Permission denied" in lines[0] and "nothing was changed" in lines[0], err
    assert "Traceback" not in out + err
    assert _snapshot(ex) == before


def test_interrupted_write_leaves_old_files_and_no_temporaries(tmp_path, capsys, monkeypatch):
    """The disk fills up while writing the second file: the first is not replaced either."""
    root = _course(tmp_path / "c")
    for n in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(_solution("return 2 * x", hint="twice"), str(root / "solutions" / n))
    before = _snapshot(root / "exercises")
    real = E._write_temp
    calls = []

    def second_fails(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(E, "_write_temp", second_fails)
    code, _, err = _build(root, capsys=capsys)
    assert code == 2 and "No space left" in err
    assert _snapshot(root / "exercises") == before


def test_generated_record_tells_untouched_from_edited(tmp_path):
    root = _course(tmp_path / "c")
    p = root / "exercises" / "01_a.ipynb"
    assert E.file_state(p) == E.UNTOUCHED
    _run_in_jupyter(p)
    assert E.file_state(p) == E.UNTOUCHED
    _edit(p)
    assert E.file_state(p) == E.EDITED
    assert E.file_state(root / "exercises" / "nope.ipynb") == E.MISSING
    copy = root / "exercises" / "02_b-Copy1.ipynb"
    copy.write_bytes((root / "exercises" / "02_b.ipynb").read_bytes())
    assert E.file_state(copy) == E.FOREIGN
    assert E.file_state(copy, expected_name="02_b.ipynb") == E.UNTOUCHED


def test_repository_exercises_are_untouched_generated_files():
    """Every committed exercise carries a record that matches it (so a rebuild may replace it)."""
    root = Path(__file__).resolve().parents[1]
    for p in sorted((root / "exercises").glob("*.ipynb")):
        assert E.file_state(p) == E.UNTOUCHED, p.name


def test_check_names_foreign_notebooks_but_build_leaves_them(tmp_path, capsys):
    """In the repository, --check flags a notebook in exercises/ that was not generated (it would ship);
    the build itself never touches it."""
    root = _course(tmp_path / "c")
    copy = root / "exercises" / "01_a-Copy1.ipynb"
    copy.write_bytes((root / "exercises" / "01_a.ipynb").read_bytes())
    code, out, _ = _build(root, "--check", capsys=capsys)
    assert code == 1 and "01_a-Copy1.ipynb: not generated" in out
    code, out, _ = _build(root, capsys=capsys)
    assert code == 0 and copy.exists() and "Copy1" not in out
