"""``lowlight-course build-exercises``: generate exercises/ from solutions/ without losing a learner's edits."""
from __future__ import annotations

import sys


def _cmd_build(args) -> int:
    """Exit 0 built (or up to date), 1 refused (a learner's file is in the way) or ``--check`` found
    differences, 2 could not build (malformed solution, no course folder, unwritable exercises/)."""
    from lowlight_course.exercises import BuildRefused, ExerciseError, build_exercises

    try:
        report = build_exercises(args.root, check=args.check, force=args.force)
    except BuildRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report:
        print(line)
    if args.check:
        if report:
            print(f"{len(report)} exercise notebook(s) differ from their solutions.", file=sys.stderr)
            return 1
        print("exercises are up to date")
    elif not report:
        print("exercises already up to date")
    return 0



def register(sub, common) -> None:
    p = sub.add_parser("build-exercises", parents=[common], help="generate exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="only check; exit 1 listing differences")
    p.add_argument("--force", action="store_true",
                   help="also replace exercises you edited, after backing each up to exercises/backups/")
    p.set_defaults(func=_cmd_build)
