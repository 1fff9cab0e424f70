"""The built course website (``make book``; CI builds it with PROFILE=smoke).

Runs on ``build/book/`` when it exists, or on the folder ``LOWLIGHT_BOOK`` names (CI sets it, so a
missing site FAILS there instead of skipping). Every chapter's page is there with its figures
(decoded: not one flat colour, each with alt text), the search index lists every chapter, and no
page holds an error output, a traceback, a widget repr, progress-bar debris, a path of the
building machine, or an external URL for a script, a style sheet or a font.
"""
import html.parser
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LECTURES = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def _site() -> Path:
    named = os.environ.get("LOWLIGHT_BOOK")
    if named:
        path = Path(named)
        if not (path / "index.html").is_file():
            pytest.fail(f"LOWLIGHT_BOOK={named} holds no built website (no index.html): run `make book "
                        f"PROFILE=smoke` first, or unset LOWLIGHT_BOOK")
        return path
    path = ROOT / "build" / "book"
    if not (path / "index.html").is_file():
        pytest.skip("no built website at build/book/ and LOWLIGHT_BOOK is not set: run `make book "
                    "PROFILE=smoke` (or set LOWLIGHT_BOOK=path) to test it")
    return path


@pytest.fixture(scope="module")
def site():
    return _site()


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: Path):
    p = _Tags()
    p.feed(page.read_text(encoding="utf-8"))
    return p.tags


def _pages(site):
    return sorted(p for p in site.rglob("*.html") if "mathjax" not in p.relative_to(site).parts)


def _has_solutions(site):
    return (site / "solutions").is_dir()


def _chapter_pages(site):
    docs = LECTURES + [f"exercises/{e}" for e in EXERCISES]
    if _has_solutions(site):
        docs += [f"solutions/{s}" for s in SOLUTIONS]
    return docs


def test_every_chapter_has_its_page(site):
    missing = [d for d in _chapter_pages(site) if not (site / f"{d}.html").is_file()]
    assert missing == []
    assert (site / "credits.html").is_file()
    index = (site / "index.html").read_text(encoding="utf-8")
    for d in _chapter_pages(site):
        assert f'href="{d}.html"' in index, f"the landing page's table of contents has no link to {d}"
    if not _has_solutions(site):
        assert 'href="solutions/' not in index


def test_pages_link_previous_and_next(site):
    for d in LECTURES[1:-1]:
        classes = [a.get("class", "") for t, a in _tags(site / f"{d}.html") if t == "a"]
        assert "left-prev" in classes and "right-next" in classes, f"{d}.html has no previous/next links"


def _figures(site, doc):
    page = site / f"{doc}.html"
    return [(a, (page.parent / a["src"]).resolve()) for t, a in _tags(page)
            if t == "img" and "_images/" in a.get("src", "")]


def _manifest(site):
    path = site / "manifest.json"
    assert path.is_file(), "the site has no manifest.json (book/build.py writes it): rebuild with make book"
    return json.loads(path.read_text())


def test_lectures_show_figures(site):
    counts = {d: _manifest(site).get(d, {}).get("figures", 0) for d in LECTURES}
    assert sum(counts.values()) >= 40, counts   # the lectures showed 59 figures under smoke when this was written
    assert sum(1 for c in counts.values() if c) >= len(LECTURES) - 1, counts


@pytest.mark.parametrize("doc", LECTURES + [f"solutions/{s}" for s in SOLUTIONS])
def test_figures_are_present_described_and_not_blank(site, doc):
    from PIL import Image

    if doc.startswith("solutions/") and not _has_solutions(site):
        pytest.skip("this website was built without its solutions part (SOLUTIONS=0)")
    figs = _figures(site, doc)
    expected = _manifest(site)[doc]["figures"]
    assert len(figs) == expected, f"{doc}.html shows {len(figs)} figures; its notebook has {expected}"
    for attrs, path in figs:
        assert path.is_file(), f"{doc}.html: image {attrs['src']} is missing"
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        assert (a != a[:1, :1]).any(), f"{doc}.html: {attrs['src']} is a single colour"
        alt = attrs.get("alt", "").strip()  # Sphinx writes the file name when a figure has no alt text
        assert alt and not alt.endswith((".png", ".svg", ".jpg")) and len(alt) > 20, \
            f"{doc}.html: {attrs['src']} has no alt text (alt={alt!r}): add it to book/alt_text.json"


def test_search_index_lists_every_chapter(site):
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    missing = [d for d in _chapter_pages(site) if d not in index["docnames"]]
    assert missing == []
    assert "ssim" in index["terms"], "search would not find 'SSIM'"


BAD = {
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "an error output": re.compile(r'class="[^"]*\b(output error|traceback)\b'),
    "a widget repr": re.compile(r"\b[VH]Box\(children=|IntSlider\(|SelectionSlider\(|widget-view\+json"),
    "progress-bar debris": re.compile(r"\d+%\|[^|]*\|\s*\d+/\d+|it/s\]"),
    "a machine path": re.compile(r"(?<![\w.])(/tmp/|/var/folders/|/work/|/root/|/home/[\w.-]+/|/Users/[\w.-]+/)"),
    "a kernel warning": re.compile(r'class="[^"]*\bstderr\b'),
}


def test_no_page_holds_debris(site):
    found = []
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        for what, pat in BAD.items():
            m = pat.search(text)
            if m:
                found.append(f"{page.relative_to(site)}: {what}: {text[max(0, m.start() - 60):m.end() + 40]!r}")
    assert found == []


EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)


def test_no_page_loads_anything_from_the_network(site):
    found = []
    for page in _pages(site):
        for tag, a in _tags(page):
            if tag == "script" and EXTERNAL.match(a.get("src", "")):
                found.append(f"{page.relative_to(site)}: script {a['src']}")
            if tag == "link" and EXTERNAL.match(a.get("href", "")) and (
                    {"stylesheet", "preload", "icon", "modulepreload"} & set(a.get("rel", "").split())):
                found.append(f"{page.relative_to(site)}: link {a['href']}")
            if tag in ("img", "iframe", "source") and EXTERNAL.match(a.get("src", "")):
                found.append(f"{page.relative_to(site)}: {tag} {a['src']}")
    for css in (site / "_static").rglob("*.css"):
        for m in re.finditer(r"(@import\s+url\(|url\()\s*['\"]?(https?:)?//[^)]*", css.read_text(errors="replace")):
            found.append(f"{css.relative_to(site)}: {m.group(0)[:100]}")
    assert found == []


def test_formulas_use_the_bundled_mathjax(site):
    pages_with_math = [p for p in _pages(site) if 'class="math' in p.read_text(encoding="utf-8")]
    assert pages_with_math, "no page holds a formula: the landing page's glossary should"
    for page in pages_with_math:
        srcs = [a["src"] for t, a in _tags(page) if t == "script" and "mathjax" in a.get("src", "").lower()]
        assert srcs, f"{page.relative_to(site)} has formulas but loads no MathJax"
        for s in srcs:
            assert (page.parent / s.split("?")[0]).resolve().is_file(), f"{page.relative_to(site)}: {s} is missing"


def test_the_explorer_is_a_static_figure_with_a_note(site):
    page = site / "04_weight_imbalance.html"
    text = page.read_text(encoding="utf-8")
    assert "interactive in JupyterLab" in text
    assert len(_figures(site, "04_weight_imbalance")) >= 2
