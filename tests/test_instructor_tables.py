"""docs/instructor_tables.py turns the runs' JSON into the guide's tables (sample of both schemas)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "instructor_tables.py"
spec = importlib.util.spec_from_file_location("instructor_tables", SCRIPT)
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)


def _run(folder, profile, threads, entries, cuda=False, load=(2.0, 2.5, 3.0)):
    """A timings.json as lowlight_course.runner writes it."""
    nbs = [{"notebook": f"{name}.ipynb", "path": f"/x/{where}/{name}.ipynb", "ok": ok, "seconds": s,
            "peak_rss_mb": rss, "error": "" if ok else "boom", "executed": f"build/course/{folder.name}/{where}/{name}.ipynb"}
           for where, name, s, rss, ok in entries]
    folder.mkdir(parents=True)
    (folder / "timings.json").write_text(json.dumps({
        "profile": profile, "timeout_s": None, "loadavg_start": list(load), "loadavg_end": list(load),
        "machine": {"cpu_count": 2, "OMP_NUM_THREADS": str(threads), "ATEN_CPU_CAPABILITY": None,
                    "cpu_capability": "AVX2", "cuda": cuda, "torch_threads": threads},
        "started": "2026-12-01T00:00:00+0000", "total_seconds": sum(e[2] for e in entries), "notebooks": nbs}))


HUB = {"learners": 4, "wall_s": {"one_learner": 40.0, "four_learners": 100.0},
       "what_one_learner_ran": "pull, 00 Run All, exercise",
       "peak_rss_mib_server_and_kernels": {"learner1": 700.0, "learner2": 720.0},
       "peak_rss_mib_server_only": {"learner1": 140.0, "learner2": 150.0},
       "loadavg": {"start": [1.0, 1.0, 1.0]}, "cpu_count": 2}


@pytest.fixture
def sample(tmp_path):
    course = tmp_path / "course"
    _run(course / "smoke-a", "smoke", 2, [("notebooks", "01_mse", 20.0, 400.0, True),
                                          ("solutions", "01_mse_and_psnr", 9.0, 300.0, True)])
    _run(course / "smoke-b", "smoke", 2, [("notebooks", "01_mse", 31.0, 410.0, True),
                                          ("solutions", "01_mse_and_psnr", 7.0, 300.0, False)])
    _run(course / "cpu-native", "cpu", 2, [("notebooks", "01_mse", 200.0, 586.0, True)])
    _run(course / "cpu-1thread", "cpu", 1, [("notebooks", "01_mse", 999.0, 999.0, True)])  # not the 2-core column
    hub = tmp_path / "measurements.json"
    hub.write_text(json.dumps(HUB))
    return course, hub


def _row(table, key):
    line = next(line for line in table.splitlines() if f"`{key}`" in line)
    return [c.strip() for c in line.strip("|").split("|")]


def test_notebook_table_takes_the_slowest_run_per_profile(sample):
    t = T.tables(*sample)
    assert _row(t["notebooks"], "notebooks/01_mse") == ["`notebooks/01_mse`", "31", "200", "pending", "586"]
    # a failed run is not a timing: solutions/01 keeps the 9 s of the run that passed
    assert _row(t["notebooks"], "solutions/01_mse_and_psnr")[1:] == ["9", "pending", "pending", "pending"]
    assert "999" not in t["notebooks"], "a 1-thread cpu run must not fill the 2-thread column"
    assert t["notebooks"].index("notebooks/01_mse") < t["notebooks"].index("solutions/01")


def test_runs_and_hub_tables(sample):
    t = T.tables(*sample)
    assert _row(t["runs"], "cpu-native")[1:] == ["cpu", "2", "AVX2", "2.0 / 2.5 / 3.0", "2.0 / 2.5 / 3.0", "1/1", "200"]
    assert "| 4 learners at once, wall (s) | 100.0 |" in t["hub"]
    assert "| one learner, wall (s) | 40.0 |" in t["hub"]
    assert "`learner2`: peak RSS, server + kernels (MiB) | 720 (server alone 150) |" in t["hub"]


def test_sizing_from_the_measurements(sample):
    s = T.sizing(T.load_runs(sample[0]), HUB)
    need = 586 * 1e6 / 2 ** 20 + 150  # largest cpu kernel (MB -> MiB) + largest server
    assert s["guarantee_mib"] == 768 and s["guarantee_mib"] >= need > s["guarantee_mib"] - 256
    assert s["limit_mib"] == 1280 and s["limit_mib"] >= 1.5 * need
    assert s["slowdown_four"] == pytest.approx(2.5)


def test_nothing_measured_prints_pending(tmp_path):
    t = T.tables(tmp_path / "none", tmp_path / "none.json")
    for name in T.TABLES:
        assert "pending" in t[name], name


def test_write_replaces_only_between_the_markers(sample, tmp_path):
    guide = tmp_path / "GUIDE.md"
    body = "".join(f"before {n}\n<!-- tables:{n}:start -->\nold\n<!-- tables:{n}:end -->\nafter {n}\n" for n in T.TABLES)
    guide.write_text("# Guide\n" + body)
    cmd = [sys.executable, str(SCRIPT), "--course", str(sample[0]), "--hub", str(sample[1]), "--write", str(guide)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = guide.read_text()
    assert "old" not in text and text.startswith("# Guide\nbefore notebooks\n")
    assert "| `notebooks/01_mse` | 31 | 200 | pending | 586 |" in text
    for n in T.TABLES:
        assert f"before {n}" in text and f"after {n}" in text
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert guide.read_text() == text, "a second write changes nothing"


def test_missing_markers_and_bad_json_are_named(sample, tmp_path):
    guide = tmp_path / "GUIDE.md"
    guide.write_text("no markers here\n")
    r = subprocess.run([sys.executable, str(SCRIPT), "--course", str(sample[0]), "--hub", str(sample[1]),
                        "--write", str(guide)], capture_output=True, text=True)
    assert r.returncode == 2 and "<!-- tables:notebooks:start -->" in r.stderr
    (sample[0] / "smoke-a" / "timings.json").write_text("{not json")
    r = subprocess.run([sys.executable, str(SCRIPT), "--course", str(sample[0])], capture_output=True, text=True)
    assert r.returncode == 2 and "smoke-a/timings.json: not readable JSON" in r.stderr


def test_the_guide_holds_every_table_between_markers():
    text = (ROOT / "docs" / "INSTRUCTORS.md").read_text()
    for n in T.TABLES:
        assert text.count(f"<!-- tables:{n}:start -->") == 1 and text.count(f"<!-- tables:{n}:end -->") == 1, n
