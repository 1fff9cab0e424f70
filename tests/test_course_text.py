"""The course reads as one book: titles, "Next" links, the index page, and no stale references.

These are checks on the committed text (no execution): every lecture has a title of one style and
ends with a "Next" pointer to the chapter that really comes next; the index page links every lecture
and exercise; the chapters never cite "the design notes" (a chapter cites its own measurement).
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INDEX = ROOT / "notebooks" / "index.md"


def _cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"], c["cell_type"])
            for c in nb["cells"]]


def _markdown(path) -> str:
    return "\n".join(src for src, kind in _cells(path) if kind == "markdown")


def _number(path) -> int:
    return int(path.name[:2])


def test_there_are_lectures():
    assert len(LECTURES) >= 8


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_title_style(path):
    first = _cells(path)[0][0].splitlines()[0]
    assert re.match(rf"^# Chapter {_number(path)} · \S", first), \
        f"{path.name}: the first line should read '# Chapter {_number(path)} · <title>', got {first!r}"


@pytest.mark.parametrize("path", LECTURES[:-1], ids=[p.name for p in LECTURES[:-1]])
def test_next_points_to_the_next_chapter(path):
    text = _markdown(path)
    m = re.search(r"\*\*Next:\*\*\s*Chapter (\d+)", text)
    assert m, f"{path.name}: no '**Next:** Chapter N' line"
    assert int(m.group(1)) == _number(path) + 1, f"{path.name}: 'Next' points to chapter {m.group(1)}"


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_no_design_notes_references(path):
    text = "\n".join(src for src, _ in _cells(path))
    assert "design note" not in text.lower(), f"{path.name} cites 'the design notes': cite the measurement instead"


def _hidden_figure_calls(src: str) -> list[str]:
    """Top-level calls of a ``viz`` figure function whose figure a notebook never shows: not the
    cell's last statement (only the last expression is displayed), or silenced by a trailing ';'.
    ``viz`` functions close their figures and return them, so such a figure is simply lost."""
    import ast

    from lowlight_course import viz

    names = set(viz.__all__)
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    lines = src.splitlines()
    hidden = []
    for i, node in enumerate(tree.body):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
            continue
        f = node.value.func
        name = f.attr if isinstance(f, ast.Attribute) and getattr(f.value, "id", "") == "viz" else getattr(f, "id", "")
        if name not in names or name in ("sweep_explorer",):
            continue
        last = i == len(tree.body) - 1
        silenced = lines[node.end_lineno - 1].rstrip().endswith(";")
        if not last or silenced:
            hidden.append(lines[node.lineno - 1].strip())
    return hidden


NOTEBOOKS = LECTURES + sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_figures_are_displayed(path):
    hidden = [line for src, kind in _cells(path) if kind == "code" for line in _hidden_figure_calls(src)]
    assert not hidden, f"{path.name}: these figures are never shown (wrap them in display(...)): {hidden}"


def test_hidden_figure_detector():
    assert _hidden_figure_calls("viz.plot_history(h);") == ["viz.plot_history(h);"]
    assert _hidden_figure_calls("viz.plot_history(h)\nx = 1") == ["viz.plot_history(h)"]
    assert _hidden_figure_calls("x = 1\nviz.plot_history(h)") == []
    assert _hidden_figure_calls("display(viz.plot_history(h))\nx = 1") == []


def test_index_links_every_lecture_and_exercise():
    text = INDEX.read_text(encoding="utf-8")
    for path in LECTURES:
        assert f"({path.name})" in text, f"index.md does not link {path.name}"
    for ex in sorted((ROOT / "solutions").glob("*.ipynb")):
        assert f"`{ex.stem}`" in text, f"index.md does not name the exercise {ex.stem}"
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (INDEX.parent / target).exists(), f"index.md links {target}, which does not exist"


def test_index_glossary_terms_are_defined_once():
    text = INDEX.read_text(encoding="utf-8")
    glossary = text.split("## Glossary", 1)[1].split("## ", 1)[0]
    terms = re.findall(r"^\*\*([^*]+)\*\*", glossary, re.M)
    assert len(terms) >= 15 and len(terms) == len(set(terms))
    for needed in ("Data range", "Gradient share", "Plateau", "Domain, domain shift"):
        assert any(t.startswith(needed.split(",")[0]) for t in terms), needed
