import subprocess
import sys

import nbformat
import pytest

from lowlight_course.cli import main


def test_doctor_runs(capsys):
    rc = main(["doctor"])
    out = capsys.readouterr().out
    assert "torch" in out and "profile auto  -> smoke" in out and "python" in out
    assert rc in (0, 1)


def test_entry_point_module_help():
    proc = subprocess.run([sys.executable, "-m", "lowlight_course.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "build-exercises" in proc.stdout


def _solution(path, answer="return 42"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"def f():\n    ### BEGIN SOLUTION\n    {answer}\n    ### END SOLUTION")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_build_exercises_check_cycle(tmp_path, capsys):
    _solution(tmp_path / "solutions" / "01_demo.ipynb")
    assert main(["build-exercises", "--check", "--root", str(tmp_path)]) == 1
    assert "01_demo.ipynb: missing" in capsys.readouterr().out
    assert main(["build-exercises", "--root", str(tmp_path)]) == 0
    ex = tmp_path / "exercises" / "01_demo.ipynb"
    assert "NotImplementedError" in ex.read_text() and "return 42" not in ex.read_text()
    assert main(["build-exercises", "--check", "--root", str(tmp_path)]) == 0
    before = ex.read_bytes()
    assert main(["build-exercises", "--root", str(tmp_path)]) == 0 and ex.read_bytes() == before
    ex.write_text(ex.read_text().replace("NotImplementedError", "ValueError"))
    assert main(["build-exercises", "--check", "--root", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().out
    main(["build-exercises", "--root", str(tmp_path)])
    (tmp_path / "exercises" / "99_stale.ipynb").write_bytes(before)
    assert main(["build-exercises", "--check", "--root", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().out


def test_build_exercises_reports_malformed_markers(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, str(tmp_path / "solutions" / "01_bad.ipynb"))
    assert main(["build-exercises", "--root", str(tmp_path)]) == 2
    assert "01_bad.ipynb, cell 0" in capsys.readouterr().err


def test_strip_command(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)", execution_count=1,
                                          outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    assert main(["strip", str(path)]) == 0
    assert nbformat.read(str(path), as_version=4).cells[0].outputs == []


@pytest.mark.notebook
def test_run_and_refresh_outputs(tmp_path, capsys):
    good = nbformat.v4.new_notebook()
    good.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                  nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nimport os\nprint(profile, os.environ['LOWLIGHT_PROFILE'])"),
                  nbformat.v4.new_code_cell("print('not kept')")]
    bad = nbformat.v4.new_notebook()
    bad.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                 nbformat.v4.new_code_cell("x = 1\nraise ValueError('boom')")]
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    nbformat.write(good, str(nb_dir / "01_good.ipynb"))
    nbformat.write(bad, str(nb_dir / "02_bad.ipynb"))
    rc = main(["run", "--root", str(tmp_path), "--profile", "smoke", "--output", str(tmp_path / "build")])
    out = capsys.readouterr()
    assert rc == 1
    assert "01_good.ipynb  ok" in out.out and "02_bad.ipynb   FAILED" in out.out
    assert "02_bad.ipynb: cell" in out.out and "ValueError: boom" in out.out and "raise ValueError" in out.out
    assert (tmp_path / "build" / "notebooks" / "01_good.html").exists()

    assert main(["refresh-outputs", str(nb_dir / "01_good.ipynb")]) == 0
    nb = nbformat.read(str(nb_dir / "01_good.ipynb"), as_version=4)
    assert [o["text"] for o in nb.cells[1].outputs] == ["auto smoke\n"]
    assert nb.cells[2].outputs == [] and "papermill" not in nb.metadata


@pytest.mark.notebook
def test_run_writes_a_timing_table_and_timings_json(tmp_path, capsys):
    import json

    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    for name, code in [("01_small.ipynb", "x = 1"), ("02_bigger.ipynb", "buf = bytearray(80_000_000)\nbuf[::4096] = b'1' * len(buf[::4096])"),
                       ("03_slow.ipynb", "import time\ntime.sleep(60)")]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, str(nb_dir / name))
    out_dir = tmp_path / "build"
    rc = main(["run", "--root", str(tmp_path), "--profile", "smoke", "--no-html", "--timeout", "10",
               "--output", str(out_dir)])
    out = capsys.readouterr().out
    assert rc == 1                                           # 03_slow ran out of time
    assert "notebook" in out and "seconds" in out and "peak MB" in out and "timings.json" in out
    data = json.loads((out_dir / "timings.json").read_text())
    assert data["profile"] == "smoke" and data["timeout_s"] == 10
    machine = data["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch_threads"] >= 1
    assert {"ATEN_CPU_CAPABILITY", "cpu_capability", "OMP_NUM_THREADS"} <= set(machine)
    assert len(data["loadavg_start"]) == 3 and len(data["loadavg_end"]) == 3
    rows = {r["notebook"]: r for r in data["notebooks"]}
    assert list(rows) == ["01_small.ipynb", "02_bigger.ipynb", "03_slow.ipynb"]
    assert rows["01_small.ipynb"]["ok"] and rows["02_bigger.ipynb"]["ok"] and not rows["03_slow.ipynb"]["ok"]
    assert "timed out after 10 s" in rows["03_slow.ipynb"]["error"]
    assert 8 < rows["03_slow.ipynb"]["seconds"] < 45          # stopped by --timeout, not after 60 s
    assert all(r["seconds"] > 0 and r["path"].endswith(r["notebook"]) for r in rows.values())
    assert data["total_seconds"] >= sum(r["seconds"] for r in rows.values()) - 0.01
    if sys.platform.startswith("linux"):
        small, bigger = rows["01_small.ipynb"]["peak_rss_mb"], rows["02_bigger.ipynb"]["peak_rss_mb"]
        assert small > 10 and bigger > small + 60               # the kernel's own peak (80 MB more)
    assert (out_dir / "notebooks" / "01_small.ipynb").exists()
