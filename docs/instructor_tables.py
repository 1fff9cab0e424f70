"""The measured tables of docs/INSTRUCTORS.md, from the files the course's own runs write.

Inputs (whatever exists; a missing measurement prints as "pending", never as a guess):

- ``build/course/<row>/timings.json`` from ``lowlight-course run --output build/course/<row>``
  (runner.py: ``profile``, ``machine`` {``OMP_NUM_THREADS``, ``cuda``, ...}, ``loadavg_start``,
  ``notebooks`` [{``notebook``, ``path``, ``ok``, ``seconds``, ``peak_rss_mb``}]);
- ``build/hub/measurements.json`` from the hub test (tests/hub/test_hub.py: ``learners``,
  ``wall_s`` {``one_learner``, ``four_learners``}, ``peak_rss_mib_server_and_kernels`` and
  ``peak_rss_mib_server_only`` per learner, ``loadavg``, ``cpu_count``).

Usage (from the repository root)::

    python docs/instructor_tables.py                      # print the tables
    python docs/instructor_tables.py --write docs/INSTRUCTORS.md   # replace them between the markers

Each table sits in the guide between ``<!-- tables:NAME:start -->`` and ``<!-- tables:NAME:end -->``.
Per profile the slowest run is shown (an upper bound for planning), with the runs it came from.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
PENDING = "pending"
TABLES = ("notebooks", "runs", "hub", "sizing")


class TableError(ValueError):
    """An input file that cannot be read as the schema above; the text names the file."""


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise TableError(f"{path}: not readable JSON ({err}); rerun the command that writes it.") from None
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a JSON object at the top.")
    return data


def load_runs(course_dir: Path) -> list[dict]:
    """Every ``<course_dir>/<row>/timings.json``, each with its row name, sorted by row."""
    runs = []
    for path in sorted(Path(course_dir).glob("*/timings.json")):
        data = _read(path)
        if not isinstance(data.get("notebooks"), list) or "profile" not in data:
            raise TableError(f"{path}: no 'profile' or 'notebooks' list: not a lowlight-course run table.")
        data["row"] = path.parent.name
        runs.append(data)
    return runs


def _column(run: dict) -> str | None:
    """Which guide column a run fills: smoke, cpu (2 threads) or gpu; None for other settings."""
    machine = run.get("machine") or {}
    threads = str(machine.get("OMP_NUM_THREADS") or machine.get("torch_threads") or "")
    if run["profile"] == "smoke":
        return "smoke"
    if run["profile"] == "cpu" and threads == "2" and not machine.get("cuda"):
        return "cpu"
    if run["profile"] == "gpu" and machine.get("cuda"):
        return "gpu"
    return None


def _key(entry: dict) -> tuple[int, str]:
    where = Path(entry.get("executed") or entry.get("path") or entry["notebook"])
    folder = where.parent.name if where.parent.name in FOLDERS else "notebooks"
    return FOLDERS.index(folder), f"{folder}/{entry['notebook'].removesuffix('.ipynb')}"


def _fmt(x, digits=0) -> str:
    return PENDING if x is None else f"{x:.{digits}f}"


def notebook_table(runs: list[dict]) -> str:
    cols = {"smoke": {}, "cpu": {}, "gpu": {}}
    rss = {}
    for run in runs:
        col = _column(run)
        if col is None:
            continue
        for e in run["notebooks"]:
            if not e.get("ok"):
                continue
            k = _key(e)
            cols[col][k] = max(cols[col].get(k, 0.0), float(e["seconds"]))
            if col == "cpu" and e.get("peak_rss_mb") is not None:
                rss[k] = max(rss.get(k, 0.0), float(e["peak_rss_mb"]))
    keys = sorted(set().union(*(c.keys() for c in cols.values())))
    lines = ["| notebook | `smoke` (s) | `cpu`, 2 threads (s) | `gpu` (s) | peak RSS under `cpu` (MB) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for k in keys:
        lines.append(f"| `{k[1]}` | {_fmt(cols['smoke'].get(k))} | {_fmt(cols['cpu'].get(k))} | "
                     f"{_fmt(cols['gpu'].get(k))} | {_fmt(rss.get(k))} |")
    if not keys:
        lines.append(f"| (no run yet) | {PENDING} | {PENDING} | {PENDING} | {PENDING} |")
    return "\n".join(lines)


def runs_table(runs: list[dict]) -> str:
    lines = ["| run (`build/course/…`) | profile | threads | kernels | load at start | load at end | notebooks ok | total (s) |",
             "| --- | --- | ---: | --- | --- | --- | ---: | ---: |"]
    for r in runs:
        m = r.get("machine") or {}
        kern = m.get("ATEN_CPU_CAPABILITY") or m.get("cpu_capability") or "?"
        load, end = (" / ".join(f"{x:.1f}" for x in r.get(k) or []) or "?" for k in ("loadavg_start", "loadavg_end"))
        ok = sum(1 for e in r["notebooks"] if e.get("ok"))
        lines.append(f"| `{r['row']}` | {r['profile']} | {m.get('OMP_NUM_THREADS') or '?'} | {kern} | {load} | {end} | "
                     f"{ok}/{len(r['notebooks'])} | {_fmt(r.get('total_seconds'))} |")
    if not runs:
        lines.append(f"| {PENDING} | | | | | | | |")
    return "\n".join(lines)


def hub_table(hub: dict | None) -> str:
    if hub is None:
        return (f"| measurement | value |\n| --- | --- |\n| one learner, wall (s) | {PENDING} |\n"
                f"| four learners at once, wall (s) | {PENDING} |\n| peak RSS per learner (MiB) | {PENDING} |")
    wall = hub.get("wall_s") or {}
    tree = hub.get("peak_rss_mib_server_and_kernels") or {}
    server = hub.get("peak_rss_mib_server_only") or {}
    load = hub.get("loadavg") or {}
    lines = ["| measurement | value |", "| --- | --- |",
             f"| what each learner ran | {hub.get('what_one_learner_ran', '?')} |",
             f"| one learner, wall (s) | {_fmt(wall.get('one_learner'), 1)} |",
             f"| {hub.get('learners', 4)} learners at once, wall (s) | {_fmt(wall.get('four_learners'), 1)} |",
             f"| cores | {hub.get('cpu_count', '?')} |"]
    if load:
        lines.append(f"| load average at start | {' / '.join(f'{x:.1f}' for x in (load.get('start') or []))} |")
    for u in sorted(tree):
        lines.append(f"| `{u}`: peak RSS, server + kernels (MiB) | {tree[u]:.0f} (server alone {server.get(u, 0):.0f}) |")
    return "\n".join(lines)


def sizing(runs: list[dict], hub: dict | None) -> dict:
    """Per-learner limits the measurements imply: memory guarantee = the largest cpu kernel + the
    largest single-user server, limit = 1.5x that (rounded up to 256 MiB); learners per core from
    the cpu profile's 2 threads per kernel and the hub's one-versus-four slowdown."""
    kernel = max((float(e["peak_rss_mb"]) for r in runs if _column(r) == "cpu" for e in r["notebooks"]
                  if e.get("ok") and e.get("peak_rss_mb") is not None), default=None)
    smoke_kernel = max((float(e["peak_rss_mb"]) for r in runs if _column(r) == "smoke" for e in r["notebooks"]
                        if e.get("ok") and e.get("peak_rss_mb") is not None), default=None)
    server = max((hub or {}).get("peak_rss_mib_server_only", {}).values(), default=None)
    out = {"kernel_cpu_mb": kernel, "kernel_smoke_mb": smoke_kernel, "server_mib": server,
           "guarantee_mib": None, "limit_mib": None, "slowdown_four": None}
    if kernel is not None and server is not None:
        need = kernel * 1e6 / 2 ** 20 + server
        out["guarantee_mib"] = int(math.ceil(need / 256) * 256)
        out["limit_mib"] = int(math.ceil(1.5 * need / 256) * 256)
    wall = (hub or {}).get("wall_s") or {}
    if wall.get("one_learner") and wall.get("four_learners"):
        out["slowdown_four"] = wall["four_learners"] / wall["one_learner"]
    return out


def sizing_table(s: dict) -> str:
    rows = [("largest kernel under `cpu` (MB)", _fmt(s["kernel_cpu_mb"])),
            ("largest kernel under `smoke` (MB)", _fmt(s["kernel_smoke_mb"])),
            ("largest single-user server alone (MiB)", _fmt(s["server_mib"])),
            ("memory guarantee per learner (MiB): kernel + server, rounded up", _fmt(s["guarantee_mib"])),
            ("memory limit per learner (MiB): 1.5x, rounded up (two open kernels fit)", _fmt(s["limit_mib"])),
            ("four learners at once / one learner, wall time", _fmt(s["slowdown_four"], 2) + ("x" if s["slowdown_four"] else ""))]
    return "| derived | value |\n| --- | ---: |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def tables(course_dir: Path, hub_file: Path) -> dict[str, str]:
    runs = load_runs(course_dir)
    hub = _read(hub_file) if Path(hub_file).is_file() else None
    return {"notebooks": notebook_table(runs), "runs": runs_table(runs), "hub": hub_table(hub),
            "sizing": sizing_table(sizing(runs, hub))}


def replace_between_markers(text: str, name: str, body: str) -> str:
    start, end = f"<!-- tables:{name}:start -->", f"<!-- tables:{name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise TableError(f"the guide needs exactly one '{start}' followed by one '{end}'.")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--course", type=Path, default=ROOT / "build" / "course", help="folder of run rows")
    p.add_argument("--hub", type=Path, default=ROOT / "build" / "hub" / "measurements.json")
    p.add_argument("--write", type=Path, help="guide to update between its markers (else print)")
    a = p.parse_args(argv)
    try:
        t = tables(a.course, a.hub)
        if a.write:
            text = a.write.read_text(encoding="utf-8")
            for name in TABLES:
                text = replace_between_markers(text, name, t[name])
            a.write.write_text(text, encoding="utf-8")
            print(f"updated {len(TABLES)} tables in {a.write}")
        else:
            for name in TABLES:
                print(f"<!-- {name} -->\n{t[name]}\n")
    except (TableError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
