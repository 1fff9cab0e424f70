"""Build the course website from executed copies of the notebooks (``make book``).

    python book/build.py --executed build/course/book-cpu [--output build/book] [--no-solutions]
    python book/build.py --executed DIR --check-fresh      exit 0 when DIR's copies can be used

Inputs: the executed copies that ``lowlight-course run --solutions --no-html --output DIR`` writes
(``DIR/notebooks/*.ipynb``, ``DIR/solutions/*.ipynb``), the learner's blank ``exercises/`` (never
executed: a learner gets them blank), ``notebooks/index.md`` (the landing page) and
``docs/CREDITS.md``. They are staged into ``build/book-src/`` and Sphinx (MyST-NB,
sphinx-book-theme; ``book/conf.py``) builds ``build/book/``. ``notebooks/`` is never written to.

Staging cleans every executed notebook (:func:`clean_notebook`): kernel warnings (stderr) and
progress bars are dropped, a widget output is replaced by the outputs its ``Output`` widget
showed when it was executed (the explorer's first state as static figures) and a note that it
is interactive in JupyterLab, every figure gets its alt text (``book/alt_text.json``, or
``mystnb.image.alt`` in a source notebook's cell metadata), and an error output, a figure that was never drawn
(``<Figure size ...>``, an ``MPLBACKEND=Agg`` run) or a path of the building machine stops the
build with the cell named. MathJax 3 (npm ``mathjax@3``) is copied to ``<site>/mathjax/``.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Alt text of every figure: {"notebooks/NAME.ipynb": {cell id: description}}. Kept here, not in the
#: notebooks' metadata, because `lowlight-course strip` keeps only a fixed set of cell metadata keys.
ALT_TEXT = Path(__file__).with_name("alt_text.json")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex")
#: Paths that say where the book was built (a temp folder, a home, a checkout): never on a page.
MACHINE_PATH = re.compile(r"(?<![\w.])(/tmp/|/var/folders/|/work/|/root/|/home/[^/\s'\"]+/|/Users/[^/\s'\"]+/"
                          r"|[A-Za-z]:\\+Users\\+)")
#: What a matplotlib figure prints when it was not drawn (the kernel ran with a non-inline backend).
UNDRAWN_FIGURE = re.compile(r"^<Figure size [\d.]+x[\d.]+ with \d+ Axes>$")
PROGRESS_MODELS = {"FloatProgressModel", "IntProgressModel"}
WIDGET_NOTE = ("*This explorer is interactive in JupyterLab: run the notebook and move its slider to see "
               "each configuration's images and metrics. The website shows the state it opens in: the "
               "first configuration's images and, for every metric, its curve over the whole sweep with "
               "the current point marked.*")
LANDING_DROP = re.compile(r"\s*\(In JupyterLab, right-click this file and choose \*Open With > Markdown Preview\*\.\)")


class BookError(Exception):
    """The executed notebooks cannot make a clean website; the message names the cell and the fix."""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _widget_state(nb: dict) -> dict:
    return ((nb.get("metadata", {}).get("widgets") or {}).get(WIDGET_STATE) or {}).get("state") or {}


def _descendants(state: dict, model_id: str, seen=None) -> list[dict]:
    """The widget model ``model_id`` and every model it refers to (children, layouts...)."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    model = state[model_id]
    found = [model]
    refs = []

    def collect(v):
        if isinstance(v, str) and v.startswith("IPY_MODEL_"):
            refs.append(v[len("IPY_MODEL_"):])
        elif isinstance(v, list):
            for x in v:
                collect(x)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x)

    collect(model.get("state", {}))
    for r in refs:
        found.extend(_descendants(state, r, seen))
    return found


