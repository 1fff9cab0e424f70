"""Build hook: the course notebooks ship inside the package.

``notebooks/``, ``exercises/`` and ``solutions/`` (their ``.ipynb`` and ``.md`` files) and
``CHANGELOG.md`` are copied into the wheel as ``lowlight_course/_course/`` at build time, so
``pip install`` (of the wheel, the sdist or a git URL) gives a learner the whole course and
``lowlight-course get-course DIR`` can copy it out. The repository holds them once, at the top
level; an editable install (``pip install -e .``) finds them there instead
(``lowlight_course.course_files.course_source``). Everything else is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COURSE_FOLDERS = ("notebooks", "exercises", "solutions")
COURSE_FILES = ("CHANGELOG.md",)
SUFFIXES = (".ipynb", ".md")


def course_files():
    """(source, path inside lowlight_course/_course) of every file the course ships."""
    out = []
    for folder in COURSE_FOLDERS:
        src = ROOT / folder
        if not src.is_dir():
            raise SystemExit(f"cannot build lowlight-course: {src} is missing; build from the repository "
                             f"or its sdist (MANIFEST.in grafts {', '.join(COURSE_FOLDERS)})")
        out += [(p, f"{folder}/{p.name}") for p in sorted(src.iterdir())
                if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")]
    out += [(ROOT / name, name) for name in COURSE_FILES if (ROOT / name).is_file()]
    return out


class build_py_with_course(build_py):
    """build_py, plus the course copied into ``lowlight_course/_course`` (not in editable mode)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "lowlight_course" / "_course"
        if dest.is_dir():  # a reused build/ must not ship a notebook that was removed since
            shutil.rmtree(dest)
        for src, rel in course_files():
            target = dest / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(src), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        dest = Path(self.build_lib) / "lowlight_course" / "_course"
        return outputs + [str(dest / rel) for _, rel in course_files()]


setup(cmdclass={"build_py": build_py_with_course})
