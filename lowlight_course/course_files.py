"""Course updates a learner would otherwise never see: :func:`report_updates`.

A learner's course folder comes one of two ways, and each can hide an instructor's change:

- **nbgitpuller** (a workshop hub): each pull commits the learner's changes ("Automatic commit by
  nbgitpuller") and merges the instructor's branch with ``git merge -Xours`` (nbgitpuller 1.3,
  ``pull.py``: ``GitPuller.update`` then ``merge``). Where both changed the same lines the learner's
  side wins and the instructor's change is dropped without a word. :func:`report_updates` finds
  nbgitpuller's merge commits (committer ``nbgitpuller@nbgitpuller.link``, two parents), takes the
  learner's side ``M^1`` and the instructor's ``M^2`` of each, their merge base, the files changed on
  both sides since it, and re-merges each such file with ``git merge-file``: a file with conflicting
  hunks (the ones ``-Xours`` resolved silently for the learner) is a collision. The instructor's
  version of it (``M^2:path``) is written beside the learner's as ``NAME.course-update.ipynb``
  (``-2``, ``-3``, ... if that name is taken; an existing file is never overwritten). A file the
  learner edited and the instructor deleted is reported too (nbgitpuller keeps the learner's).
  Merges already examined are remembered in ``.git/lowlight-course-updates.json``.
- **get-course** (``lowlight-course get-course DIR``): a re-run after an upgrade keeps each file
  the learner edited and writes the new version beside it (``NAME.v0.2.0.ipynb``); the folder's
  record ``.lowlight-course.json`` lists them.

Either way, each such file whose new version still lies beside it gives one line; deleting the
new version (after copying what you need from it) ends the reminder. Outside a course folder or a
git folder it prints nothing. It is cheap (a single ``git log`` when nothing is new) and never
raises: it runs in every notebook's setup cell.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["report_updates", "git_updates", "getcourse_updates", "RECORD_FILE", "LEDGER_FILE", "beside_name",
           "write_new", "course_source", "CourseSourceError", "COURSE_FOLDERS"]

#: The record get-course keeps in a learner's course folder (version, files, new versions beside).
RECORD_FILE = ".lowlight-course.json"
#: The merges report_updates has examined, inside a git folder's ``.git/``.
LEDGER_FILE = "lowlight-course-updates.json"
NBGITPULLER_EMAIL = "nbgitpuller@nbgitpuller.link"
UPDATE_TAG = "course-update"
_HISTORY = 40   # first-parent commits searched for nbgitpuller merges (each pull adds at most two)
_UP = 6         # folders searched upwards for .git or the record (a notebook runs in a subfolder)
_GIT_TIMEOUT = 10


#: The course's folders, as they ship in the package (``lowlight_course/_course/``) and in a clone.
COURSE_FOLDERS = ("notebooks", "exercises", "solutions")


class CourseSourceError(RuntimeError):
    """The installed package holds no course notebooks (a broken or partial install)."""


def course_source() -> Path:
    """The folder holding the course's ``notebooks/``, ``exercises/`` and ``solutions/``.

    An installed wheel carries them as ``lowlight_course/_course/`` (setup.py's build hook copies
    them); an editable install or a clone uses the repository's own folders. Raises
    :class:`CourseSourceError` with the reinstall command when neither is there."""
    pkg = Path(__file__).resolve().parent
    for root in (pkg / "_course", pkg.parent):
        if all((root / f).is_dir() for f in COURSE_FOLDERS):
            return root
    raise CourseSourceError(f"the installed lowlight_course ({pkg}) holds no course notebooks (expected "
                            f"{pkg / '_course'}/notebooks/ ...): reinstall it with `pip install --force-reinstall "
                            f"lowlight-course` (or from its git URL), not by copying the package folder")


# ---------------------------------------------------------------------------------------------
# Small shared pieces (get-course uses them too)
# ---------------------------------------------------------------------------------------------
def beside_name(path: Path, tag: str, n: int = 1) -> Path:
    """``exercises/01.ipynb`` -> ``exercises/01.<tag>.ipynb`` (``n`` > 1: ``01.<tag>-<n>.ipynb``)."""
    path = Path(path)
    suffix = f".{tag}" + ("" if n == 1 else f"-{n}")
    return path.with_name(path.stem + suffix + path.suffix)


def write_new(path: Path, tag: str, data: bytes) -> Path:
    """Write ``data`` beside ``path`` under :func:`beside_name`, never over an existing file.

    A name already holding exactly ``data`` is reused (written before); otherwise the next free
    ``-N``. The file appears whole or not at all (a temporary file, then a hard link or an
    exclusive create). Returns the path written (or reused)."""
    path = Path(path)
    n = 1
    while True:
        target = beside_name(path, tag, n)
        if target.is_file() and not target.is_symlink():
            try:
                if target.read_bytes() == data:
                    return target
            except OSError:
                pass
        elif not target.exists() and not target.is_symlink() and _create_exclusive(target, data):
            return target
        n += 1
        if n > 1000:
            raise OSError(f"no free name beside {path}")


def _create_exclusive(target: Path, data: bytes) -> bool:
    """Create ``target`` with ``data`` atomically; False if the name was taken meanwhile."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, target)  # fails if target exists: never overwrites
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some file systems): exclusive create instead
            try:
                with open(target, "xb") as fh:
                    fh.write(data)
                return True
            except FileExistsError:
                return False
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _find_up(start: Path, name: str) -> Path | None:
    p = start
    for _ in range(_UP):
        if (p / name).exists():
            return p
        if p.parent == p:
            return None
        p = p.parent
    return None


