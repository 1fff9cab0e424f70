"""The build hook ships the whole course; the sdist carries what the hook needs (no wheel is built here:
``.ci/wheel_course.sh`` builds, installs and runs it, ``make wheel-test``)."""
from __future__ import annotations

import runpy
from pathlib import Path

import setuptools

from lowlight_course.course_files import COURSE_FOLDERS, course_source

REPO = Path(__file__).resolve().parents[1]


def _setup_module(monkeypatch):
    monkeypatch.setattr(setuptools, "setup", lambda **kw: None)  # read setup.py without building
    return runpy.run_path(str(REPO / "setup.py"))


def test_hook_ships_every_course_notebook(monkeypatch):
    mod = _setup_module(monkeypatch)
    assert tuple(mod["COURSE_FOLDERS"]) == COURSE_FOLDERS
    shipped = {rel for _, rel in mod["course_files"]()}
    expected = {f"{f}/{p.name}" for f in COURSE_FOLDERS for p in (REPO / f).glob("*.ipynb")}
    assert expected <= shipped and len(expected) >= 22
    assert {"notebooks/index.md", "CHANGELOG.md"} <= shipped
    assert not [r for r in shipped if "checkpoint" in r or "/." in r or "backups" in r]


def test_sdist_manifest_carries_the_hook_inputs():
    manifest = (REPO / "MANIFEST.in").read_text().split("\n")
    for folder in COURSE_FOLDERS:
        assert f"graft {folder}" in manifest
    assert any(line.startswith("include ") and "CHANGELOG.md" in line and "setup.py" in line for line in manifest)


def test_clone_uses_its_own_folders():
    assert course_source() == REPO  # editable install / clone: no copy of the notebooks is made
    assert not (REPO / "lowlight_course" / "_course").exists()
