"""``lowlight-course get-course DIR``: copy the installed course into a learner's folder, safely.

    lowlight-course get-course DIR [--solutions]   lectures and exercises (and solutions) into DIR
    lowlight-course get-course DIR --reset NAME    a fresh copy of one notebook, yours backed up first

It never deletes a file and never overwrites one the learner edited. Each copied notebook carries
the generation record of :mod:`lowlight_course.exercises` (``metadata.lowlight_course``: where it
came from, a hash of its cells, the version), the same record ``build-exercises`` writes, so a
re-run after an upgrade tells an untouched copy (updated in place, atomically) from an edited one
(kept; the new version is written beside it as ``NAME.v<version>.ipynb`` and the run says so).
Other files (``notebooks/index.md``, ``CHANGELOG.md``) are judged by the folder's record
``DIR/.lowlight-course.json`` (version, a hash per file as written, the new versions written beside
edited files: :func:`lowlight_course.course_files.report_updates` reads it). A file whose course
version did not change is left alone, edited or not; a deleted one is restored (and said so); a
renamed one is the learner's under its new name; a read-only one is kept as the learner's.

Every file is written through a temporary file and ``os.replace`` (Ctrl-C leaves each file old or
new, never half), the record is saved even when interrupted, and a lock file makes a second run
in the same folder at the same time refuse instead of interleaving.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lowlight_course.commands._common import usage_error as _error
from lowlight_course.runner import writable_folder

__all__ = ["get_course", "GetCourseError", "course_items", "Item", "register", "LOCK_FILE", "COPY_NOTE"]

LOCK_FILE = ".lowlight-course.lock"
COPY_NOTE = "copied by `lowlight-course get-course`; edit freely: a re-run never overwrites your edits"


class GetCourseError(ValueError):
    """get-course cannot run as asked (a one-line reason and the way out)."""


@dataclass
class Item:
    """One file of the course: ``rel`` (``exercises/01_mse_and_psnr.ipynb``), the bytes to write,
    whether it is a notebook, and its kind (lecture, exercise, solution, file)."""

    rel: str
    data: bytes
    notebook: bool
    kind: str
    source_hash: str = ""


@dataclass
class Result:
    """What one run did, file by file (relative paths), and the lines it printed."""

    added: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    restored: list = field(default_factory=list)
    kept: list = field(default_factory=list)       # (file, new version beside it)
    unchanged: list = field(default_factory=list)
    reset: list = field(default_factory=list)      # (file, backup or "")
    lines: list = field(default_factory=list)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version() -> str:
    from lowlight_course import __version__

    return __version__


def _cells_hash(data: bytes) -> str | None:
    """source_hash of notebook bytes (None if they are not a notebook)."""
    from lowlight_course.exercises import source_hash

    try:
        nb = json.loads(data.decode("utf-8"))
        cells = nb.get("cells")
        if not isinstance(cells, list):
            return None
        for c in cells:
            if isinstance(c, dict) and isinstance(c.get("source"), list):
                c["source"] = "".join(c["source"])
        return source_hash({"cells": [c for c in cells if isinstance(c, dict)]})
    except (ValueError, AttributeError, UnicodeDecodeError, TypeError):
        return None


def _record_of(data: bytes) -> dict:
    from lowlight_course.exercises import RECORD_KEY

    try:
        rec = json.loads(data.decode("utf-8")).get("metadata", {}).get(RECORD_KEY)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}
    return rec if isinstance(rec, dict) else {}


def course_items(source: Path, *, solutions: bool = False, version: str | None = None) -> list[Item]:
    """The files get-course writes, read from ``source`` (see ``course_files.course_source``):
    lectures (``notebooks/*.ipynb``) and ``notebooks/*.md``, exercises, solutions when asked, and
    ``CHANGELOG.md``; every notebook stamped with the generation record and ``version``."""
    from lowlight_course.exercises import RECORD_KEY, record
    from lowlight_course.notebook_tools import _read, notebook_bytes

    version = version or _version()
    folders = [("notebooks", "lecture"), ("exercises", "exercise")] + ([("solutions", "solution")] if solutions else [])
    items = []
    for folder, kind in folders:
        d = Path(source) / folder
        for p in sorted(d.glob("*.ipynb")) if d.is_dir() else []:
            if not p.is_file() or p.name.startswith("."):
                continue
            nb = _read(p)
            rec = nb.metadata.get(RECORD_KEY)
            if kind != "exercise" or not isinstance(rec, dict) or Path(str(rec.get("generated_from"))).name != p.name:
                record(nb, f"{folder}/{p.name}", COPY_NOTE)
            nb.metadata[RECORD_KEY]["version"] = version
            data = notebook_bytes(nb)
            items.append(Item(f"{folder}/{p.name}", data, True, kind, nb.metadata[RECORD_KEY]["source_sha256"]))
        if folder == "notebooks" and d.is_dir():
            items += [Item(f"notebooks/{p.name}", p.read_bytes(), False, "file") for p in sorted(d.glob("*.md"))
                      if p.is_file() and not p.name.startswith(".")]
    changelog = Path(source) / "CHANGELOG.md"
    if changelog.is_file():
        items.append(Item("CHANGELOG.md", changelog.read_bytes(), False, "file"))
    if not any(i.kind == "lecture" for i in items):
        raise GetCourseError(f"no lecture notebooks in {Path(source) / 'notebooks'}: the installed package is "
                             f"incomplete; reinstall it with `pip install --force-reinstall lowlight-course`")
    return items


# ---------------------------------------------------------------------------------------------
# The folder's record and lock
# ---------------------------------------------------------------------------------------------
def _load_record(dest: Path, lines: list) -> dict:
    from lowlight_course.course_files import RECORD_FILE

    path = dest / RECORD_FILE
    empty = {"course": "lowlight-course", "version": None, "files": {}, "updates": []}
    if not path.exists():
        return empty
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rec, dict) or not isinstance(rec.get("files", {}), dict) \
                or not isinstance(rec.get("updates", []), list):
            raise ValueError("not a get-course record")
    except (OSError, ValueError, UnicodeDecodeError):
        lines.append(f"note: {RECORD_FILE} in {dest} is unreadable or was edited; it is rebuilt. Every file that "
                     f"differs from the course is treated as yours (kept; the new version goes beside it)")
        return empty
    rec.setdefault("files", {})
    rec.setdefault("updates", [])
    rec["files"] = {k: v for k, v in rec["files"].items() if isinstance(k, str) and isinstance(v, dict)}
    rec["updates"] = [u for u in rec["updates"] if isinstance(u, dict)]
    return rec


def _save_record(dest: Path, rec: dict) -> None:
    from lowlight_course.course_files import RECORD_FILE
    from lowlight_course.exercises import atomic_write

    atomic_write(dest / RECORD_FILE, (json.dumps(rec, indent=1, sort_keys=True) + "\n").encode("utf-8"))


@contextlib.contextmanager
def _locked(dest: Path):
    """Hold an exclusive lock on ``dest/.lowlight-course.lock`` (another run refuses at once)."""
    fh = open(dest / LOCK_FILE, "a+b")
    try:
        try:
            try:
                import fcntl
            except ImportError:  # Windows
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GetCourseError(f"another get-course is writing into {dest} right now; wait for it to finish, "
                                 f"then run this again") from None
        yield
    finally:
        fh.close()


# ---------------------------------------------------------------------------------------------
# Checks before anything is written
# ---------------------------------------------------------------------------------------------
def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _check_dest(dest: Path, source: Path, folders) -> Path:
    """DIR resolved, or :class:`GetCourseError`: a file, not creatable or writable, inside the
    installed package, or the course's own source folders."""
    import lowlight_course

    given = dest
    if dest.is_symlink() and not dest.exists():
        raise GetCourseError(f"{given} is a broken link; remove it or choose another folder")
    dest = dest.expanduser().resolve()
    pkg = Path(lowlight_course.__file__).resolve().parent
    src = Path(source).resolve()
    if _inside(dest, pkg):
        raise GetCourseError(f"{given} is inside the installed package ({pkg}); choose a folder of your own, "
                             f"e.g. `lowlight-course get-course ~/lowlight-course`")
    if dest == src or any(_inside(dest, src / f) for f in ("notebooks", "exercises", "solutions")):
        raise GetCourseError(f"{given} is the course's own source ({src}); choose a separate folder, e.g. "
                             f"`lowlight-course get-course ~/lowlight-course`")
    if dest.exists() and not dest.is_dir():
        raise GetCourseError(f"{given} is a file, not a folder; pass a folder (it is created if missing)")
    probe = dest
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise GetCourseError(f"{given}: {probe} is a file, so the folder cannot be created; choose another path")
    if not writable_folder(probe):
        raise GetCourseError(f"{given}: {probe} is not writable; choose a folder you can write to, e.g. "
                             f"`lowlight-course get-course ~/lowlight-course`")
    for f in folders:
        sub = dest / f
        if sub.is_symlink() and not sub.exists() or sub.exists() and not sub.is_dir():
            raise GetCourseError(f"{sub} exists but is not a folder; move it away, then run get-course again")
        if sub.is_dir() and not writable_folder(sub):
            raise GetCourseError(f"{sub} is not writable; make it writable (chmod u+w {sub}) or choose another "
                                 f"folder")
    return dest


def _read_only(path: Path) -> bool:
    try:
        return not (path.stat().st_mode & stat.S_IWUSR) or not os.access(path, os.W_OK)
    except OSError:
        return True


# ---------------------------------------------------------------------------------------------
# The copy
# ---------------------------------------------------------------------------------------------
def _judge(item: Item, target: Path, rec: dict) -> tuple[str, str]:
    """(action, why): action is 'write', 'skip' or 'beside' for an existing ``target``."""
    from lowlight_course.exercises import EDITED, UNTOUCHED, file_state

    if target.is_symlink() or not target.is_file():
        return "beside", "it is a link or a folder, not a file of the course"
    try:
        current = target.read_bytes()
    except OSError:
        return "beside", "it cannot be read"
    if current == item.data:
        return "skip", ""
    old = rec["files"].get(item.rel, {})
    if item.notebook:
        cells = _cells_hash(current)
        if cells == item.source_hash:
            return "skip", ""  # same cells: only outputs or metadata differ (the learner ran it)
        state = file_state(target)
        recorded = _record_of(current).get("source_sha256")
        if state == UNTOUCHED:
            if _read_only(target):
                return "beside", "it is read-only"
            return "write", ""
        if state == EDITED and recorded == item.source_hash:
            return "skip", ""  # the course did not change it: the learner's edits simply stay
        if state != EDITED and old.get("source_sha256") == item.source_hash:
            return "skip", ""
        return "beside", ("you edited it" if state == EDITED else
                          "it is not the copy get-course made (its record is missing or changed)")
    cur = _sha(current)
    if old.get("sha256") == cur:  # untouched since written
        if _read_only(target):
            return "beside", "it is read-only"
        return "write", ""
    if old.get("sha256") == _sha(item.data):
        return "skip", ""  # edited, but the course did not change it
    return "beside", "you edited it" if old else "it was not written by get-course"


def _entry(item: Item, version: str) -> dict:
    e = {"sha256": _sha(item.data), "version": version}
    if item.notebook:
        e["source_sha256"] = item.source_hash
    return e


def get_course(dest, *, solutions: bool = False, reset=(), source=None, version: str | None = None,
               echo=print) -> Result:
    """Copy the course into ``dest`` (see the module docstring); with ``reset`` (notebook names)
    only give those a fresh copy, each existing one backed up first to ``<its folder>/backups/``.

    ``source`` (default: the installed course) and ``version`` (default ``__version__``) exist for
    tests. Raises :class:`GetCourseError` (nothing written) for a folder that cannot be used or an
    unknown name. Returns a :class:`Result`; ``echo`` prints each line."""
    from lowlight_course.course_files import UPDATE_TAG, course_source, write_new  # noqa: F401
    from lowlight_course.exercises import atomic_write, backup

    version = version or _version()
    source = Path(source) if source is not None else course_source()
    items = course_items(source, solutions=solutions or any(_is_solution(n) for n in reset), version=version)
    by_name = _names(items)
    wanted = []
    for name in reset:
        key = _key(name)
        if key not in by_name:
            names = ", ".join(Path(i.rel).stem for i in items if i.kind == "exercise")
            others = ", ".join(i.rel for i in items if i.notebook and i.kind != "exercise")
            raise GetCourseError(f"--reset {name}: no such course notebook. Exercises: {names}; also: {others}")
        wanted.append(by_name[key])
    folders = sorted({i.rel.split("/")[0] for i in items if "/" in i.rel})
    dest_path = _check_dest(Path(dest), source, folders)
    dest_path.mkdir(parents=True, exist_ok=True)
    res = Result()
    out = res.lines

    def say(line):
        out.append(line)
        if echo is not None:
            echo(line)

    with _locked(dest_path):
        rec = _load_record(dest_path, out)
        for line in out:
            if echo is not None:
                echo(line)
        try:
            for f in folders:
                (dest_path / f).mkdir(exist_ok=True)
            if wanted:
                _reset(dest_path, wanted, rec, version, res, say, backup, atomic_write)
            else:
                _copy(dest_path, items, rec, version, res, say, atomic_write)
        finally:
            rec["course"] = "lowlight-course"
            if not wanted:
                rec["version"] = version
            _save_record(dest_path, rec)
    if not wanted:
        n_lec = sum(i.kind == "lecture" for i in items)
        n_ex = sum(i.kind == "exercise" for i in items)
        n_sol = sum(i.kind == "solution" for i in items)
        what = f"{n_lec} lectures, {n_ex} exercises" + (f", {n_sol} solutions" if n_sol else "")
        say(f"lowlight-course {version} in {dest_path}: {what} ({len(res.added)} added, {len(res.updated)} "
            f"updated, {len(res.restored)} restored, {len(res.kept)} kept as you edited them, "
            f"{len(res.unchanged)} unchanged). Open it: cd {dest_path} && jupyter lab")
    return res


def _copy(dest: Path, items, rec, version, res, say, atomic_write) -> None:
    from lowlight_course.course_files import write_new

    known = bool(rec["files"])  # a course folder already (not the first copy): new material gets a line
    for item in items:
        target = dest / item.rel
        if not target.exists() and not target.is_symlink():
            atomic_write(target, item.data)
            if item.rel in rec["files"]:
                res.restored.append(item.rel)
                say(f"{item.rel}: restored (it was missing; if you deleted it on purpose, delete it again: "
                    f"a re-run brings it back)")
            else:
                res.added.append(item.rel)
                if known:
                    say(f"{item.rel}: new in {version}")
            rec["files"][item.rel] = _entry(item, version)
            continue
        action, why = _judge(item, target, rec)
        if action == "skip":
            res.unchanged.append(item.rel)
            if item.rel not in rec["files"] and target.read_bytes() == item.data:
                rec["files"][item.rel] = _entry(item, version)
            continue
        if action == "write":
            atomic_write(target, item.data)
            res.updated.append(item.rel)
            rec["files"][item.rel] = _entry(item, version)
            say(f"{item.rel}: updated to {version} (you had not edited it)")
            continue
        earlier = {p.name for p in target.parent.glob(f"{glob.escape(target.stem)}.v{glob.escape(version)}*")}
        written = write_new(target, f"v{version}", item.data)
        beside = written.relative_to(dest).as_posix()
        res.kept.append((item.rel, beside))
        if not any(u.get("beside") == beside for u in rec["updates"]):
            rec["updates"].append({"file": item.rel, "beside": beside, "version": version})
        still = "still " if written.name in earlier else ""
        say(f"{item.rel}: kept as it is ({why}); the {version} version is {still}beside it: {beside}")


def _reset(dest: Path, wanted, rec, version, res, say, backup, atomic_write) -> None:
    for item in wanted:
        target = dest / item.rel
        saved = ""
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise GetCourseError(f"{target} is a link or a folder; move it away, then run --reset again")
        if target.is_file() and target.read_bytes() == item.data:
            res.reset.append((item.rel, ""))
            say(f"{item.rel}: already a fresh copy of {version}; nothing to reset")
            continue
        if target.exists():
            saved = backup(target, target.parent / "backups").relative_to(dest).as_posix()
        atomic_write(target, item.data)
        rec["files"][item.rel] = _entry(item, version)
        rec["updates"] = [u for u in rec["updates"] if u.get("file") != item.rel]
        res.reset.append((item.rel, saved))
        say(f"{item.rel}: fresh copy of {version} written; " +
            (f"your version is backed up in {saved}" if saved else "there was no copy to back up"))


def _key(name: str) -> str:
    name = name.strip().replace("\\", "/").rstrip("/")
    if name.endswith(".ipynb"):
        name = name[:-len(".ipynb")]
    return name.lower()


def _is_solution(name: str) -> bool:
    return _key(name).startswith("solutions/")


def _names(items) -> dict:
    """Every accepted spelling of a notebook name -> its item. A bare name means the exercise
    (then the lecture) of that name; ``exercises/NAME``, ``notebooks/NAME`` and ``solutions/NAME`` are
    exact; ``01`` alone is accepted where it names a single exercise."""
    out = {}
    for item in items:
        if not item.notebook:
            continue
        out[_key(item.rel)] = item
    prefer = {"exercise": 0, "lecture": 1, "solution": 2}
    for item in sorted((i for i in items if i.notebook), key=lambda i: -prefer[i.kind]):
        out[_key(Path(item.rel).name)] = item  # lower preference first, overwritten by better
    exercises = [i for i in items if i.kind == "exercise"]
    for item in exercises:
        num = Path(item.rel).name.split("_", 1)[0]
        if sum(Path(i.rel).name.startswith(num + "_") for i in exercises) == 1:
            out.setdefault(num.lower(), item)
    return out


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def _cmd(args) -> int:
    """Exit 0 done, 2 refused (nothing written), 130 interrupted (each file old or new)."""
    from lowlight_course.course_files import CourseSourceError

    try:
        get_course(args.dir, solutions=args.solutions, reset=args.reset or ())
    except (GetCourseError, CourseSourceError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot write in {args.dir} ({exc.strerror or exc}: {exc.filename or ''}); every file "
                      f"written so far is complete; free space or fix the permissions, then run it again")
    except KeyboardInterrupt:
        print(f"\ninterrupted: every file in {args.dir} is either its old or its new version; run the same "
              f"command again to finish", file=sys.stderr)
        return 130
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("get-course", help="copy the course (lectures, exercises) into a folder of yours",
                       description="Copy the installed course into DIR. Never deletes a file and never overwrites "
                                   "one you edited: the new version goes beside it as NAME.v<version>.ipynb.")
    p.add_argument("dir", metavar="DIR", help="the folder to copy into (created if missing)")
    p.add_argument("--solutions", action="store_true", help="also copy the worked solutions (solutions/)")
    p.add_argument("--reset", action="append", metavar="NAME",
                   help="give NAME (an exercise, e.g. 01_mse_and_psnr or exercises/01_mse_and_psnr.ipynb) a fresh "
                        "copy; yours is backed up to exercises/backups/ first (repeatable)")
    p.set_defaults(func=_cmd)
