"""report_updates: instructor changes that nbgitpuller's ``-Xours`` merge dropped, found and written beside.

Real git repositories in tmp dirs, pulled with nbgitpuller 1.3's own ``GitPuller`` (the code a hub's
``/git-pull/api`` runs: shallow clone, then on each pull ``commit -am`` of the learner's changes and
``merge -Xours origin/main``). The instructor's repository plays the course repo an instructor
makes with ``get-course``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lowlight_course import course_files
from lowlight_course.course_files import LEDGER_FILE, report_updates

pull_mod = pytest.importorskip("nbgitpuller.pull", reason="nbgitpuller 1.3 is not installed: "
                               "pip install -c constraints/tested.txt 'nbgitpuller==1.3.0' (it is in the dev extra)")
if shutil.which("git") is None:  # pragma: no cover
    pytest.skip("git is not installed: these tests drive real git repositories", allow_module_level=True)

CELLS = ["import math\n", "x = 1\n", "# a\n", "# b\n", "# c\n", "y = 2\n", "# d\n", "# e\n", "# f\n", "z = 3\n"]


def _nb(cells) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": s} for s in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
                      indent=1) + "\n"


def _git(d, *args) -> str:
    return subprocess.run(["git", "-C", str(d), *args], check=True, capture_output=True, text=True).stdout


def _commit(up: Path, msg: str) -> None:
    _git(up, "add", "-A")
    _git(up, "-c", "user.name=Instructor", "-c", "user.email=instructor@example.org", "commit", "-qm", msg)


def _set_cell(path: Path, index: int, text: str) -> None:
    nb = json.loads(path.read_text())
    nb["cells"][index]["source"] = text
    path.write_text(json.dumps(nb, indent=1) + "\n")


@pytest.fixture
def course(tmp_path):
    """An instructor repo (exercises/01.ipynb, notebooks/00.ipynb, notebooks/02.ipynb), and a pull() that
    runs nbgitpuller into the learner's folder."""
    up = tmp_path / "instructor"
    (up / "exercises").mkdir(parents=True)
    (up / "notebooks").mkdir()
    _git(up, "init", "-q", "-b", "main")
    (up / "exercises" / "01.ipynb").write_text(_nb(CELLS))
    (up / "notebooks" / "00.ipynb").write_text(_nb(["a = 1\n"]))
    (up / "notebooks" / "02.ipynb").write_text(_nb(["b = 1\n"]))
    _commit(up, "course v1")
    learner = tmp_path / "learner" / "course"
    learner.parent.mkdir()

    def pull():
        for _ in pull_mod.GitPuller(f"file://{up}", str(learner), branch="main").pull():
            pass

    pull()
    return up, learner, pull


def test_collision_written_beside_and_reported(course, capsys):
    up, learner, pull = course
    ex = learner / "exercises" / "01.ipynb"
    _set_cell(ex, 5, "y = 'my answer'\n")                       # the learner answers the exercise
    _set_cell(learner / "notebooks" / "02.ipynb", 0, "b = 'mine'\n")  # and edits a lecture the course keeps
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20  # instructor's fix\n")  # same cell, upstream
    _set_cell(up / "notebooks" / "00.ipynb", 0, "a = 2\n")      # a changed lecture
    (up / "notebooks" / "03.ipynb").write_text(_nb(["c = 1\n"]))  # a new notebook
    _commit(up, "course v2")
    pull()
    mine = ex.read_text()
    assert "my answer" in mine and "instructor's fix" not in mine  # what -Xours did: the fix is gone
    lines = report_updates(learner / "exercises")
    assert len(lines) == 1 and lines[0].startswith("exercises/01.ipynb: ")
    assert "exercises/01.course-update.ipynb" in lines[0] and "nbgitpuller kept your version" in lines[0]
    assert capsys.readouterr().out.strip() == lines[0]      # printed, once
    beside = learner / "exercises" / "01.course-update.ipynb"
    assert beside.read_bytes() == (up / "exercises" / "01.ipynb").read_bytes()
    assert ex.read_text() == mine                            # the learner's file is not touched
    assert (learner / "notebooks" / "03.ipynb").is_file()    # new material arrived
    assert "a = 2" in (learner / "notebooks" / "00.ipynb").read_text()
    # asked again (every notebook's setup cell asks): the same line, no second file
    assert report_updates(learner, echo=None) == lines
    assert sorted(p.name for p in (learner / "exercises").iterdir()) == ["01.course-update.ipynb", "01.ipynb"]
    ledger = json.loads((learner / ".git" / LEDGER_FILE).read_text())
    assert [e["file"] for es in ledger["merges"].values() for e in es] == ["exercises/01.ipynb"]
    # the learner deletes the new version once read: the reminder stops and it is not written again
    beside.unlink()
    assert report_updates(learner, echo=None) == [] and not beside.exists()


def test_clean_merge_in_the_same_file_is_no_collision(course):
    up, learner, pull = course
    _set_cell(learner / "exercises" / "01.ipynb", 1, "x = 'mine'\n")
    _set_cell(up / "exercises" / "01.ipynb", 9, "z = 30\n")   # far from the learner's cell: git merges both
    _commit(up, "v2")
    pull()
    merged = (learner / "exercises" / "01.ipynb").read_text()
    assert "x = 'mine'" in merged and "z = 30" in merged
    assert report_updates(learner, echo=None) == []
    assert not (learner / "exercises" / "01.course-update.ipynb").exists()


def test_learner_without_edits_fast_forwards_silently(course):
    up, learner, pull = course
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20\n")
    _commit(up, "v2")
    pull()
    assert "y = 20" in (learner / "exercises" / "01.ipynb").read_text()
    assert report_updates(learner, echo=None) == []


