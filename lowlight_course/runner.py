"""Run notebooks headless (papermill) and record how long each took and how much memory it used.

``lowlight-course run`` is built on :func:`run_notebooks`: each notebook is executed with the run
profile injected as a papermill parameter, the executed copy (and an HTML export) is written to
``output_dir/<folder>/``, a table of notebook, status, seconds and the kernel's peak memory is
printed, and the same table goes to ``output_dir/timings.json`` together with the facts that
decide the speed and the numbers: CPU count, torch threads, the instruction set PyTorch chose
(``ATEN_CPU_CAPABILITY``, ``torch.backends.cpu.get_cpu_capability()``) and the load average at
the start and end.

Peak memory is the kernel process's peak resident set size (``VmHWM`` in ``/proc/<pid>/status``,
read just before the kernel shuts down; Linux only, ``None`` elsewhere). It is the kernel's own
peak, not the largest of all children (``getrusage(RUSAGE_CHILDREN)`` would report the largest
kernel ever run, whichever notebook it belonged to).

The notebook packages (papermill, nbconvert, nbformat) are imported lazily.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunResult", "find_notebooks", "describe_failure", "run_notebook", "run_notebooks",
           "machine_facts", "OutputError", "check_output_dir", "NotebookPathError", "check_notebook_path",
           "TIMINGS_FILE"]

#: Name of the JSON timing table written next to the executed copies.
TIMINGS_FILE = "timings.json"


class OutputError(ValueError):
    """The output folder cannot be used (read-only, a file, or it would overwrite a source notebook)."""


class NotebookPathError(ValueError):
    """A path given as a notebook is missing, a folder, or not a Jupyter notebook."""


def check_notebook_path(path) -> Path:
    """Return ``path`` as a ``Path`` if it is a readable ``.ipynb`` notebook, else raise
    :class:`NotebookPathError` with a one-line message that says what to pass instead."""
    p = Path(path)
    if not p.exists():
        raise NotebookPathError(f"{path}: no such file; pass the path of a .ipynb notebook")
    if p.is_dir():
        n = len(list(p.glob("*.ipynb")))
        hint = f" (it holds {n} notebook(s): pass them, e.g. {p}/*.ipynb)" if n else ""
        raise NotebookPathError(f"{path}: is a folder, not a notebook{hint}")
    if p.suffix != ".ipynb":
        raise NotebookPathError(f"{path}: not a Jupyter notebook (expected a .ipynb file)")
    try:
        import nbformat

        nbformat.read(str(p), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a notebook"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookPathError(f"{path}: cannot be read as a notebook ({type(exc).__name__}: {first[:120]})") from None
    return p


@dataclass
class RunResult:
    """One notebook's run: ``ok`` is False when any cell raised, the kernel died or time ran out."""

    notebook: str
    ok: bool
    seconds: float
    error: str = ""
    executed: str = ""
    html: str = ""
    peak_rss_mb: float | None = None
    path: str = ""
    peak_gpu_mb: float | None = None


