"""The ``lowlight-course`` command line: jobs people run outside a notebook.

    lowlight-course doctor                         check the environment
    lowlight-course get-course DIR [--solutions] [--reset NAME]  copy the course into a folder of yours
    lowlight-course run [--profile P] [--output build] [--solutions] [--exercises] [--timeout S] [NOTEBOOK ...]
    lowlight-course build-exercises [--check] [--force]  regenerate exercises/ from solutions/ (maintainers)
    lowlight-course refresh-outputs NOTEBOOK ...   re-execute (smoke) and keep checked outputs
    lowlight-course strip [--all] NOTEBOOK ...     strip outputs (keeps checked ones unless --all)
    lowlight-course audit MODULE:NAME [--model MODULE:NAME] [--json F] [--html F] [--quick]   audit a loss
    lowlight-course --version

``run`` works in a course folder (one made by ``get-course``, or a clone; ``--root`` names another);
``build-exercises`` in a clone of the course repository, which holds ``solutions/``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from lowlight_course.commands.doctor import doctor

__all__ = ["main", "doctor"]

# The commands, in the order --help lists them: modules under lowlight_course.commands.
COMMANDS = (
    "doctor",
    "get_course",
    "run",
    "build_exercises",
    "notebook_outputs",
    "audit",
)


def main(argv=None) -> int:
    from lowlight_course import __version__

    parser = argparse.ArgumentParser(prog="lowlight-course", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"lowlight-course {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=".", help="repository root (default: current folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lowlight_course.commands.{name}").register(sub, common)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
