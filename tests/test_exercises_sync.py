"""exercises/ is generated from solutions/: regenerate, compare byte for byte, and check for leaks."""
import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from lowlight_course.notebook_tools import (DEFAULT_HINT, MARKDOWN_PLACEHOLDER, ExerciseError, build_exercises,
                                            exercise_markdown, exercise_source, make_exercise, notebook_bytes,
                                            strip_outputs)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "### HINT", "HIDDEN TESTS")
TRIVIAL = {"pass", "return", "else:", "try:", "finally:", ")", "]", "}", "),", "],", "},", "...", "break", "continue"}


def _src(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _solution_lines(nb):
    """(lines inside solution regions, lines outside them) of a solution notebook."""
    inside, outside = set(), set()
    for cell in nb.cells:
        state = False
        for line in _src(cell).split("\n"):
            s = line.strip()
            if re.match(r"^(###\s*BEGIN (SOLUTION|HIDDEN TESTS)|<!--\s*BEGIN SOLUTION\s*-->)$", s):
                state = True
            elif re.match(r"^(###\s*END (SOLUTION|HIDDEN TESTS)|<!--\s*END SOLUTION\s*-->)$", s):
                state = False
            else:
                (inside if state else outside).add(s)
    return inside, outside


def test_committed_exercises_are_up_to_date():
    assert build_exercises(ROOT, check=True) == [], "run `lowlight-course build-exercises`"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_regenerated_exercise_is_byte_identical(solution, tmp_path):
    generated = notebook_bytes(make_exercise(nbformat.read(str(solution), as_version=4), solution.name))
    (tmp_path / solution.name).write_bytes(generated)
    committed = ROOT / "exercises" / solution.name
    assert committed.exists(), f"exercises/{solution.name} is missing: run `lowlight-course build-exercises`"
    assert committed.read_bytes() == generated, f"exercises/{solution.name} is stale or hand-edited"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_no_solution_leaks(solution):
    exercise = ROOT / "exercises" / solution.name
    if not exercise.exists():
        pytest.skip("exercise missing (reported by the byte-identity test)")
    text = exercise.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text, f"{exercise.name} contains the marker {marker!r}"
    sol = nbformat.read(str(solution), as_version=4)
    ex_lines = {line.strip() for c in nbformat.read(str(exercise), as_version=4).cells for line in _src(c).split("\n")}
    inside, outside = _solution_lines(sol)
    leaked = [l for l in inside - outside
              if len(l) >= 6 and l not in TRIVIAL and not l.startswith("#") and l in ex_lines]
    assert not leaked, f"solution lines leaked into {exercise.name}: {leaked[:5]}"


@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")), ids=lambda p: p.name)
def test_exercises_have_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


# ---- the generator itself, on synthetic input -------------------------------------------------

CODE = '''import torch

def my_mse(a, b):
    """Mean squared error."""
    ### BEGIN SOLUTION
    ### HINT: average the squared "difference"
    d = a - b
    return (d ** 2).mean()
    ### END SOLUTION

for i in range(2):
    if i:
        ### BEGIN SOLUTION
        value = my_mse(torch.ones(1), torch.zeros(1))
        ### END SOLUTION
print("done")'''


def _tiny_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause MSE averages.\n<!-- END SOLUTION -->\nNext."),
        nbformat.v4.new_code_cell(CODE, execution_count=3, metadata={"scrolled": True, "tags": ["x"]},
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="done\n")]),
    ]
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python", "version": "3.11.7"}, "papermill": {"x": 1}}
    return nb


def test_code_regions_become_stubs_with_hints_and_indentation():
    out = exercise_source(CODE)
    assert '    raise NotImplementedError("average the squared \\"difference\\"")' in out
    assert f'        raise NotImplementedError("{DEFAULT_HINT}")' in out
    assert "d = a - b" not in out and "value = my_mse" not in out and "BEGIN" not in out
    assert 'print("done")' in out and '"""Mean squared error."""' in out
    ast.parse(out)  # still valid Python
    ns = {}
    exec(out.split("for i in")[0], ns)  # noqa: S102 - the stub raises
    with pytest.raises(NotImplementedError, match="difference"):
        ns["my_mse"](1, 2)


