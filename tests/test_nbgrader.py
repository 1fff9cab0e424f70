"""nbgrader for real (issue 9 item 5): the solutions' nbgrader metadata, and nbgrader's own
generate_assignment and autograde on all seven.

Needs the `instructor` extra (`pip install -c constraints/tested.txt -e '.[dev,instructor]'`; the
Makefile's test set-up installs it). Without nbgrader the nbgrader-running tests are skipped with
that reason, except under CI (CI=true), where a missing nbgrader is a failure, never a silent pass.

"build-exercises agrees with nbgrader's release" means, for every notebook: the same cells (count,
order, types, ids); in every cell the same source outside solution regions, line for line, with
hidden tests removed by both; and the stubs in the same places at the same indentation (ours is one
`raise NotImplementedError("<hint>")` line, nbgrader's `# YOUR CODE HERE` + `raise
NotImplementedError()`; in markdown, ours *Your answer here.*, nbgrader's YOUR ANSWER HERE).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lowlight_course.exercises import MARKDOWN_PLACEHOLDER, make_exercise, nbgrader_metadata, stamp_nbgrader

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
ASSIGNMENT = "course"
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_committed_nbgrader_metadata_is_what_the_tool_computes(solution):
    """So later edits cannot drift: re-stamp with `python -m lowlight_course.exercises nbgrader`."""
    nb = nbformat.read(str(solution), as_version=4)
    want = nbgrader_metadata(nb, solution.name)
    got = {i: c.metadata.get("nbgrader") for i, c in enumerate(nb.cells)}
    assert got == want, (f"{solution.name}: nbgrader metadata is stale; run `python -m lowlight_course.exercises "
                         f"nbgrader solutions/{solution.name}`")
    assert any(m and m["grade"] and not m["solution"] for m in want.values()), "no autograded test cell"
    assert any(m and m["solution"] for m in want.values()), "no answer cell"


def test_stamping_is_idempotent_and_rejects_a_mixed_cell():
    nb = nbformat.read(str(SOLUTIONS[0]), as_version=4)
    stamp_nbgrader(nb, SOLUTIONS[0].name)
    assert not stamp_nbgrader(nb, SOLUTIONS[0].name)
    nb.cells.append(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n"
                                              "### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS"))
    from lowlight_course.exercises import ExerciseError

    with pytest.raises(ExerciseError, match="separate cells"):
        nbgrader_metadata(nb)


def test_points_line_sets_the_points_and_is_removed_from_the_exercise():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("r = 1\n### BEGIN HIDDEN TESTS\n### POINTS: 3\nassert r\n### END HIDDEN TESTS")]
    assert nbgrader_metadata(nb)[0]["points"] == 3.0
    assert "POINTS" not in make_exercise(nb).cells[0].source


# ---- nbgrader itself -----------------------------------------------------------------------
def _need_nbgrader():
    if shutil.which("nbgrader", path=str(BIN)) is None:
        if os.environ.get("CI"):
            pytest.fail("nbgrader is not installed in CI: the Makefile installs '.[dev,instructor]'")
        pytest.skip("nbgrader not installed: pip install -c constraints/tested.txt -e '.[instructor]'")


def _nbgrader(course: Path, *args, timeout=900):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", LOWLIGHT_PROFILE="smoke",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), MPLBACKEND="Agg")
    r = subprocess.run([str(BIN / "nbgrader"), *args, "--force"], cwd=course, env=env, capture_output=True,
                       text=True, timeout=timeout)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"nbgrader {' '.join(args)} failed ({r.returncode}):\n{log[-4000:]}"
    errors = [line for line in log.splitlines() if "| ERROR]" in line]
    assert not errors, f"nbgrader {' '.join(args)} logged errors:\n" + "\n".join(errors[:20])
    return log


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course folder: the seven solutions as nbgrader's source, released, then submitted by two
    learners (one hands in the solutions, one the released notebooks unfilled), autograded."""
    _need_nbgrader()
    course = tmp_path_factory.mktemp("nbgrader_course")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    for s in SOLUTIONS:
        shutil.copy(s, course / "source" / ASSIGNMENT / s.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'lowlight'\n"
        f"c.CourseDirectory.db_assignments = [dict(name={ASSIGNMENT!r})]\n"
        "c.CourseDirectory.db_students = [dict(id='full'), dict(id='blank')]\n"
        "c.ExecutePreprocessor.timeout = 600\n")
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    release = course / "release" / ASSIGNMENT
    for student, folder in (("full", course / "source" / ASSIGNMENT), ("blank", release)):
        dest = course / "submitted" / student / ASSIGNMENT
        dest.mkdir(parents=True)
        for s in SOLUTIONS:
            shutil.copy(folder / s.name, dest / s.name)
    _nbgrader(course, "autograde", ASSIGNMENT)
    return course


