"""Run a notebook's code cells as a script: no Jupyter, no nbconvert (for the GPU machine).

    python benchmarks/nb_script.py NOTEBOOK.ipynb --profile gpu --out DIR

Reads the ``.ipynb`` JSON, runs every code cell in order in one namespace (after the cell tagged
``parameters`` it sets ``profile``, as papermill's injected cell does), with the notebook's folder
as the working directory and ``MPLBACKEND=Agg``. What a kernel would provide and a bare Python
lacks is stood in for: ``display`` (``IPython.display`` when installed, else printing the repr),
and, only when they do not import, small stand-ins for ``IPython.display`` and ``ipywidgets`` that
accept any call (interactive explorers are then skipped; the log says so). Cell magics and shell
lines (``%``, ``!``) are skipped.

Writes ``DIR/<folder>__<name>.json`` after every cell (``ok`` is null while running, so a run stopped
from outside keeps what finished): ``ok``, ``seconds``, ``cell_seconds``, the error with its
traceback, ``peak_gpu_mb`` (``torch.cuda.max_memory_allocated`` in MiB, device 0, when the notebook
used CUDA), ``profile`` (the sizes the notebook ran with) and ``headline``: the last printed lines of
each cell that printed (the measured numbers a chapter asserts); the full output is in
``DIR/<folder>__<name>.log``.
"""
from __future__ import annotations

import argparse
import builtins
import io
import json
import os
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Tee(io.TextIOBase):
    """Write to the log and keep the current cell's text."""

    def __init__(self, log):
        self.log, self.cell = log, []

    def write(self, s):
        self.log.write(s)
        self.log.flush()
        self.cell.append(s)
        return len(s)

    def flush(self):
        self.log.flush()


class _Anything:
    """Stands in for a widget library that is not installed: every attribute and call gives another."""

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return _Anything()

    def __call__(self, *a, **k):
        return _Anything()

    def __iter__(self):
        return iter(())

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _install_stand_ins(note) -> None:
    try:
        import IPython.display  # noqa: F401
    except Exception:  # noqa: BLE001
        ipy = types.ModuleType("IPython")
        disp = types.ModuleType("IPython.display")
        disp.display = lambda *objs, **k: [print(repr(o)) for o in objs] and None
        for name in ("HTML", "Markdown", "Image", "Math"):
            setattr(disp, name, lambda *a, **k: _Anything())
        disp.clear_output = lambda *a, **k: None
        ipy.display = disp
        ipy.get_ipython = lambda: None
        sys.modules["IPython"], sys.modules["IPython.display"] = ipy, disp
        note.append("IPython absent: display() prints the repr")
    try:
        import ipywidgets  # noqa: F401
    except Exception:  # noqa: BLE001
        mod = types.ModuleType("ipywidgets")
        mod.__getattr__ = lambda name: _Anything
        sys.modules["ipywidgets"] = mod
        note.append("ipywidgets absent: widgets are inert stand-ins")


def code_cells(nb: dict) -> list[tuple[str, bool]]:
    """(source, is_parameters) of each code cell, magics and shell lines removed."""
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        out.append(("\n".join(lines), "parameters" in cell.get("metadata", {}).get("tags", [])))
    return out


def _headline(text: str, keep: int = 3) -> list[str]:
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and any(ch.isdigit() for ch in ln)]
    return lines[-keep:]


def run(path: Path, profile: str, out_dir: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    stem = f"{path.parent.name}__{path.stem}"
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["LOWLIGHT_PROFILE"] = profile
    sys.path.insert(0, str(ROOT))
    os.chdir(path.parent)
    note: list[str] = []
    _install_stand_ins(note)
    from IPython.display import display

    ns = {"__name__": "__main__", "display": display}
    builtins.display = display
    result = dict(notebook=str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                  profile_name=profile, ok=False, seconds=None, cell_seconds=[], error="", notes=note,
                  headline=[], peak_gpu_mb=None, profile=None)
    t0 = time.perf_counter()
    record = out_dir / f"{stem}.json"

    def save():
        result["seconds"] = round(time.perf_counter() - t0, 3)
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
        p = ns.get("P")
        if p is not None and hasattr(p, "__dataclass_fields__"):
            result["profile"] = {k: getattr(p, k) for k in p.__dataclass_fields__}
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, record)

    result["ok"] = None   # running: a run stopped from outside leaves the cells done so far
    with open(out_dir / f"{stem}.log", "w", encoding="utf-8") as log:
        tee = _Tee(log)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = tee
        try:
            for i, (src, is_params) in enumerate(code_cells(nb)):
                tee.cell = []
                print(f"# ---- cell {i}")
                c0 = time.perf_counter()
                exec(compile(src, f"{path.name}:cell{i}", "exec"), ns)   # noqa: S102 (our own notebooks)
                if is_params:
                    exec(f"profile = {profile!r}", ns)                   # noqa: S102 (papermill's injection)
                result["cell_seconds"].append(round(time.perf_counter() - c0, 3))
                for line in _headline("".join(tee.cell)[len(f"# ---- cell {i}\n"):]):
                    result["headline"].append(f"cell {i}: {line}"[:300])
                save()
            result["ok"] = True
        except BaseException as exc:  # noqa: BLE001  (a failed assert is the result, not a crash)
            result["ok"] = False
            result["error"] = f"cell {len(result['cell_seconds'])}: {type(exc).__name__}: {exc}"[:2000]
            result["traceback"] = traceback.format_exc()[-4000:]
            print(result["traceback"])
        finally:
            sys.stdout, sys.stderr = old_out, old_err
    save()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook")
    ap.add_argument("--profile", default="gpu")
    ap.add_argument("--out", default="build/nb_script")
    args = ap.parse_args(argv)
    r = run(Path(args.notebook).resolve(), args.profile, Path(args.out).resolve())
    print(f"{r['notebook']}: {'ok' if r['ok'] else 'FAILED'} in {r['seconds']:.1f} s"
          + (f", peak GPU {r['peak_gpu_mb']:.0f} MiB" if r["peak_gpu_mb"] is not None else "")
          + (f" ({r['error'][:200]})" if r["error"] else ""))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
