"""Each notebook's setup cell: the course package importable on a laptop, Colab, Binder or a hub.

Every notebook in ``notebooks/`` and ``solutions/`` (and so ``exercises/``) has, right after its
``parameters`` cell, a code cell tagged ``setup`` whose text is :func:`setup_cell_source`. It is plain
Python, because it runs where ``lowlight_course`` may not be installed:

- package importable: it calls :func:`ready` (quiet and cheap: it only tells the learner about a
  course update that collided with their edits, through ``lowlight_course.course_files``);
- on Google Colab (``"google.colab" in sys.modules``): it installs the package with pip from the one
  install source, then calls :func:`ready`;
- anywhere else: it raises ``ModuleNotFoundError`` whose text is the exact command to run in this
  kernel's Python (instead of an ImportError three cells later).

The install source is named once, in ``pyproject.toml`` (``[project.urls] Repository``); the cell text
is generated from it. After changing the URL, rewrite every setup cell with::

    python -m lowlight_course.notebook_setup write notebooks/*.ipynb solutions/*.ipynb
    lowlight-course build-exercises

``python -m lowlight_course.notebook_setup check ...`` exits 1 naming each notebook whose cell differs
(``tests/test_setup_cell.py`` does the same).
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SETUP_TAG", "URL_KEY", "install_source", "pip_spec", "setup_cell_source", "ready",
           "find_setup_cell", "apply_setup_cell"]

#: The tag of the setup cell.
SETUP_TAG = "setup"
#: The key in pyproject.toml's ``[project.urls]`` whose value is the course's git repository.
URL_KEY = "Repository"

_TEMPLATE = '''\
# Setup: nothing to do where the course package is installed; on Colab this installs it.
import importlib.util, subprocess, sys
if importlib.util.find_spec("lowlight_course") is None:
    _spec = "{spec}"
    if "google.colab" in sys.modules:
        print("Installing the course package (a minute, once per Colab session) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", _spec], check=True)
        importlib.invalidate_caches()
    else:
        raise ModuleNotFoundError(
            "The course package lowlight_course is not installed for this kernel. Run\\n"
            f"    \\"{{sys.executable}}\\" -m pip install \\"{{_spec}}\\"\\n"
            "(or, in a clone of the course: make lab), then restart the kernel and run this cell again.")
from lowlight_course.notebook_setup import ready
ready()'''


def _pyproject(root: Path | str | None = None) -> Path:
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    path = root / "pyproject.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no pyproject.toml in {root}: run this from a clone of the course "
                                f"(the install source is read from its [project.urls] {URL_KEY}).")
    return path


def install_source(root: Path | str | None = None) -> str:
    """The course's git URL: ``[project.urls] Repository`` of ``root/pyproject.toml`` (the clone
    this module lies in by default). Raises ``FileNotFoundError``/``KeyError`` naming what is missing."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = _pyproject(root)
    urls = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {}).get("urls", {})
    url = urls.get(URL_KEY)
    if not isinstance(url, str) or not re.match(r"^https://\S+$", url):
        raise KeyError(f"{path}: [project.urls] needs {URL_KEY} = \"https://...\" (the course's git "
                       f"repository; the setup cells install from it), found {url!r}.")
    return url


def pip_spec(url: str) -> str:
    """The pip requirement that installs the course from its git URL: ``lowlight-course @ git+URL``."""
    if not isinstance(url, str) or not re.match(r"^https://[^\s\"'\\]+$", url):
        raise ValueError(f"install URL must be an https:// URL without spaces or quotes, got {url!r}.")
    return f"lowlight-course @ git+{url}"


def setup_cell_source(url: str | None = None) -> str:
    """The setup cell's code for install source ``url`` (default: :func:`install_source`)."""
    return _TEMPLATE.format(spec=pip_spec(install_source() if url is None else url))


def ready(folder: str | Path = ".") -> None:
    """Called by every setup cell once the package imports: quiet and cheap, never raises.

    It tells the learner about course updates that collided with their own edits (nbgitpuller keeps
    the learner's version silently; ``lowlight_course.course_files.report_updates`` writes the new
    one beside it and prints a line per file). Outside a pulled course folder it prints nothing."""
    try:
        from lowlight_course import course_files
        report = getattr(course_files, "report_updates", None)
        if callable(report):
            report(folder)
    except Exception:  # noqa: BLE001 - a setup cell must never stop the notebook over a report
        pass


# ---------------------------------------------------------------------------------------------
# Maintainer side: find, check and (re)write the setup cell of a notebook
# ---------------------------------------------------------------------------------------------
def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def find_setup_cell(nb) -> tuple[int, int]:
    """``(index of the parameters cell, index of the setup cell or -1)`` in notebook ``nb``.

    The setup cell must be the code cell right after the ``parameters`` cell; raises ``ValueError``
    when the notebook has no ``parameters`` cell."""
    cells = nb["cells"]
    params = next((i for i, c in enumerate(cells)
                   if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if params is None:
        raise ValueError("no code cell tagged 'parameters': add one (profile = \"auto\") before the setup cell.")
    nxt = next((i for i in range(params + 1, len(cells)) if cells[i].get("cell_type") == "code"), None)
    if nxt is not None and SETUP_TAG in cells[nxt].get("metadata", {}).get("tags", []):
        return params, nxt
    return params, -1


def apply_setup_cell(nb, source: str) -> bool:
    """Put a setup cell with ``source`` right after the parameters cell (insert or rewrite, in place);
    return whether anything changed."""
    import nbformat

    params, idx = find_setup_cell(nb)
    if idx >= 0:
        if _src(nb["cells"][idx]) == source:
            return False
        nb["cells"][idx]["source"] = source
        return True
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
    if not any(c.get("id") == "setup-cell" for c in nb["cells"]):
        cell["id"] = "setup-cell"  # a stable id (nbformat would draw a random one)
    nb["cells"].insert(params + 1, cell)
    return True


def _main(argv=None) -> int:
    import argparse
    import sys

    import nbformat

    parser = argparse.ArgumentParser(prog="python -m lowlight_course.notebook_setup",
                                     description="Check or rewrite every notebook's setup cell from the template.")
    parser.add_argument("action", choices=["check", "write"])
    parser.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    try:
        source = setup_cell_source()
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = 0
    for path in args.notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
            changed = apply_setup_cell(nb, source)
        except (OSError, ValueError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        if not changed:
            continue
        if args.action == "check":
            stale += 1
            print(f"{path}: setup cell differs from the template (run: python -m lowlight_course.notebook_setup "
                  f"write {path})")
        else:
            nbformat.write(nb, path)
            print(f"wrote the setup cell of {path}")
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
