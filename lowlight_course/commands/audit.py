"""``lowlight-course audit package.module:name [--model package.module:name] [--json F] [--html F] [--quick]``.

Imports the loss (and the model) from the current folder as Python does (the folder goes first on
``sys.path``), audits it with :func:`lowlight_course.audit.audit`, prints the report as text and writes JSON and
HTML if asked. Exit status: 0 no probe failed, 1 at least one failed, 2 usage error (bad reference, unknown
module or name, not callable, not a loss), each with a one-line message.
"""
from __future__ import annotations

import importlib
import os
import sys

from ._common import usage_error

__all__ = ["register", "resolve", "main_audit"]


class _Usage(Exception):
    pass


def resolve(ref: str, what: str = "loss"):
    """The object named by ``package.module:name`` (``name`` may be dotted: ``module:Class.attr``)."""
    if ref.count(":") != 1 or not all(ref.split(":")):
        raise _Usage(f"{what} must be given as package.module:name (e.g. mylosses:my_loss), got {ref!r}")
    mod_name, attr = ref.split(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
            raise _Usage(f"no module named {mod_name!r} (looked in {cwd} and on sys.path)") from None
        raise _Usage(f"importing {mod_name!r} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise _Usage(f"importing {mod_name!r} failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise _Usage(f"module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def main_audit(args) -> int:
    from torch import nn

    from ..audit import AuditUsageError, audit

    try:
        loss = resolve(args.loss, "the loss")
        if isinstance(loss, type) and issubclass(loss, nn.Module):
            loss = loss()
        if not callable(loss):
            raise _Usage(f"{args.loss} is an object of type {type(loss).__name__}, not a loss: name a function or an nn.Module")
        model = None
        if args.model:
            model = resolve(args.model, "the model")
            if not isinstance(model, nn.Module) and callable(model):
                model = model()
            if not isinstance(model, nn.Module):
                raise _Usage(f"{args.model} is not an nn.Module (nor a class or function that builds one)")
        report = audit(loss, model=model, quick=args.quick, name=args.loss)
    except _Usage as exc:
        return usage_error(str(exc))
    except (AuditUsageError, ValueError) as exc:
        return usage_error(" ".join(str(exc).split()))
    except Exception as exc:  # noqa: BLE001 - e.g. a class whose constructor raised
        return usage_error(f"could not set up the audit: {type(exc).__name__}: {' '.join(str(exc).split())}")
    print(report)
    for path, text in ((args.json, report.to_json() if args.json else None),
                       (args.html, report._repr_html_() if args.html else None)):
        if path:
            try:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                return usage_error(f"cannot write {path}: {exc.strerror}")
            print(f"wrote {path}")
    return 0 if report.passed else 1


def register(sub, common) -> None:
    p = sub.add_parser("audit", parents=[common], help="audit a loss on the course's error sources",
                       description="Audit a loss (package.module:name, imported from the current folder) on the "
                                   "course's error sources. Exit 0: no probe failed; 1: a probe failed; 2: usage error.")
    p.add_argument("loss", help="the loss, as package.module:name (a function, an nn.Module or its class)")
    p.add_argument("--model", help="optional model, as package.module:name (an nn.Module, or a class / function building one)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--html", metavar="FILE", help="also write the report as an HTML table")
    p.add_argument("--quick", action="store_true", help="the quick audit (smaller images, fewer cases)")
    p.set_defaults(func=main_audit)