def test_instructor_deleted_a_file_the_learner_edited(course):
    up, learner, pull = course
    _set_cell(learner / "notebooks" / "02.ipynb", 0, "b = 'mine'\n")
    (up / "notebooks" / "02.ipynb").unlink()
    _commit(up, "v2: chapter 02 removed")
    pull()
    assert "mine" in (learner / "notebooks" / "02.ipynb").read_text()  # nbgitpuller keeps it
    lines = report_updates(learner, echo=None)
    assert len(lines) == 1 and lines[0].startswith("notebooks/02.ipynb: the course update removed this file")


def test_two_pulls_without_a_report_between_are_both_examined(course):
    up, learner, pull = course
    ex = learner / "exercises" / "01.ipynb"
    _set_cell(ex, 5, "y = 'answer'\n")
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20\n")
    _commit(up, "v2")
    pull()
    _set_cell(learner / "notebooks" / "02.ipynb", 0, "b = 'mine'\n")
    _set_cell(up / "notebooks" / "00.ipynb", 0, "a = 'v3'\n")
    _commit(up, "v3")
    pull()
    lines = report_updates(learner, echo=None)
    assert [line.split(":")[0] for line in lines] == ["exercises/01.ipynb"]
    assert "y = 20" in (learner / "exercises" / "01.course-update.ipynb").read_text()


def test_an_existing_file_is_never_overwritten(course):
    up, learner, pull = course
    _set_cell(learner / "exercises" / "01.ipynb", 5, "y = 'answer'\n")
    mine = learner / "exercises" / "01.course-update.ipynb"
    mine.write_text("the learner's own notes under that very name")   # untracked: nbgitpuller leaves it
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20\n")
    _commit(up, "v2")
    pull()
    lines = report_updates(learner, echo=None)
    assert mine.read_text() == "the learner's own notes under that very name"
    second = learner / "exercises" / "01.course-update-2.ipynb"
    assert second.read_bytes() == (up / "exercises" / "01.ipynb").read_bytes()
    assert "exercises/01.course-update-2.ipynb" in lines[0]


def test_cheap_when_nothing_is_new(course):
    up, learner, pull = course
    _set_cell(learner / "exercises" / "01.ipynb", 5, "y = 'answer'\n")
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20\n")
    _commit(up, "v2")
    pull()
    report_updates(learner, echo=None)  # examines the merge once
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        assert len(report_updates(learner / "exercises", echo=None)) == 1
        times.append(time.perf_counter() - t0)
    # one `git log` and a ledger read; measured 3-5 ms idle. The bound leaves room for a loaded CI box
    # but fails if every call re-examined every merge (several git calls per file).
    assert min(times) < 0.1, times


def test_silent_and_harmless_outside_a_course(tmp_path, capsys):
    assert report_updates(tmp_path, ) == []
    assert report_updates(tmp_path / "does-not-exist") == []
    plain = tmp_path / "repo"
    plain.mkdir()
    _git(plain, "init", "-q")
    (plain / "a.txt").write_text("x")
    _commit(plain, "plain repo, no nbgitpuller")
    assert report_updates(plain) == []
    assert capsys.readouterr().out == ""
    assert not (plain / ".git" / LEDGER_FILE).exists()


def test_never_raises(course, monkeypatch, tmp_path):
    up, learner, pull = course
    _set_cell(learner / "exercises" / "01.ipynb", 5, "y = 'answer'\n")
    _set_cell(up / "exercises" / "01.ipynb", 5, "y = 20\n")
    _commit(up, "v2")
    pull()
    (learner / ".git" / LEDGER_FILE).write_text("{corrupt")      # a corrupt ledger is rebuilt
    assert len(report_updates(learner, echo=None)) == 1
    def boom(*a, **k):
        raise RuntimeError("git exploded")
    monkeypatch.setattr(course_files, "_puller_merges", boom)
    assert report_updates(learner, echo=None) == []
    monkeypatch.undo()
    broken = tmp_path / "broken"
    (broken / ".git").mkdir(parents=True)
    (broken / ".git" / "HEAD").write_text("garbage")
    assert report_updates(broken) == []
    monkeypatch.setattr(course_files.shutil, "which", lambda name: None)  # no git on this machine
    assert report_updates(learner, echo=None) == []
    assert report_updates(12345) == [] and report_updates(None) == []


def test_getcourse_folder_reports_new_versions_beside(tmp_path):
    rec = {"course": "lowlight-course", "version": "0.2.0", "files": {},
           "updates": [{"file": "exercises/01.ipynb", "beside": "exercises/01.v0.2.0.ipynb", "version": "0.2.0"},
                       {"file": "notebooks/index.md", "beside": "notebooks/index.v0.2.0.md", "version": "0.2.0"}]}
    (tmp_path / "exercises").mkdir()
    (tmp_path / ".lowlight-course.json").write_text(json.dumps(rec))
    (tmp_path / "exercises" / "01.v0.2.0.ipynb").write_text("{}")
    lines = report_updates(tmp_path / "exercises", echo=None)   # index.v0.2.0.md was deleted: no line
    assert lines == ["exercises/01.ipynb: you edited it, so get-course 0.2.0 kept yours and wrote the new version "
                     "beside it: exercises/01.v0.2.0.ipynb (compare, copy what you need, then delete "
                     "exercises/01.v0.2.0.ipynb to stop this message)"]
    (tmp_path / ".lowlight-course.json").write_text("[1, 2")
    assert report_updates(tmp_path, echo=None) == []
