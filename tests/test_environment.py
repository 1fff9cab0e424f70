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