def widget_replacement(output: dict, state: dict) -> list[dict]:
    """The outputs that stand for one widget-view output on a static page.

    A progress bar (tqdm's ``FloatProgress``) leaves nothing. Any other widget leaves the outputs
    its ``Output`` widgets held when it was executed (figures and printed text), then a note that
    it is interactive in JupyterLab. Without stored widget state only the note remains.
    """
    model_id = output.get("data", {}).get(WIDGET_VIEW, {}).get("model_id")
    models = _descendants(state, model_id) if model_id else []
    names = {m.get("model_name") for m in models}
    if names & PROGRESS_MODELS:
        return []
    shown = []
    for m in models:
        if m.get("model_name") == "OutputModel":
            shown.extend(copy.deepcopy(m.get("state", {}).get("outputs", [])))
    note = {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": WIDGET_NOTE}}
    return [o for o in shown if not (o.get("output_type") == "stream" and o.get("name") == "stderr")] + [note]


def _clean_stream(text: str) -> str:
    """Drop carriage-return progress lines (what a text progress bar leaves in a stream)."""
    lines = []
    for line in re.split(r"(?<=\n)", text):  # not splitlines(): it splits at \r too
        if "\r" in line.rstrip("\r\n"):
            line = line.rstrip("\r\n").split("\r")[-1] + ("\n" if line.endswith("\n") else "")
            if re.search(r"\d+%\|", line):
                continue
        lines.append(line)
    return "".join(lines)


def clean_outputs(outputs: list[dict], state: dict, *, where: str) -> list[dict]:
    """Clean one cell's outputs (see the module docstring); raise :class:`BookError` on a dirty one."""
    cleaned = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "error":
            raise BookError(f"{where} has an error output ({out.get('ename')}: {out.get('evalue')}): the "
                            f"notebook failed when it was executed; fix it and run the course again")
        if kind == "stream":
            if out.get("name") == "stderr":
                continue
            text = _clean_stream(_text(out.get("text", "")))
            if text.strip():
                cleaned.append({**out, "text": text})
            continue
        data = out.get("data", {})
        if WIDGET_VIEW in data:
            cleaned.extend(clean_outputs(widget_replacement(out, state), {}, where=where))
            continue
        if set(data) == {"text/plain"} and UNDRAWN_FIGURE.match(_text(data["text/plain"]).strip()):
            raise BookError(f"{where} shows {_text(data['text/plain']).strip()!r} instead of the figure: the "
                            f"notebook was executed with a non-inline matplotlib backend (MPLBACKEND=Agg?); "
                            f"run the course again without MPLBACKEND set")
        cleaned.append(out)
    for out in cleaned:
        texts = [_text(out.get("text", ""))] + [_text(out.get("data", {}).get(m, "")) for m in TEXT_MIMES]
        for t in texts:
            hit = MACHINE_PATH.search(t)
            if hit:
                line = next(x for x in t.splitlines() if hit.group(0) in x)
                raise BookError(f"{where} prints a path of the machine that ran it ({hit.group(0)!r} in "
                                f"{line.strip()[:120]!r}): make the notebook print a relative or neutral name")
    return cleaned


def clean_notebook(nb: dict, *, name: str, source: dict | None = None, alt: dict | None = None) -> dict:
    """A copy of executed notebook ``nb`` ready for a page; ``source`` is its unexecuted original.

    Cell metadata ``mystnb`` (alt text, figure options) is taken from ``source`` by cell id, so a
    description written after the run still reaches the page; ``alt`` (``{cell id: text}``, from
    ``book/alt_text.json``) fills in the alt text of cells that have none, and an id in it that
    the notebook lacks stops the build. Stored widget state is removed (the page loads no widget
    JavaScript).
    """
    nb = copy.deepcopy(nb)
    alt = dict(alt or {})
    unknown = sorted(set(alt) - {c.get("id") for c in nb.get("cells", [])})
    if unknown:
        raise BookError(f"{ALT_TEXT.name} describes cells {unknown} that {name} does not have (renamed or "
                        f"deleted?): update its entry for {name}")
    state = _widget_state(nb)
    src_meta = {}
    for c in (source or {}).get("cells", []):
        if c.get("id") and "mystnb" in c.get("metadata", {}):
            src_meta[c["id"]] = c["metadata"]["mystnb"]
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("id") in src_meta:
            cell.setdefault("metadata", {})["mystnb"] = copy.deepcopy(src_meta[cell["id"]])
        if cell.get("id") in alt:
            image = cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("image", {})
            if not str(image.get("alt", "")).strip():
                image["alt"] = alt[cell["id"]]
        if cell.get("cell_type") == "code":
            cell["outputs"] = clean_outputs(cell.get("outputs", []), state,
                                            where=f"{name}, cell {i} (id {cell.get('id')})")
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def figures_without_alt(nb: dict) -> list[str]:
    """Ids of the code cells that show an image but carry no ``mystnb.image.alt`` description."""
    missing = []
    for i, cell in enumerate(nb.get("cells", [])):
        has_image = any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {}))
        alt = ((cell.get("metadata", {}).get("mystnb") or {}).get("image") or {}).get("alt", "")
        if has_image and not str(alt).strip():
            missing.append(f"cell {i} (id {cell.get('id')})")
    return missing


