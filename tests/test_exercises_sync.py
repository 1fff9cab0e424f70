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
def test_no_markers_in_exercises(solution):
    exercise = ROOT / "exercises" / solution.name
    if not exercise.exists():
        pytest.skip("exercise missing (reported by the byte-identity test)")
    text = exercise.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text, f"{exercise.name} contains the marker {marker!r}"


# ---- no solution code in any exercise text (stubs, hints, markdown, docstrings) ---------------
# A leak is (a) a line of a solution region (whitespace normalised) anywhere in the exercise's text,
# or (b) a run of NGRAM consecutive tokens of a solution region's code, at least two of them
# punctuation or operators (so it is code, not prose), anywhere in the exercise's text. Lines and
# token runs that the solution notebook's own code outside its solution regions already shows
# (signatures, calls of the check, printed labels; comments and docstrings excluded) are not leaks.
NGRAM = 6
_TOKEN = re.compile(r"\w+|[^\w\s]")
_REGION = re.compile(r"^[ \t]*(###\s*BEGIN SOLUTION|<!--\s*BEGIN SOLUTION\s*-->)\s*$")
_REGION_END = re.compile(r"^[ \t]*(###\s*END SOLUTION|<!--\s*END SOLUTION\s*-->)\s*$")
_HIDDEN = re.compile(r"^[ \t]*###\s*(BEGIN|END) HIDDEN TESTS\s*$")


def _norm(text):
    return " ".join(text.replace("'", '"').split())


def _tokens(text):
    return _TOKEN.findall(text.replace("'", '"'))


def _code_tokens(code):
    """(tokens of Python code without comments, the same without docstrings)."""
    import io
    import textwrap
    import tokenize

    code = textwrap.dedent(code)
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(code + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return _tokens("\n".join(line.split("#")[0] for line in code.split("\n"))), []
    keep, no_docs, line_start = [], [], True
    for t in toks:
        if t.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            line_start = True
            continue
        if t.type == tokenize.NL:  # a blank line, or a line break inside brackets
            continue
        if t.type in (tokenize.COMMENT, tokenize.ENDMARKER):
            continue
        parts = _tokens(t.string)
        keep += parts
        if not (t.type == tokenize.STRING and line_start):  # a string that starts a statement: a docstring
            no_docs += parts
        line_start = False
    return keep, no_docs


def _split_regions(nb):
    """(solution-region code pieces, solution-region markdown pieces, outside code) of a solution."""
    code_regions, md_regions, outside = [], [], []
    for cell in nb.cells:
        inside, cur, rest = False, [], []
        for line in _src(cell).split("\n"):
            if _REGION.match(line):
                inside, cur = True, []
            elif _REGION_END.match(line):
                inside = False
                (code_regions if cell.cell_type == "code" else md_regions).append(
                    "\n".join(l for l in cur if not re.match(r"^[ \t]*###\s*HINT:", l)))
            elif inside:
                cur.append(line)
            elif not _HIDDEN.match(line):
                rest.append(line)
        if cell.cell_type == "code":
            outside.append("\n".join(rest))
    return code_regions, md_regions, outside


def _grams(tokens, n=NGRAM):
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def _is_code(gram):
    return sum(not re.match(r"\w", t) for t in gram) >= 2


def find_leaks(solution_nb, exercise_nb):
    """Human-readable leaks of solution code into the exercise (see the comment above)."""
    code_regions, md_regions, outside = _split_regions(solution_nb)
    shown_lines = {_norm(l) for piece in outside for l in piece.split("\n")}
    shown_grams = set()
    for piece in outside:
        shown_grams |= _grams(_code_tokens(piece)[1])
    leaks = []
    for cell_index, cell in enumerate(exercise_nb.cells):
        text = _src(cell)
        norm_text, grams = _norm(text), _grams(_tokens(text))
        for region in code_regions:
            for line in region.split("\n"):
                line = _norm(line.split("#")[0]) if not line.strip().startswith(("'", '"')) else _norm(line)
                if len(line) >= 6 and line not in TRIVIAL and line not in shown_lines and line in norm_text:
                    leaks.append(f"cell {cell_index}: solution line {line!r}")
            for gram in _grams(_code_tokens(region)[0]) & grams:
                if _is_code(gram) and gram not in shown_grams:
                    leaks.append(f"cell {cell_index}: solution code {' '.join(gram)!r}")
        for region in md_regions:
            for line in region.split("\n"):
                line = _norm(line)
                if len(line) >= 12 and line in norm_text and line not in shown_lines:
                    leaks.append(f"cell {cell_index}: solution text {line!r}")
    return sorted(set(leaks))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_no_solution_code_in_exercise_text(solution):
    """Issue 9 item 1: hints guide, never dictate. No stub, hint, docstring or markdown of an exercise
    holds a line of its solution or a code expression of more than a few tokens from it."""
    exercise = ROOT / "exercises" / solution.name
    if not exercise.exists():
        pytest.skip("exercise missing (reported by the byte-identity test)")
    leaks = find_leaks(nbformat.read(str(solution), as_version=4), nbformat.read(str(exercise), as_version=4))
    assert not leaks, f"{exercise.name} shows solution code ({len(leaks)}):\n  " + "\n  ".join(leaks[:12])


def _leak_nb(solution_code, exercise_code, md=""):
    sol, ex = nbformat.v4.new_notebook(), nbformat.v4.new_notebook()
    sol.cells = [nbformat.v4.new_code_cell(solution_code)] + ([nbformat.v4.new_markdown_cell(md)] if md else [])
    ex.cells = [nbformat.v4.new_code_cell(exercise_code)] + ([nbformat.v4.new_markdown_cell(md)] if md else [])
    return sol, ex


SOL = """def f(x, k):
    \"\"\"Docstring.\"\"\"
    ### BEGIN SOLUTION
    ### HINT: whatever the hint says
    y = x.unfold(2, k, k).unfold(3, k, k)  # patches
    return y.var(dim=-1, unbiased=False)
    ### END SOLUTION
out = f(x, 8)
"""


@pytest.mark.parametrize("exercise_code, md, leaked", [
    ('def f(x, k):\n    raise NotImplementedError("cut patches and take the variance")\nout = f(x, 8)', "", False),
    ('def f(x, k):\n    raise NotImplementedError("y = x.unfold(2, k, k).unfold(3, k, k)")\nout = f(x, 8)', "", True),
    ('def f(x, k):\n    raise NotImplementedError("use x.unfold(2, k, k) twice")\nout = f(x, 8)', "", True),
    ('def f(x, k):\n    raise NotImplementedError("the variance")\nout = f(x, 8)', "Use `y.var(dim=-1, unbiased=False)`.", True),
    ('def f(x, k):\n    raise NotImplementedError("return   y.var(dim=-1,  unbiased=False)")\nout = f(x, 8)', "", True),
    ('def f(x, k):\n    raise NotImplementedError(\'the population variance, unbiased=False\')\nout = f(x, 8)', "", False),
], ids=["prose hint", "whole line in hint", "expression in hint", "expression in markdown",
        "line with other whitespace", "one keyword argument"])
def test_leak_detector_on_synthetic_notebooks(exercise_code, md, leaked):
    sol, ex = _leak_nb(SOL, exercise_code, md)
    if md:
        sol.cells[1].source = md
    assert bool(find_leaks(sol, ex)) == leaked, find_leaks(sol, ex)


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