def test_markdown_regions_become_placeholder():
    nb = make_exercise(_tiny_notebook(), "tiny.ipynb")
    md = nb.cells[1].source
    assert MARKDOWN_PLACEHOLDER in md and "Because" not in md and md.startswith("Why?") and md.endswith("Next.")


def test_outputs_and_metadata_are_cleaned_and_output_is_deterministic():
    source = _tiny_notebook()  # (nbformat gives new cells random ids; the generator keeps the solution's)
    a = make_exercise(source, "tiny.ipynb")
    b = make_exercise(nbformat.reads(nbformat.writes(source), as_version=4), "tiny.ipynb")
    code = a.cells[2]
    assert code.outputs == [] and code.execution_count is None and code.metadata == {"tags": ["x"]}
    assert a.cells[0].metadata == {"tags": ["parameters"]}
    assert "papermill" not in a.metadata and a.metadata["language_info"] == {"name": "python"}
    assert notebook_bytes(a) == notebook_bytes(b)
    assert notebook_bytes(a).endswith(b"\n")
    # regenerating from the generated notebook changes nothing further
    again = make_exercise(nbformat.reads(notebook_bytes(a).decode(), as_version=4), "tiny.ipynb")
    assert notebook_bytes(again) == notebook_bytes(a)


@pytest.mark.parametrize("bad", [
    "### BEGIN SOLUTION\nx = 1",
    "x = 1\n### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
    "### HINT: stray",
])
def test_malformed_code_regions(bad):
    with pytest.raises(ExerciseError, match="line"):
        exercise_source(bad, "nb, cell 2")


def test_malformed_markdown_regions():
    with pytest.raises(ExerciseError):
        exercise_markdown("<!-- BEGIN SOLUTION -->\nanswer")
    with pytest.raises(ExerciseError):
        exercise_markdown("answer\n<!-- END SOLUTION -->")


def test_strip_keeps_only_checked_text_outputs():
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"}),
    ])
    other = nbformat.v4.new_code_cell("print(2)", execution_count=2,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")])
    nb.cells = [checked, other]
    strip_outputs(nb)
    assert [o.get("text") for o in checked.outputs if o["output_type"] == "stream"] == ["1\n"]
    assert checked.outputs[1]["data"] == {"text/plain": "<Figure>"}
    assert other.outputs == [] and other.execution_count is None and checked.execution_count == 1
    strip_outputs(nb, keep_checked=False)
    assert checked.outputs == []


def test_hidden_tests_regions_are_removed():
    src = "r = check(f)\n### BEGIN HIDDEN TESTS\nassert r.passed, r.message\n### END HIDDEN TESTS\nprint(r)"
    assert exercise_source(src) == "r = check(f)\nprint(r)"
    for bad in ("### BEGIN HIDDEN TESTS\nx = 1", "x = 1\n### END HIDDEN TESTS",
                "### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"):
        with pytest.raises(ExerciseError, match="line"):
            exercise_source(bad, "nb, cell 3")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_region_became_a_stub(solution):
    """Each code solution region is exactly one stub in the exercise, and every cell is valid Python."""
    exercise = ROOT / "exercises" / solution.name
    if not exercise.exists():
        pytest.skip("exercise missing (reported by the byte-identity test)")
    sol = nbformat.read(str(solution), as_version=4)
    ex = nbformat.read(str(exercise), as_version=4)
    assert len(sol.cells) == len(ex.cells)
    for i, (s, e) in enumerate(zip(sol.cells, ex.cells)):
        if s.cell_type != "code":
            continue
        regions = len(re.findall(r"^[ \t]*###\s*BEGIN SOLUTION\s*$", _src(s), re.M))
        stubs = len(re.findall(r"^[ \t]*raise NotImplementedError\(", _src(e), re.M)) - \
            len(re.findall(r"^[ \t]*raise NotImplementedError\(", _src(s), re.M))
        assert stubs == regions, f"{exercise.name}, cell {i}: {regions} solution regions but {stubs} stubs"
        ast.parse(_src(e))