def retitle_solution(nb: dict) -> dict:
    """Name a solution page as one: its first heading "# Exercise N · ..." becomes "# Solution N · ...".

    The exercise and its solution share a title in the notebooks; on the website both sit in the
    table of contents, where the reader must tell them apart.
    """
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = _text(cell.get("source", ""))
            new = re.sub(r"\A(\s*#\s+)Exercise\b", r"\1Solution", text, count=1)
            cell["source"] = new
            break
    return nb


def landing_page(index_md: str, toc: dict[str, list[str]]) -> str:
    """notebooks/index.md as the site's home page: JupyterLab-only advice dropped, folder references
    turned into the site's parts, exercise names linked to their pages, the toctrees added."""
    text = LANDING_DROP.sub("", index_md).rstrip() + "\n"
    text = text.replace("(in `../exercises/`, answers in\n`../solutions/`)", "(in the Exercises part, answers in\nthe Solutions part)")
    for doc in toc.get("Exercises", []):
        name = doc.split("/", 1)[1]
        text = text.replace(f"| `{name}` |", f"| [`{name}`]({doc}.ipynb) |")
    for caption, docs in toc.items():
        if docs:
            text += f"\n```{{toctree}}\n:caption: {caption}\n:hidden:\n:maxdepth: 1\n\n" + "\n".join(docs) + "\n```\n"
    return text


def stale_copies(executed: Path, root: Path = ROOT, *, solutions: bool = True, profile: str | None = None) -> list[str]:
    """Why ``executed`` cannot be used as it is: one reason per missing, older or figure-less copy."""
    reasons = []
    folders = ["notebooks"] + (["solutions"] if solutions else [])
    if profile:
        try:
            ran = json.loads((executed / "timings.json").read_text()).get("profile")
        except (OSError, ValueError, AttributeError):
            ran = None
        if ran != profile:
            reasons.append(f"{executed}/timings.json says profile {ran!r}, not {profile!r}")
    for folder in folders:
        for src in sorted((root / folder).glob("*.ipynb")):
            copy_ = executed / folder / src.name
            if not copy_.exists():
                reasons.append(f"{copy_} is missing")
            elif copy_.stat().st_mtime < src.stat().st_mtime:
                reasons.append(f"{copy_} is older than {src.relative_to(root)}")
            else:
                nb = json.loads(copy_.read_text())
                for cell in nb.get("cells", []):
                    if any(set(o.get("data", {})) == {"text/plain"}
                           and UNDRAWN_FIGURE.match(_text(o["data"]["text/plain"]).strip())
                           for o in cell.get("outputs", [])):
                        reasons.append(f"{copy_} holds undrawn figures (executed with MPLBACKEND=Agg)")
                        break
    return reasons


def count_figures(nb: dict) -> int:
    """How many images the page of ``nb`` shows (one per output with an image/* type)."""
    return sum(1 for c in nb.get("cells", []) for o in c.get("outputs", [])
               if any(k.startswith("image/") for k in o.get("data", {})))


