"""get-course: the course copied into a learner's folder; a re-run after an upgrade; --reset; the record.

A small fake course (``source``) stands in for the installed one, so an upgrade is two sources with
two versions; one test copies the real course. The learner's accidents: edits, deletions, renames,
read-only files, an edited record, two runs at once, Ctrl-C in the middle.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import stat
from pathlib import Path

import pytest

import lowlight_course
from lowlight_course import course_files
from lowlight_course.cli import main
from lowlight_course.commands import get_course as gc
from lowlight_course.commands.get_course import GetCourseError, get_course
from lowlight_course.course_files import RECORD_FILE, report_updates
from lowlight_course.exercises import EDITED, RECORD_KEY, UNTOUCHED, file_state, make_exercise
from lowlight_course.notebook_tools import notebook_bytes

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _nb(*sources):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i}"
    return nb


def _write_source(root: Path, lecture="x = 1", exercise_answer="return 1", index="# Course map\n",
                  extra_lecture=False, exercise_check="print(f)"):
    """A course source: notebooks/00_intro.ipynb (+ index.md), solutions/01_task.ipynb -> exercises/."""
    for d in ("notebooks", "exercises", "solutions"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "notebooks" / "00_intro.ipynb").write_bytes(notebook_bytes(_nb(lecture)))
    if extra_lecture:
        (root / "notebooks" / "01_more.ipynb").write_bytes(notebook_bytes(_nb("more = 1")))
    (root / "notebooks" / "index.md").write_text(index)
    sol = _nb("def f():\n    ### BEGIN SOLUTION\n    " + exercise_answer + "\n    ### END SOLUTION", exercise_check)
    (root / "solutions" / "01_task.ipynb").write_bytes(notebook_bytes(sol))
    (root / "solutions" / "02_other.ipynb").write_bytes(notebook_bytes(_nb("def g():\n    ### BEGIN SOLUTION\n"
                                                                           "    return 2\n    ### END SOLUTION")))
    for p in sorted((root / "solutions").glob("*.ipynb")):
        import nbformat

        (root / "exercises" / p.name).write_bytes(notebook_bytes(make_exercise(nbformat.read(str(p), 4), p.name)))
    (root / "CHANGELOG.md").write_text("# Changelog\n")
    return root


@pytest.fixture
def v1(tmp_path):
    return _write_source(tmp_path / "src-v1")


@pytest.fixture
def v2(tmp_path):
    return _write_source(tmp_path / "src-v2", lecture="x = 2  # v2", exercise_answer="return 10",
                         index="# Course map, v2\n", extra_lecture=True, exercise_check="print(f())  # v2")


def _files(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _edit_cell(path: Path, index: int, text: str):
    nb = json.loads(path.read_text())
    nb["cells"][index]["source"] = text
    path.write_text(json.dumps(nb, indent=1))


def test_fresh_copy_lectures_and_exercises(v1, tmp_path):
    dest = tmp_path / "learner"
    res = get_course(dest, source=v1, version="0.1.0", echo=None)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == [".lowlight-course.json", ".lowlight-course.lock", "CHANGELOG.md", "exercises/01_task.ipynb",
                   "exercises/02_other.ipynb", "notebooks/00_intro.ipynb", "notebooks/index.md"]
    assert len(res.added) == 5 and not res.updated and not res.kept and len(res.lines) == 1  # the summary only
    for nb in ("notebooks/00_intro.ipynb", "exercises/01_task.ipynb"):
        assert file_state(dest / nb) == UNTOUCHED
        assert json.loads((dest / nb).read_text())["metadata"][RECORD_KEY]["version"] == "0.1.0"
    assert "raise NotImplementedError" in (dest / "exercises/01_task.ipynb").read_text()
    rec = json.loads((dest / RECORD_FILE).read_text())
    assert rec["version"] == "0.1.0" and set(rec["files"]) == set(got) - {RECORD_FILE, ".lowlight-course.lock"}
    assert "2 lectures" not in res.lines[-1] and "1 lectures, 2 exercises (5 added" in res.lines[-1]


def test_solutions_only_when_asked(v1, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    assert not (dest / "solutions").exists()
    res = get_course(dest, source=v1, solutions=True, echo=None)
    assert sorted(res.added) == ["solutions/01_task.ipynb", "solutions/02_other.ipynb"]
    v = lowlight_course.__version__
    assert res.lines[:2] == [f"solutions/01_task.ipynb: new in {v}", f"solutions/02_other.ipynb: new in {v}"]
    assert "return 1" in (dest / "solutions/01_task.ipynb").read_text()


def test_rerun_changes_nothing(v1, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    before = _files(dest)
    mtimes = {p: p.stat().st_mtime_ns for p in dest.rglob("*.ipynb")}
    res = get_course(dest, source=v1, echo=None)
    assert not (res.added or res.updated or res.kept or res.restored) and len(res.unchanged) == 5
    assert _files(dest) == before and {p: p.stat().st_mtime_ns for p in dest.rglob("*.ipynb")} == mtimes


def test_upgrade_updates_untouched_keeps_edited_and_says_so(v1, v2, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, version="0.1.0", echo=None)
    ex1, ex2, lec = dest / "exercises/01_task.ipynb", dest / "exercises/02_other.ipynb", dest / "notebooks/00_intro.ipynb"
    _edit_cell(ex1, 0, "def f():\n    return 'my answer'")     # edited; the course changes it too
    _edit_cell(ex2, 0, "def g():\n    return 'mine'")          # edited; the course does not change it
    (dest / "notebooks/index.md").write_text("# my notes\n")   # edited; the course changes it
    nb = json.loads(lec.read_text())                           # run, not edited: outputs only
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    lec.write_text(json.dumps(nb))
    mine1, mine2 = ex1.read_bytes(), ex2.read_bytes()
    printed = []
    res = get_course(dest, source=v2, version="0.2.0", echo=printed.append)
    assert ex1.read_bytes() == mine1 and ex2.read_bytes() == mine2             # never overwritten
    assert (dest / "notebooks/index.md").read_text() == "# my notes\n"
    assert "x = 2  # v2" in lec.read_text() and file_state(lec) == UNTOUCHED      # untouched: updated
    assert (dest / "notebooks/01_more.ipynb").is_file()                          # new material
    beside = dest / "exercises/01_task.v0.2.0.ipynb"
    assert json.loads(beside.read_text())["metadata"][RECORD_KEY]["version"] == "0.2.0"
    assert (dest / "notebooks/index.v0.2.0.md").read_text() == "# Course map, v2\n"
    assert not (dest / "exercises/02_other.v0.2.0.ipynb").exists()
    assert sorted(res.kept) == [("exercises/01_task.ipynb", "exercises/01_task.v0.2.0.ipynb"),
                                ("notebooks/index.md", "notebooks/index.v0.2.0.md")]
    assert printed[:-1] == [
        "notebooks/00_intro.ipynb: updated to 0.2.0 (you had not edited it)",
        "notebooks/01_more.ipynb: new in 0.2.0",
        "notebooks/index.md: kept as it is (you edited it); the 0.2.0 version is beside it: notebooks/index.v0.2.0.md",
        "exercises/01_task.ipynb: kept as it is (you edited it); the 0.2.0 version is beside it: "
        "exercises/01_task.v0.2.0.ipynb"]
    assert "(1 added, 1 updated, 0 restored, 2 kept as you edited them, 2 unchanged)" in printed[-1]
    assert json.loads((dest / RECORD_FILE).read_text())["version"] == "0.2.0"
    lines = report_updates(dest / "exercises", echo=None)       # every notebook's setup cell says so
    assert [line.split(":")[0] for line in lines] == ["notebooks/index.md", "exercises/01_task.ipynb"]
    before = _files(dest)
    again = get_course(dest, source=v2, version="0.2.0", echo=None)  # a second re-run adds nothing
    assert not again.updated and not again.added and _files(dest).keys() == before.keys()
    assert sorted(again.kept) == sorted(res.kept) and "version is still beside it" in again.lines[0]


def test_deleted_is_restored_renamed_is_the_learners(v1, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    (dest / "exercises/01_task.ipynb").rename(dest / "exercises/my_attempt.ipynb")
    (dest / "notebooks/index.md").unlink()
    printed = []
    res = get_course(dest, source=v1, echo=printed.append)
    assert sorted(res.restored) == ["exercises/01_task.ipynb", "notebooks/index.md"]
    assert any(line.startswith("exercises/01_task.ipynb: restored (it was missing") for line in printed)
    assert (dest / "exercises/my_attempt.ipynb").is_file()
    _edit_cell(dest / "exercises/my_attempt.ipynb", 0, "mine")
    _write_source(v1, exercise_check="print(f())")  # the course changes: the renamed copy is left alone
    get_course(dest, source=v1, echo=None)
    assert "mine" in (dest / "exercises/my_attempt.ipynb").read_text()
    assert not list(dest.glob("exercises/my_attempt.v*"))


def test_read_only_file_is_kept(v1, v2, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, version="0.1.0", echo=None)
    lec = dest / "notebooks/00_intro.ipynb"
    lec.chmod(stat.S_IRUSR | stat.S_IRGRP)
    before = lec.read_bytes()
    res = get_course(dest, source=v2, version="0.2.0", echo=None)
    assert lec.read_bytes() == before
    assert ("notebooks/00_intro.ipynb", "notebooks/00_intro.v0.2.0.ipynb") in res.kept
    assert any("(it is read-only)" in line for line in res.lines)


def test_edited_record_file_and_edited_notebook_record(v1, v2, tmp_path):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, version="0.1.0", echo=None)
    (dest / RECORD_FILE).write_text('{"files": "nonsense"')              # the learner edited the record
    ex = dest / "exercises/02_other.ipynb"
    nb = json.loads(ex.read_text())
    nb["metadata"][RECORD_KEY]["source_sha256"] = "0" * 64               # and one notebook's record
    ex.write_text(json.dumps(nb))
    mine = ex.read_bytes()
    _write_source(v2, exercise_answer="return 10", index="# v2 map\n")
    (v2 / "solutions/02_other.ipynb").write_bytes(notebook_bytes(_nb("def g():\n    return 'changed'")))
    import nbformat
    (v2 / "exercises/02_other.ipynb").write_bytes(notebook_bytes(make_exercise(
        nbformat.read(str(v2 / "solutions/02_other.ipynb"), 4), "02_other.ipynb")))
    res = get_course(dest, source=v2, version="0.2.0", echo=None)
    assert res.lines[0].startswith(f"note: {RECORD_FILE} in ") and "unreadable or was edited" in res.lines[0]
    assert ex.read_bytes() == mine and file_state(ex) == EDITED
    assert ("exercises/02_other.ipynb", "exercises/02_other.v0.2.0.ipynb") in res.kept
    assert (dest / "notebooks/index.md").read_text() == "# Course map\n"   # no record: kept, new beside
    assert (dest / "notebooks/index.v0.2.0.md").is_file()
    assert isinstance(json.loads((dest / RECORD_FILE).read_text())["files"], dict)  # rebuilt


def test_reset_backs_up_then_gives_a_fresh_copy(v1, tmp_path, capsys):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    ex = dest / "exercises/01_task.ipynb"
    fresh = ex.read_bytes()
    _edit_cell(ex, 0, "def f():\n    return 'broken attempt'")
    mine = ex.read_bytes()
    res = get_course(dest, source=v1, reset=["01_task"], echo=None)
    assert ex.read_bytes() == fresh
    (rel, saved), = res.reset
    assert rel == "exercises/01_task.ipynb" and saved.startswith("exercises/backups/01_task.")
    assert (dest / saved).read_bytes() == mine and f"backed up in {saved}" in res.lines[0]
    for spelling in ("exercises/01_task.ipynb", "01_TASK.ipynb", "01"):        # other spellings, same notebook
        assert get_course(dest, source=v1, reset=[spelling], echo=None).reset[0][0] == "exercises/01_task.ipynb"
    assert len(list((dest / "exercises/backups").iterdir())) == 1              # already fresh: no new backup


def test_reset_unknown_name_lists_the_names(v1, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "learner"
    with pytest.raises(GetCourseError, match=r"--reset 99_nope: no such course notebook\. Exercises: 01_task, "
                                             r"02_other; also: notebooks/00_intro\.ipynb"):
        get_course(dest, source=v1, reset=["99_nope"], echo=None)
    assert not dest.exists()                                                 # refused before writing
    monkeypatch.setattr(course_files, "course_source", lambda: v1)
    assert main(["get-course", str(dest), "--reset", "99_nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --reset 99_nope: no such course notebook")


@pytest.mark.parametrize("case", ["file", "inside-package", "source-itself", "source-subfolder", "subfolder-is-file",
                                  "broken-link"])
def test_unusable_folders_are_refused_in_one_line(case, v1, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course_files, "course_source", lambda: v1)
    pkg = Path(lowlight_course.__file__).resolve().parent
    target = {"file": tmp_path / "a-file", "inside-package": pkg / "_learner_copy", "source-itself": v1,
              "source-subfolder": v1 / "exercises", "subfolder-is-file": tmp_path / "learner",
              "broken-link": tmp_path / "dangling"}[case]
    if case == "file":
        target.write_text("x")
    if case == "subfolder-is-file":
        target.mkdir()
        (target / "exercises").write_text("not a folder")
    if case == "broken-link":
        target.symlink_to(tmp_path / "nowhere")
    before = _files(v1)
    assert main(["get-course", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    expected = {"file": "is a file, not a folder", "inside-package": "is inside the installed package",
                "source-itself": "is the course's own source", "source-subfolder": "is the course's own source",
                "subfolder-is-file": "exists but is not a folder", "broken-link": "is a broken link"}[case]
    assert expected in err
    assert _files(v1) == before and not (pkg / "_learner_copy").exists()


def test_unwritable_folder_refused_simulated(v1, tmp_path, monkeypatch, capsys):
    """os.access says read-only (runs as root too); nothing is written."""
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    before = _files(dest)
    real = os.access
    monkeypatch.setattr(gc.os, "access", lambda p, mode, **k: False if str(p).startswith(str(dest)) else real(p, mode))
    monkeypatch.setattr(course_files, "course_source", lambda: v1)
    assert main(["get-course", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and err.count("\n") == 1
    assert _files(dest) == before


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders; the simulated test covers root")
def test_unwritable_folder_refused_chmod(v1, tmp_path):  # pragma: no cover - root here
    dest = tmp_path / "learner"
    dest.mkdir()
    dest.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(GetCourseError, match="is not writable"):
            get_course(dest, source=v1, echo=None)
    finally:
        dest.chmod(stat.S_IRWXU)


def test_second_run_at_the_same_time_refuses(v1, tmp_path):
    fcntl = pytest.importorskip("fcntl", reason="the lock test uses POSIX flock")
    dest = tmp_path / "learner"
    dest.mkdir()
    with open(dest / gc.LOCK_FILE, "a+b") as fh:     # a first run holds the lock
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(GetCourseError, match="another get-course is writing into"):
            get_course(dest, source=v1, echo=None)
        assert not (dest / "notebooks").exists()
    assert get_course(dest, source=v1, echo=None).added      # released: the next run works


def test_ctrl_c_midway_leaves_whole_files_and_a_record(v1, tmp_path, monkeypatch):
    dest = tmp_path / "learner"
    from lowlight_course import exercises

    real, calls = exercises.atomic_write, []

    def interrupted(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(exercises, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        get_course(dest, source=v1, echo=None)
    monkeypatch.setattr(exercises, "atomic_write", real)
    written = {k: v for k, v in _files(dest).items() if not k.startswith(".lowlight-course")}
    assert len(written) == 2                                   # two whole files, nothing half-written
    assert not [p for p in dest.rglob("*.tmp")]
    rec = json.loads((dest / RECORD_FILE).read_text())         # the record was saved on the way out
    assert set(rec["files"]) == set(written)
    res = get_course(dest, source=v1, echo=None)               # the same command finishes the job
    assert len(res.added) == 3 and len(res.unchanged) == 2


def test_cli_interrupt_says_how_to_finish(v1, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gc, "get_course", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["get-course", str(tmp_path / "x")]) == 130
    assert "run the same command again to finish" in capsys.readouterr().err


def test_real_course_copies_lectures_and_generated_exercises(tmp_path):
    dest = tmp_path / "learner"
    res = get_course(dest, echo=None)
    lectures = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    exercises = sorted(p.name for p in (REPO / "exercises").glob("*.ipynb"))
    assert sorted(p.name for p in (dest / "notebooks").glob("*.ipynb")) == lectures and len(lectures) >= 8
    assert sorted(p.name for p in (dest / "exercises").glob("*.ipynb")) == exercises and len(exercises) >= 7
    assert (dest / "notebooks/index.md").read_bytes() == (REPO / "notebooks/index.md").read_bytes()
    assert not (dest / "solutions").exists()
    from lowlight_course.exercises import source_hash
    from lowlight_course.notebook_tools import _read
    for name in exercises:                                     # the same cells build-exercises generated
        assert file_state(dest / "exercises" / name) == UNTOUCHED
        assert source_hash(_read(dest / "exercises" / name)) == source_hash(_read(REPO / "exercises" / name))
    assert f"lowlight-course {lowlight_course.__version__} in " in res.lines[-1]


# --- version, CHANGELOG --------------------------------------------------------------------------
def test_version_single_source_and_changelog(capsys):
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lowlight_course.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", lowlight_course.__version__)
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"lowlight-course {lowlight_course.__version__}"
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## {lowlight_course.__version__} " in changelog and "## 0.1.0 " in changelog


# --- the other commands outside a course folder --------------------------------------------------
def test_run_outside_a_course_suggests_a_command_that_works(tmp_path, monkeypatch, capsys, v1):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(course_files, "course_source", lambda: v1)
    assert main(["run", "--profile", "smoke", "--exercises"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "this is not a course folder" in err
    suggested = re.search(r"`([^`]+)`", err).group(1)
    assert suggested == ("lowlight-course get-course lowlight-course && cd lowlight-course && "
                         "lowlight-course run --exercises --profile smoke")
    ran = []
    from lowlight_course import runner
    monkeypatch.setattr(runner, "run_notebooks", lambda paths, out, **k: ran.append([Path(p).resolve() for p in paths]) or [])
    for step in suggested.split(" && "):                     # do what the message says
        argv = shlex.split(step)
        if argv[0] == "cd":
            monkeypatch.chdir(argv[1])
        else:
            assert main(argv[1:]) == 0, step
    assert [p.relative_to((tmp_path / "lowlight-course").resolve()).as_posix() for p in ran[0]] == [
        "notebooks/00_intro.ipynb", "exercises/01_task.ipynb", "exercises/02_other.ipynb"]
    monkeypatch.chdir(tmp_path)                               # the folder exists now: the message points to it
    assert main(["run"]) == 2
    assert "`lowlight-course run --root lowlight-course`" in capsys.readouterr().err


def test_run_exercises_and_missing_solutions_note(v1, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "learner"
    get_course(dest, source=v1, echo=None)
    ran = []
    from lowlight_course import runner
    monkeypatch.setattr(runner, "run_notebooks", lambda paths, out, **k: ran.append([p.name for p in paths]) or [])
    assert main(["run", "--root", str(dest), "--solutions", "--exercises", "--output", str(tmp_path / "o")]) == 0
    assert ran == [["00_intro.ipynb", "01_task.ipynb", "02_other.ipynb"]]
    err = capsys.readouterr().err
    assert "note: no solutions/ folder" in err and "`lowlight-course get-course DIR --solutions` copies them" in err


def test_build_exercises_outside_a_clone_says_it_is_a_maintainer_command(tmp_path, capsys):
    assert main(["build-exercises", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "build-exercises is a maintainer command" in err and "get-course DIR" in err and err.count("\n") == 1
    (tmp_path / "exercises").mkdir()
    assert main(["build-exercises", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "maintainer command" in err and "--reset NAME" in err