# ---------------------------------------------------------------------------------------------
# get-course folders
# ---------------------------------------------------------------------------------------------
def getcourse_updates(root: Path) -> list[str]:
    """Lines for the new versions get-course wrote beside edited files in ``root`` (its record)."""
    try:
        rec = json.loads((Path(root) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    updates = rec.get("updates") if isinstance(rec, dict) else None
    lines = []
    for u in updates if isinstance(updates, list) else []:
        if not isinstance(u, dict) or not all(isinstance(u.get(k), str) for k in ("file", "beside")):
            continue
        if (Path(root) / u["beside"]).is_file():
            version = u.get("version") if isinstance(u.get("version"), str) else "a new version"
            lines.append(f"{u['file']}: you edited it, so get-course {version} kept yours and wrote the new "
                         f"version beside it: {u['beside']} (compare, copy what you need, then delete "
                         f"{u['beside']} to stop this message)")
    return lines


# ---------------------------------------------------------------------------------------------
# nbgitpuller folders
# ---------------------------------------------------------------------------------------------
def _git(top: Path, *args: str, ok=(0,)) -> bytes | None:
    try:
        proc = subprocess.run(["git", "-C", str(top), *args], capture_output=True, timeout=_GIT_TIMEOUT,
                              env=dict(os.environ, LANG="C", GIT_TERMINAL_PROMPT="0"))
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode in ok else None


def _puller_merges(top: Path) -> list[tuple[str, str, str]]:
    """(merge, learner side, instructor side) of nbgitpuller's merges, newest first."""
    out = _git(top, "log", "--first-parent", f"-n{_HISTORY}", "--format=%H %P%x09%ce")
    merges = []
    for line in (out or b"").decode("utf-8", "replace").splitlines():
        shas, _, email = line.partition("\t")
        parts = shas.split()
        if len(parts) == 3 and email.strip() == NBGITPULLER_EMAIL:
            merges.append((parts[0], parts[1], parts[2]))
    return merges


def _changed(top: Path, a: str, b: str) -> dict[str, str] | None:
    """path -> status letter (A, M, D, T) of the files that differ between commits a and b."""
    out = _git(top, "diff", "--no-renames", "--name-status", "-z", a, b)
    if out is None:
        return None
    items = out.decode("utf-8", "surrogateescape").split("\0")
    return {items[i + 1]: items[i][:1] for i in range(0, len(items) - 1, 2) if items[i]}


def _blob(top: Path, commit: str, path: str) -> bytes | None:
    return _git(top, "cat-file", "blob", f"{commit}:{path}")


def _conflicts(top: Path, base: bytes, ours: bytes, theirs: bytes) -> int:
    """Conflicting hunks of a plain 3-way merge of the three versions (``git merge-file``)."""
    with tempfile.TemporaryDirectory(prefix="lowlight-merge-") as d:
        names = []
        for tag, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            p = Path(d) / tag
            p.write_bytes(data)
            names.append(str(p))
        try:
            proc = subprocess.run(["git", "merge-file", "-p", "-q", *names], capture_output=True,
                                  timeout=_GIT_TIMEOUT)
        except (OSError, subprocess.SubprocessError):
            return 1
    return proc.returncode if proc.returncode >= 0 else 1


def _valid_notebook(path: str, data: bytes | None) -> bool:
    if not path.endswith(".ipynb") or data is None:
        return True
    try:
        return isinstance(json.loads(data.decode("utf-8")).get("cells"), list)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False


def _examine(top: Path, merge: str, ours: str, theirs: str) -> list[dict] | None:
    """The collisions of one nbgitpuller merge, as ledger entries; ``None`` if git could not tell."""
    base = _git(top, "merge-base", ours, theirs)
    if not base:
        return None
    base = base.decode().strip()
    learner, instructor = _changed(top, base, ours), _changed(top, base, theirs)
    if learner is None or instructor is None:
        return None
    entries = []
    for path in sorted(set(learner) & set(instructor)):
        if instructor[path] == "D":
            if learner[path] != "D":
                entries.append({"file": path, "kind": "deleted"})
            continue
        if learner[path] == "D":
            continue
        mine, new = _blob(top, ours, path), _blob(top, theirs, path)
        if new is None or mine == new:
            continue
        old = _blob(top, base, path) if learner[path] != "A" else b""
        merged = _blob(top, merge, path)
        if merged == new:
            continue
        if (_conflicts(top, old or b"", mine or b"", new) == 0 and _valid_notebook(path, merged)):
            continue  # both changes kept: a clean merge, nothing lost
        entries.append({"file": path, "kind": "collision"})
    for e in entries:
        if e["kind"] == "collision":
            data = _blob(top, theirs, e["file"])
            target = top / e["file"]
            if data is None or not target.parent.is_dir():
                continue
            e["beside"] = write_new(target, UPDATE_TAG, data).relative_to(top).as_posix()
    return entries


def _ledger_path(top: Path) -> Path | None:
    git = top / ".git"
    return git / LEDGER_FILE if git.is_dir() else None


def _load_ledger(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    merges = data.get("merges") if isinstance(data, dict) else None
    return merges if isinstance(merges, dict) else {}


def _save_ledger(path: Path | None, merges: dict) -> None:
    if path is None:
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lowlight-ledger.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"merges": merges}, fh, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass


def git_updates(top: Path) -> list[str]:
    """Lines for the instructor changes nbgitpuller dropped in the git folder ``top`` (see module doc)."""
    top = Path(top)
    if shutil.which("git") is None:
        return []
    merges = _puller_merges(top)
    if not merges:
        return []
    ledger_path = _ledger_path(top)
    ledger = _load_ledger(ledger_path)
    changed = False
    for merge, ours, theirs in merges:
        if merge in ledger:
            continue
        entries = _examine(top, merge, ours, theirs)
        if entries is not None:
            ledger[merge] = entries
            changed = True
    if changed:
        _save_ledger(ledger_path, ledger)
    lines, seen = [], set()
    for merge, _, _ in merges:  # newest first: one line per file
        for e in ledger.get(merge) or []:
            if not isinstance(e, dict) or not isinstance(e.get("file"), str) or e["file"] in seen:
                continue
            seen.add(e["file"])
            beside = e.get("beside")
            if e.get("kind") == "collision" and isinstance(beside, str) and (top / beside).is_file():
                lines.append(f"{e['file']}: the course update changed this file and so did you; nbgitpuller kept "
                             f"your version and dropped the instructor's change. The new version is beside it: "
                             f"{beside} (compare, copy what you need, then delete {beside} to stop this message)")
            elif e.get("kind") == "deleted" and (top / e["file"]).is_file():
                lines.append(f"{e['file']}: the course update removed this file; nbgitpuller kept your edited "
                             f"version (delete it when you no longer need it)")
    return lines


# ---------------------------------------------------------------------------------------------
# The one call the notebooks make
# ---------------------------------------------------------------------------------------------
def report_updates(folder=".", *, echo=print) -> list[str]:
    """Tell the learner about course updates that did not reach the files they edited.

    ``folder``: the course folder or any folder in it (a notebook's own folder). Returns one line
    per file (and prints each with ``echo``; ``echo=None`` prints nothing): files where nbgitpuller
    dropped the instructor's change (its new version written beside: ``NAME.course-update.ipynb``)
    and files get-course kept because the learner edited them (``NAME.v<version>.ipynb``). Returns
    ``[]`` outside a course or git folder, and on any error: it never raises.
    """
    try:
        start = Path(folder).resolve()
        lines: list[str] = []
        rec_root = _find_up(start, RECORD_FILE)
        if rec_root is not None:
            lines += getcourse_updates(rec_root)
        git_root = _find_up(start, ".git")
        if git_root is not None:
            lines += [line for line in git_updates(git_root) if line not in lines]
        if echo is not None:
            for line in lines:
                echo(line)
        return lines
    except Exception:  # noqa: BLE001 - a setup cell must never fail because of this
        return []


def _main(argv=None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    lines = report_updates(args[0] if args else ".")
    if not lines:
        print("no course updates waiting beside your files")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