def stage(executed: Path, src_dir: Path, root: Path = ROOT, *, solutions: bool = True,
          alt_text: Path | None = ALT_TEXT) -> list[str]:
    """Write the Sphinx source folder and its ``manifest.json`` (page -> figure count); return
    warnings (figures without alt text)."""
    executed, src_dir = Path(executed), Path(src_dir)
    alts = json.loads(Path(alt_text).read_text()) if alt_text and Path(alt_text).exists() else {}
    if src_dir.exists():
        shutil.rmtree(src_dir)
    src_dir.mkdir(parents=True)
    warnings = []
    toc = {"Lectures": [], "Exercises": [], "Solutions": [], "About": []}
    manifest = {}
    parts = [("notebooks", executed / "notebooks", "Lectures", ""),
             ("exercises", root / "exercises", "Exercises", "exercises/")]
    if solutions:
        parts.append(("solutions", executed / "solutions", "Solutions", "solutions/"))
    for folder, origin, caption, prefix in parts:
        sources = sorted((root / folder).glob("*.ipynb"))
        if not sources:
            raise BookError(f"no notebooks in {root / folder}")
        (src_dir / prefix).mkdir(parents=True, exist_ok=True)
        for src in sources:
            path = origin / src.name
            if not path.exists():
                raise BookError(f"{path} is missing: run `lowlight-course run --solutions --no-html --output "
                                f"{executed}` first (make book does)")
            nb = clean_notebook(json.loads(path.read_text()), name=f"{folder}/{src.name}",
                                source=json.loads(src.read_text()), alt=alts.get(f"{folder}/{src.name}"))
            if folder == "solutions":
                nb = retitle_solution(nb)
            warnings += [f"{folder}/{src.name} {c}: figure without alt text" for c in figures_without_alt(nb)]
            (src_dir / prefix / src.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
            toc[caption].append(prefix + src.stem)
            manifest[prefix + src.stem] = {"part": caption, "figures": count_figures(nb)}
    shutil.copy(root / "docs" / "CREDITS.md", src_dir / "credits.md")
    toc["About"].append("credits")
    (src_dir / "index.md").write_text(landing_page((root / "notebooks" / "index.md").read_text(), toc))
    shutil.copy(Path(__file__).with_name("conf.py"), src_dir / "conf.py")
    (src_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return warnings


def install_mathjax(mathjax_es5: Path, site: Path) -> None:
    """Copy MathJax 3's es5 build to ``site/mathjax`` (outside _static: the theme adds no tags for it)."""
    mathjax_es5 = Path(mathjax_es5)
    if not (mathjax_es5 / "tex-chtml.js").exists():
        raise BookError(f"MathJax 3 is not at {mathjax_es5} (no tex-chtml.js): run `npm install --prefix "
                        f"build/npm mathjax@3` (make book does) or pass --mathjax")
    target = Path(site) / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(mathjax_es5, target)


def build(executed, output, *, src_dir, mathjax, solutions=True, strict_alt=False) -> int:
    from sphinx.cmd.build import build_main

    warnings = stage(Path(executed), Path(src_dir), solutions=solutions)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if warnings and strict_alt:
        raise BookError(f"{len(warnings)} figure(s) without alt text (see above): add mystnb.image.alt to "
                        f"those cells' metadata in the source notebooks")
    output = Path(output)
    if output.exists():
        shutil.rmtree(output)
    rc = build_main(["-b", "html", "-q", "-n", "-j", "1", "-d", str(Path(src_dir) / ".doctrees"),
                     str(src_dir), str(output)])
    if rc == 0:
        install_mathjax(Path(mathjax), output)
        shutil.copy(Path(src_dir) / "manifest.json", output / "manifest.json")  # what tests/site checks
        print(f"website in {output}/ (open {output}/index.html)")
    return rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--executed", required=True, help="folder written by lowlight-course run --solutions")
    p.add_argument("--output", default=str(ROOT / "build" / "book"))
    p.add_argument("--src", default=str(ROOT / "build" / "book-src"), help="staged Sphinx source folder")
    p.add_argument("--mathjax", default=str(ROOT / "build" / "npm" / "node_modules" / "mathjax" / "es5"))
    p.add_argument("--no-solutions", action="store_true", help="leave the solutions part out")
    p.add_argument("--profile", default=None, help="with --check-fresh: the profile the copies must come from")
    p.add_argument("--strict-alt", action="store_true", help="fail on a figure without alt text")
    p.add_argument("--check-fresh", action="store_true",
                   help="only say whether --executed holds usable copies (exit 0) or not (exit 1, reasons)")
    a = p.parse_args(argv)
    executed = Path(a.executed)
    if a.check_fresh:
        reasons = stale_copies(executed, solutions=not a.no_solutions, profile=a.profile)
        for r in reasons[:10]:
            print(f"book: {r}", file=sys.stderr)
        if reasons:
            print(f"book: running the course into {executed} first", file=sys.stderr)
        return 1 if reasons else 0
    try:
        return build(executed, a.output, src_dir=a.src, mathjax=a.mathjax, solutions=not a.no_solutions,
                     strict_alt=a.strict_alt)
    except BookError as exc:
        print(f"book: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