def _scores(course: Path, student: str):
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for s in SOLUTIONS:
            nb = gb.find_submission_notebook(s.stem, ASSIGNMENT, student)
            auto = [(g.name, g.auto_score, g.max_score) for g in nb.grades if g.cell.cell_type == "code"]
            manual = [g.name for g in nb.grades if g.cell.cell_type == "markdown"]
            out[s.stem] = (auto, manual, nb.needs_manual_grade)
    return out


def test_solutions_score_full_marks(graded):
    for name, (auto, manual, _) in _scores(graded, "full").items():
        assert auto, f"{name}: no autograded test cell"
        short = [(g, a, m) for g, a, m in auto if a != m]
        assert not short, f"{name}: the solution lost points in {short}"


def test_unfilled_exercises_score_less(graded):
    full = _scores(graded, "full")
    for name, (auto, manual, _) in _scores(graded, "blank").items():
        got = sum(a for _, a, _ in auto)
        top = sum(m for _, _, m in auto)
        assert got < top, f"{name}: an unfilled exercise scored {got} of {top}"
        assert got < sum(a for _, a, _ in full[name][0])


def test_autograded_notebooks_ran_to_the_end(graded):
    """Every cell of the solutions executed without an error output (nbgrader records errors only
    as output, not in its exit status)."""
    for s in SOLUTIONS:
        nb = nbformat.read(str(graded / "autograded" / "full" / ASSIGNMENT / s.name), as_version=4)
        errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{s.name}: error outputs {errors[:3]}"
        assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())


_OUR_STUB = re.compile(r'^(?P<indent>[ \t]*)raise NotImplementedError\(".*"\)$')


def _normalise_ours(src: str) -> str:
    out = []
    for line in src.split("\n"):
        m = _OUR_STUB.match(line)
        out.append(f"{m.group('indent')}<STUB>" if m else line)
    return "\n".join(out).replace(MARKDOWN_PLACEHOLDER, "<STUB>")


def _normalise_nbgrader(src: str) -> str:
    lines, out, i = src.split("\n"), [], 0
    while i < len(lines):
        if lines[i].strip() == "# YOUR CODE HERE" and i + 1 < len(lines) and \
                lines[i + 1].strip() == "raise NotImplementedError()":
            out.append(lines[i][:len(lines[i]) - len(lines[i].lstrip())] + "<STUB>")
            i += 2
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out).replace("YOUR ANSWER HERE", "<STUB>")


def test_build_exercises_agrees_with_nbgrader_release(graded):
    for s in SOLUTIONS:
        ours = make_exercise(nbformat.read(str(s), as_version=4), s.name)
        theirs = nbformat.read(str(graded / "release" / ASSIGNMENT / s.name), as_version=4)
        assert [(c.cell_type, c.get("id")) for c in ours.cells] == \
               [(c.cell_type, c.get("id")) for c in theirs.cells], f"{s.name}: different cells"
        for i, (a, b) in enumerate(zip(ours.cells, theirs.cells)):
            assert _normalise_ours(a.source) == _normalise_nbgrader(b.source), \
                f"{s.name}, cell {i}: build-exercises and nbgrader's release differ"
        assert sum(_normalise_ours(c.source).count("<STUB>") for c in ours.cells) > 0


def test_agreement_check_would_notice_a_difference():
    """The normalisation hides only the stubs: an extra line, or a stub moved, is a difference."""
    a = 'def f(x):\n    raise NotImplementedError("hint")\nprint(1)'
    b = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\nprint(1)"
    assert _normalise_ours(a) == _normalise_nbgrader(b)
    assert _normalise_ours(a + "\nprint(2)") != _normalise_nbgrader(b)
    assert _normalise_ours('def f(x):\n  raise NotImplementedError("h")\nprint(1)') != _normalise_nbgrader(b)
    assert json.dumps(_normalise_ours(MARKDOWN_PLACEHOLDER)) == json.dumps(_normalise_nbgrader("YOUR ANSWER HERE"))