def find_notebooks(root=".", folders=("notebooks",)) -> list[Path]:
    """Sorted ``.ipynb`` files in ``folders`` under ``root`` (checkpoints excluded)."""
    found = []
    for folder in folders:
        d = Path(root) / folder
        if d.is_dir():
            found += sorted(p for p in d.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found


def describe_failure(exc, notebook) -> str:
    """A short, readable account of a papermill failure: notebook, cell, source excerpt, error."""
    cell = getattr(exc, "cell_index", None)
    if cell is None:
        return f"{notebook}: {type(exc).__name__}: {exc}"
    src = (getattr(exc, "source", "") or "").strip().splitlines()
    excerpt = "\n".join("    " + line for line in src[:12]) + ("\n    ..." if len(src) > 12 else "")
    return (f"{notebook}: cell {cell} (execution count {getattr(exc, 'exec_count', None)}) raised "
            f"{exc.ename}: {exc.evalue}\n  source:\n{excerpt}")


# ---------------------------------------------------------------------------------------------
# Output folder checks
# ---------------------------------------------------------------------------------------------
def writable_folder(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (permissions, and a read-only file system)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _executed_path(path: Path, output_dir) -> Path:
    return Path(output_dir) / path.parent.name / path.name


def check_output_dir(paths, output_dir, *, protected=()) -> None:
    """Raise :class:`OutputError` unless ``output_dir`` can take the executed copies of ``paths``.

    Refused: an ``output_dir`` that is a file, one that cannot be created or written, and one where
    an executed copy would land on a source notebook (``--output .`` from the course folder writes
    ``./notebooks/NAME.ipynb``, the notebook itself). ``protected`` adds more notebooks that must
    never be written over (the course's ``notebooks/``, ``solutions/``, ``exercises/``).
    """
    out = Path(output_dir)
    sources = {Path(p).resolve() for p in paths} | {Path(p).resolve() for p in protected}
    for p in paths:
        target = _executed_path(Path(p).resolve(), out).resolve()
        if target in sources:
            raise OutputError(
                f"--output {output_dir} would write the executed copy of {Path(p).name} over the source "
                f"notebook {target}: choose a separate folder, e.g. --output build")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(f"--output {output_dir}: {probe} is a file, not a folder; pass a folder, e.g. --output build")
    if not writable_folder(probe):
        raise OutputError(f"--output {output_dir}: {probe} is not writable; pass a folder you can write "
                          f"to, e.g. --output ~/lowlight-build")


# ---------------------------------------------------------------------------------------------
# Kernel peak memory and a per-notebook deadline
# ---------------------------------------------------------------------------------------------
def _peak_rss_mb(pid) -> float | None:
    """Peak resident set size of process ``pid`` in MiB (Linux ``VmHWM``), ``None`` if unknown."""
    try:
        with open(f"/proc/{int(pid)}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, TypeError):
        return None
    return None


def _watched_kernel_manager(record: dict, deadline_s: float | None):
    """A kernel-manager class that records the kernel's pid and peak memory, and kills the kernel
    when ``deadline_s`` seconds have passed since it started (``record['timed_out'] = True``)."""
    from jupyter_client.manager import AsyncKernelManager

    class WatchedKernelManager(AsyncKernelManager):
        def _pid(self):
            prov = getattr(self, "provisioner", None)
            return getattr(prov, "pid", None) or getattr(getattr(prov, "process", None), "pid", None)

        async def start_kernel(self, **kw):
            out = await super().start_kernel(**kw)
            record["pid"] = self._pid()
            if deadline_s is not None and record["pid"]:
                def kill(pid=record["pid"]):
                    record["peak_rss_mb"] = _peak_rss_mb(pid)
                    record["timed_out"] = True
                    try:
                        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                    except OSError:
                        pass
                timer = threading.Timer(deadline_s, kill)
                timer.daemon = True
                timer.start()
                record["timer"] = timer
            return out

        async def shutdown_kernel(self, *args, **kw):
            timer = record.pop("timer", None)
            if timer is not None:
                timer.cancel()
            if record.get("pid") and not record.get("timed_out"):
                record["peak_rss_mb"] = _peak_rss_mb(record["pid"])
            return await super().shutdown_kernel(*args, **kw)

    return WatchedKernelManager


# ---------------------------------------------------------------------------------------------
# Peak GPU memory: a last cell, added to the executed copy only, reads it inside the kernel
# ---------------------------------------------------------------------------------------------
GPU_PEAK_TAG = "lowlight-gpu-peak"
_GPU_PEAK_MARK = "LOWLIGHT_GPU_PEAK_MB"
_GPU_PEAK_SOURCE = (
    "import sys as _sys\n"
    "_t = _sys.modules.get('torch')\n"
    "if _t is not None and _t.cuda.is_available() and _t.cuda.is_initialized():\n"
    f"    print('{_GPU_PEAK_MARK}', _t.cuda.max_memory_allocated() / 2 ** 20)\n")


def _with_gpu_peak_cell(path: Path):
    """The notebook at ``path`` with a last, tagged cell that prints ``torch.cuda.max_memory_allocated``
    (MiB, all devices' first: device 0) when the notebook used CUDA; nothing otherwise."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cell = nbformat.v4.new_code_cell(_GPU_PEAK_SOURCE)
    cell.metadata["tags"] = [GPU_PEAK_TAG]
    nb.cells.append(cell)
    return nb


def _pop_gpu_peak(executed: Path) -> float | None:
    """Read the peak GPU memory the tagged cell printed and remove that cell from ``executed``."""
    import nbformat

    if not executed.exists():
        return None
    nb = nbformat.read(str(executed), as_version=4)
    peak = None
    keep = []
    for cell in nb.cells:
        if GPU_PEAK_TAG not in cell.get("metadata", {}).get("tags", []):
            keep.append(cell)
            continue
        for out in cell.get("outputs", []):
            for line in str(out.get("text", "")).splitlines():
                if line.startswith(_GPU_PEAK_MARK):
                    try:
                        peak = float(line.split()[1])
                    except (IndexError, ValueError):
                        pass
    if len(keep) != len(nb.cells):
        nb.cells = keep
        nbformat.write(nb, str(executed))
    return peak


def _kernel_name() -> str:
    return "python3"


def run_notebook(path, output_dir, *, profile: str = "auto", kernel_name: str | None = None,
                 html: bool = True, timeout: float | None = None, gpu_memory: bool | None = None) -> RunResult:
    """Execute one notebook with papermill (``profile`` injected), write the executed copy and,
    with ``html``, an HTML export to ``output_dir/<folder>/``.

    ``timeout``: seconds for the whole notebook (and for any one cell); when it runs out the kernel
    is stopped and the result says so. ``None``: no limit.
    ``gpu_memory``: also record the kernel's peak GPU memory (``torch.cuda.max_memory_allocated``,
    read by a last cell that is removed from the executed copy); ``None``: when CUDA is available.
    """
    import papermill as pm

    path = Path(path).resolve()
    executed = _executed_path(path, output_dir)
    executed.parent.mkdir(parents=True, exist_ok=True)
    record: dict = {}
    t0 = time.perf_counter()
    error = ""
    if gpu_memory is None:
        gpu_memory = _cuda_available()
    source = _with_gpu_peak_cell(path) if gpu_memory else str(path)
    try:
        pm.execute_notebook(source, str(executed), parameters={"profile": profile},
                            kernel_name=kernel_name or _kernel_name(), language="python", cwd=str(path.parent),
                            progress_bar=False, execution_timeout=timeout,
                            kernel_manager_class=_watched_kernel_manager(record, timeout))
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        error = describe_failure(exc, path.name)
        if record.get("timed_out"):
            error = f"{path.name}: timed out after {timeout:g} s (--timeout); the kernel was stopped"
    seconds = time.perf_counter() - t0
    peak_gpu = _pop_gpu_peak(executed) if gpu_memory else None
    html_path = ""
    if html and executed.exists():
        try:
            import nbformat
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
            html_path = str(executed.with_suffix(".html"))
            Path(html_path).write_text(body, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001
            error = error or f"{path.name}: HTML export failed: {exc}"
    return RunResult(path.name, not error, seconds, error, str(executed), html_path,
                     record.get("peak_rss_mb"), str(path), peak_gpu)


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


# ---------------------------------------------------------------------------------------------
# Many notebooks, the table and timings.json
# ---------------------------------------------------------------------------------------------
def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_facts() -> dict:
    """What decides a notebook's speed and its numbers: cores, threads, PyTorch's CPU kernels."""
    facts = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
             "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
             "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
             "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["torch_threads"] = torch.get_num_threads()
        try:
            facts["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:  # noqa: BLE001 - older torch
            facts["cpu_capability"] = None
        facts["cuda"] = torch.cuda.is_available()
    except ImportError:
        facts["torch"] = None
    return facts


def _format_table(results) -> list[str]:
    width = max([len("notebook")] + [len(r.notebook) for r in results])
    gpu = any(r.peak_gpu_mb is not None for r in results)
    lines = [f"{'notebook':<{width}}  status  seconds  peak MB" + ("  GPU MB" if gpu else "")]
    for r in results:
        mem = f"{r.peak_rss_mb:7.0f}" if r.peak_rss_mb is not None else "      -"
        if gpu:
            mem += f"  {r.peak_gpu_mb:6.0f}" if r.peak_gpu_mb is not None else "       -"
        lines.append(f"{r.notebook:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:7.1f}  {mem}")
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<{width}}  {sum(r.ok for r in results)}/{len(results)} ok  {total:5.1f}")
    return lines


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_notebooks(paths, output_dir="build", *, profile: str = "auto", html: bool = True,
                  kernel_name: str | None = None, echo=print, timeout: float | None = None,
                  timings: bool = True) -> list[RunResult]:
    """Run each notebook in ``paths`` (see :func:`run_notebook`), print the timing table and, with
    ``timings``, write it to ``output_dir/timings.json``.

    The JSON holds ``profile``, ``machine`` (:func:`machine_facts`), ``loadavg_start`` /
    ``loadavg_end`` (1, 5, 15 min; ``None`` where unknown), ``total_seconds`` and ``notebooks``: one
    entry per notebook with ``notebook``, ``path``, ``ok``, ``seconds``, ``peak_rss_mb`` (``None``
    where it cannot be measured), ``peak_gpu_mb`` (the kernel's ``torch.cuda.max_memory_allocated``
    in MiB; ``None`` without CUDA), ``error`` and ``executed``. It is rewritten after every notebook,
    so an interrupted run keeps what finished.
    """
    paths = [Path(p) for p in paths]
    out = Path(output_dir)
    old = os.environ.get("LOWLIGHT_PROFILE")
    if profile != "auto":
        os.environ["LOWLIGHT_PROFILE"] = profile
    results: list[RunResult] = []
    report = {"profile": profile, "timeout_s": timeout, "machine": machine_facts(),
              "loadavg_start": _loadavg(), "loadavg_end": None, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "total_seconds": 0.0, "notebooks": []}

    def save():
        if not timings:
            return
        report["notebooks"] = [{"notebook": r.notebook, "path": r.path, "ok": r.ok, "seconds": round(r.seconds, 3),
                                "peak_rss_mb": None if r.peak_rss_mb is None else round(r.peak_rss_mb, 1),
                                "peak_gpu_mb": None if r.peak_gpu_mb is None else round(r.peak_gpu_mb, 1),
                                "error": r.error, "executed": r.executed} for r in results]
        report["total_seconds"] = round(sum(r.seconds for r in results), 3)
        report["loadavg_end"] = _loadavg()
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / TIMINGS_FILE, report)

    try:
        for p in paths:
            echo(f"running {p} ...")
            r = run_notebook(p, output_dir, profile=profile, kernel_name=kernel_name, html=html, timeout=timeout)
            mem = f", peak {r.peak_rss_mb:.0f} MB" if r.peak_rss_mb is not None else ""
            echo(f"  {'ok' if r.ok else 'FAILED'} in {r.seconds:.1f} s{mem}")
            results.append(r)
            save()
    finally:
        if old is None:
            os.environ.pop("LOWLIGHT_PROFILE", None)
        else:
            os.environ["LOWLIGHT_PROFILE"] = old
    save()
    echo("")
    for line in _format_table(results):
        echo(line)
    if timings:
        echo(f"(timings written to {out / TIMINGS_FILE}; load average {report['loadavg_start']} at start, "
             f"{report['loadavg_end']} at end)")
    for r in results:
        if not r.ok:
            echo("")
            echo(r.error)
    return results
