"""Every notebook's setup cell: generated from one template, installing from the URL in pyproject.toml;
silent where the package imports, installs on Colab, stops with the exact command elsewhere."""
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from lowlight_course import notebook_setup as NS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def _pyproject_url():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_every_directory_has_notebooks():
    for d in ("notebooks", "solutions", "exercises"):
        assert list((ROOT / d).glob("*.ipynb")), f"no notebooks in {d}/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_setup_cell_is_the_template_right_after_parameters(path):
    nb = nbformat.read(path, as_version=4)
    params, idx = NS.find_setup_cell(nb)
    assert idx == params + 1, f"{path.name}: the code cell right after 'parameters' must be tagged 'setup'"
    cell = nb.cells[idx]
    assert cell.source == NS.setup_cell_source(_pyproject_url()), (
        f"{path.name}: setup cell differs from the template; run "
        "python -m lowlight_course.notebook_setup write notebooks/*.ipynb solutions/*.ipynb && "
        "lowlight-course build-exercises")
    assert not cell.get("outputs"), "the setup cell is committed without outputs"


def test_template_installs_from_the_pyproject_url():
    url = _pyproject_url()
    assert NS.install_source() == url
    src = NS.setup_cell_source()
    assert f'"lowlight-course @ git+{url}"' in src
    assert src.count("git+") == 1, "the install source appears once in the cell"
    compile(src, "<setup cell>", "exec")
    assert len(src.splitlines()) <= 16, "keep the setup cell short"


def _run_cell(tmp_path, prelude: str):
    """Run the setup cell's code in a fresh Python where lowlight_course cannot be imported
    (the editable-install finder and the clone are removed from the import system)."""
    block = textwrap.dedent(f"""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                            and "editable" not in getattr(f, "__name__", "").lower()]
        sys.path[:] = [p for p in sys.path if p and not __import__("os").path.isdir(
            __import__("os").path.join(p, "lowlight_course"))]
        import importlib.util
        assert importlib.util.find_spec("lowlight_course") is None, "test setup: package still importable"
        ROOT = {str(ROOT)!r}
    """) + textwrap.dedent(prelude) + "\n" + NS.setup_cell_source() + "\nprint('CELL DONE')\n"
    script = tmp_path / "cell.py"
    script.write_text(block)
    return subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def test_not_installed_stops_with_the_exact_command(tmp_path):
    r = _run_cell(tmp_path, "")
    assert r.returncode != 0 and "CELL DONE" not in r.stdout
    last = r.stderr.strip().splitlines()
    assert any(line.startswith("ModuleNotFoundError: The course package lowlight_course is not installed")
               for line in last), r.stderr
    command = f'"{sys.executable}" -m pip install "lowlight-course @ git+{_pyproject_url()}"'
    assert command in r.stderr, r.stderr
    assert "restart the kernel" in r.stderr


def test_on_colab_it_installs_from_the_one_source_then_imports(tmp_path):
    # A fake google.colab module; pip is replaced by a recorder that "installs" by putting the clone
    # on sys.path (the real install needs the network), so the cell's own import must then work.
    prelude = """
        import types, subprocess
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        CALLS = []
        def fake_run(cmd, check=False, **kw):
            CALLS.append(cmd)
            sys.path.insert(0, ROOT)
            return subprocess.CompletedProcess(cmd, 0)
        subprocess.run = fake_run
    """
    r = _run_cell(tmp_path, textwrap.dedent(prelude) + "import atexit; atexit.register(lambda: print('CALLS', CALLS))")
    assert r.returncode == 0, r.stderr
    assert "Installing the course package" in r.stdout and "CELL DONE" in r.stdout
    expected = [sys.executable, "-m", "pip", "install", "-q", f"lowlight-course @ git+{_pyproject_url()}"]
    assert f"CALLS [{expected!r}]" in r.stdout, r.stdout


def test_installed_it_prints_nothing(tmp_path):
    script = tmp_path / "cell.py"
    script.write_text(NS.setup_cell_source() + "\nimport sys; sys.stdout.write('|END')\n")
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "|END" and r.stderr == ""


def test_ready_is_quiet_and_never_raises(monkeypatch, capsys, tmp_path):
    import types

    calls = []
    fake = types.ModuleType("lowlight_course.course_files")
    fake.report_updates = lambda folder=".": calls.append(folder) or []
    monkeypatch.setitem(sys.modules, "lowlight_course.course_files", fake)
    import lowlight_course
    monkeypatch.setattr(lowlight_course, "course_files", fake, raising=False)
    assert NS.ready(tmp_path) is None
    assert calls == [tmp_path]

    def boom(folder="."):
        raise RuntimeError("broken report")
    fake.report_updates = boom
    assert NS.ready() is None  # swallowed
    assert capsys.readouterr().out == ""


def test_apply_setup_cell_inserts_once_and_rewrites(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"),
                nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import torch")]
    assert NS.find_setup_cell(nb) == (1, -1)
    assert NS.apply_setup_cell(nb, "A") is True
    assert [c.source for c in nb.cells] == ["# t", 'profile = "auto"', "A", "import torch"]
    assert nb.cells[2].id == "setup-cell" and nb.cells[2].metadata.tags == ["setup"]
    assert NS.apply_setup_cell(nb, "A") is False
    assert NS.apply_setup_cell(nb, "B") is True and len(nb.cells) == 4 and nb.cells[2].source == "B"
    nbformat.validate(nb)


def test_no_parameters_cell_is_named():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="parameters"):
        NS.find_setup_cell(nb)


@pytest.mark.parametrize("bad", ["http://insecure.example/x", "https://a b", 'https://x"y', "", None, 3])
def test_pip_spec_rejects_urls_that_break_the_cell(bad):
    with pytest.raises(ValueError, match="https://"):
        NS.pip_spec(bad)


def test_install_source_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="pyproject.toml"):
        NS.install_source(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(KeyError, match=r"\[project.urls\] needs Repository"):
        NS.install_source(tmp_path)


def test_check_command_names_a_stale_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("old setup", metadata={"tags": ["setup"]})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    cmd = [sys.executable, "-m", "lowlight_course.notebook_setup"]
    r = subprocess.run(cmd + ["check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "x.ipynb: setup cell differs" in r.stdout
    r = subprocess.run(cmd + ["write", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert subprocess.run(cmd + ["check", str(path)], cwd=ROOT).returncode == 0
