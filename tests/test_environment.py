"""environment.yml (conda) mirrors pyproject.toml: same dependency names."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def _name(spec: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project.get("optional-dependencies", {}).get("dev", [])
    return {_name(s) for s in specs}


def _environment():
    """(channels, conda specs, pip specs) from environment.yml, parsed without PyYAML."""
    channels, conda, pip, section = [], [], [], None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split(" #")[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            section = line.split(":")[0]
            continue
        item = line.strip()
        if not item.startswith("- "):
            continue
        value = item[2:].strip()
        indent = len(line) - len(line.lstrip())
        if section == "channels":
            channels.append(value)
        elif section == "dependencies":
            if value == "pip:":
                continue
            (pip if indent > 2 else conda).append(value)
    return channels, conda, pip


def test_channels_and_basics():
    channels, conda, pip = _environment()
    assert "conda-forge" in channels
    names = {_name(s) for s in conda}
    assert "python" in names and "pip" in names
    assert any(s.startswith("-e") and s.endswith(".") for s in pip), "install the course itself with `-e .`"
    assert "name: lowlight-course" in (ROOT / "environment.yml").read_text()


def test_same_dependencies_as_pyproject():
    _, conda, pip = _environment()
    env = {CONDA_TO_PYPI.get(_name(s), _name(s)) for s in conda + pip if not s.startswith("-e")}
    env -= NOT_PACKAGES
    want = _pyproject_names()
    assert env == want, f"only in environment.yml: {sorted(env - want)}; only in pyproject: {sorted(want - env)}"


def test_python_requirement_matches():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    _, conda, _ = _environment()
    py = next(s for s in conda if _name(s) == "python")
    assert project["requires-python"].replace(" ", "") in py.replace(" ", "")


def _spec(s: str) -> str:
    """'pytorch>=2.2' -> 'torch>=2.2' (name normalised, PyPI name, specifier without spaces)."""
    s = s.split(" #")[0].strip().replace(" ", "")
    name = _name(s)
    return CONDA_TO_PYPI.get(name, name) + s[len(re.split(r"[<>=!~;\[]", s, maxsplit=1)[0]):]


def test_same_version_bounds_as_pyproject():
    """Not just the names: every lower bound in pyproject.toml is the one environment.yml asks for."""
    _, conda, pip = _environment()
    env = {_spec(s) for s in conda + pip if not s.startswith("-e") and _name(s) not in NOT_PACKAGES}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = {_spec(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert env == want, f"only in environment.yml: {sorted(env - want)}; only in pyproject: {sorted(want - env)}"


def test_repo2docker_accepts_it():
    """What Binder's repo2docker needs of environment.yml (it reads it with a YAML parser, installs the
    conda part with mamba and the pip part with pip): valid YAML with only name/channels/dependencies,
    every dependency a string except one {pip: [...]} list, no machine-specific `prefix:`, and the
    course installed by a *local* pip requirement (`-e .`), which makes repo2docker install the
    environment after copying the repository (a `git+` URL would install another commit)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML parses environment.yml as repo2docker's YAML parser does")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert set(env) <= {"name", "channels", "dependencies"}, sorted(env)
    assert env["channels"] == ["conda-forge"], "one channel, conda-forge: mixing it with defaults makes solves slow and fragile"
    deps = env["dependencies"]
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_lists) == 1 and all(isinstance(d, str) for d in deps if not isinstance(d, dict))
    assert all(set(d) == {"pip"} for d in deps if isinstance(d, dict))
    assert "pip" in deps, "conda must install pip itself before the pip: section"
    assert "-e ." in pip_lists[0]
    assert not any("git+" in p or p.startswith("/") for p in pip_lists[0])
    # repo2docker reads a python pin only as `python=X.Y`; `python>=3.10` is accepted and leaves the
    # choice to repo2docker's default (3.10 or newer), which satisfies requires-python.
    py = [d for d in deps if isinstance(d, str) and _name(d) == "python"]
    assert py and re.fullmatch(r"python(>=|=)3\.\d+", py[0].replace(" ", ""))
