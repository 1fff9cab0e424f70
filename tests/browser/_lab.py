"""Driving JupyterLab 4 in Chromium: open a notebook, Run All, wait, read what it shows.

Shared by tests/browser/test_lab.py and tests/hub/test_hub.py. Every wait has a timeout.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

#: The notebook on show (JupyterLab keeps other tabs' notebooks in the DOM, hidden).
NOTEBOOK = ".jp-NotebookPanel .jp-Notebook:visible >> nth=0"
STATUS_IDLE = re.compile(r"\|\s*Idle\b")

# For each code cell of the open notebook: its prompt ("[3]:", "[*]:", "[ ]:") and whether an
# output of it is an error rendered as such (JupyterLab renders error outputs with the stderr
# mime type; a traceback in it is what tells an error from a warning).
_CELLS_JS = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel'))
    .filter(p => p.checkVisibility() && p.getBoundingClientRect().width > 0)
    .flatMap(p => Array.from(p.querySelectorAll('.jp-Notebook .jp-CodeCell'))).map(c => {
  const p = c.querySelector('.jp-InputArea-prompt');
  const errs = Array.from(c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
      .map(e => e.textContent).filter(t => /Traceback|Error:|Exception/.test(t));
  return {prompt: p ? p.textContent.trim() : '', errors: errs.map(t => t.slice(0, 600))};
})
"""


def open_notebook(page, url: str, *, timeout: float = 120) -> None:
    """Go to ``url`` (a /lab/tree/... URL) and wait until the notebook shows and its kernel is idle."""
    page.goto(url, timeout=timeout * 1000)
    page.locator(NOTEBOOK).locator(".jp-Cell").first.wait_for(timeout=timeout * 1000)
    wait_idle(page, timeout=timeout)


def wait_idle(page, *, timeout: float) -> None:
    """Wait for the status bar's kernel item to say "Idle"."""
    page.locator("#jp-main-statusbar").get_by_text(STATUS_IDLE).first.wait_for(timeout=timeout * 1000)


def _menu(page, menu: str, item: str) -> None:
    page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).first.click()


def start_run_all(page) -> None:
    """Edit > Clear Outputs of All Cells, then Run > Run All Cells (returns at once).

    Clearing first resets every prompt to "[ ]", so a notebook saved with outputs cannot look
    finished before it ran.
    """
    page.locator(NOTEBOOK).click(position={"x": 5, "y": 5})
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.jp-NotebookPanel'))
        .filter(p => p.checkVisibility()).every(p => Array.from(p.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))
        .every(e => !/\\d/.test(e.textContent)))""", timeout=30_000)
    _menu(page, "Run", "Run All Cells")


def wait_run_all(page, *, timeout: float, what: str = "") -> list[dict]:
    """Wait until every code cell has run and the kernel is idle; returns each cell's prompt and errors.

    Fails naming the cells not run and the error outputs when ``timeout`` passes or a cell errs.
    """
    t0 = time.monotonic()
    cells = []
    while time.monotonic() - t0 < timeout:
        cells = page.evaluate(_CELLS_JS)
        if any(c["errors"] for c in cells):
            break  # Run All stops at an error; report it now
        done = cells and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells)
        if done and page.locator("#jp-main-statusbar").get_by_text(STATUS_IDLE).count():
            return cells
        page.wait_for_timeout(1000)  # not time.sleep: the offline guard's route handler runs in this thread
    stuck = [i for i, c in enumerate(cells) if not re.fullmatch(r"\[\d+\]:", c["prompt"])]
    errors = [(i, c["errors"]) for i, c in enumerate(cells) if c["errors"]]
    pytest.fail(f"{what}Run All did not finish cleanly within {timeout:.0f} s: code cells not run: {stuck[:10]}"
                f"{' ...' if len(stuck) > 10 else ''}; error outputs: {errors}", pytrace=False)


def run_all(page, *, timeout: float, what: str = "") -> list[dict]:
    """:func:`start_run_all` then :func:`wait_run_all`."""
    start_run_all(page)
    return wait_run_all(page, timeout=timeout, what=what)


def save(page, path: Path, *, timeout: float = 30) -> dict:
    """File > Save (Ctrl+S) and wait until ``path`` on disk was rewritten; returns the saved JSON."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    _menu(page, "File", "Save Notebook")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and path.stat().st_mtime_ns != before:
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass  # half written
        page.wait_for_timeout(300)  # not time.sleep: the offline guard's route handler runs in this thread
    pytest.fail(f"saving in JupyterLab did not rewrite {path} within {timeout} s", pytrace=False)


def error_outputs(nb: dict) -> list[str]:
    """``ename: evalue`` of every error output in a saved notebook."""
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
            for i, c in enumerate(nb.get("cells", [])) if c.get("cell_type") == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _code_cell(page, contains: str):
    cell = page.locator(NOTEBOOK).locator(".jp-CodeCell",
                        has=page.locator(".cm-content", has_text=contains))
    if cell.count() != 1:
        pytest.fail(f"expected one code cell containing {contains!r} in the open notebook, found {cell.count()}",
                    pytrace=False)
    return cell


def replace_cell_source(page, contains: str, text: str) -> None:
    """Type ``text`` over the whole source of the code cell that contains ``contains``.

    The text is inserted as typed input (``keyboard.insert_text``), so the editor's auto-indent and
    bracket closing do not change it; the cell's new source is checked.
    """
    cell = _code_cell(page, contains)
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")
    got = editor.inner_text()
    first = text.strip().splitlines()[-1].strip()
    if first not in got:
        pytest.fail(f"typing into the cell did not take: its source is now {got!r:.300}", pytrace=False)


def cell_output(page, contains: str) -> str:
    """The text of the outputs of the code cell whose source contains ``contains``."""
    return _code_cell(page, contains).locator(".jp-OutputArea").inner_text()
