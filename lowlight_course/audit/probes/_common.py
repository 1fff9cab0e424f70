"""Helpers the probes share: rows for a loss that failed on a probe's input, per-term iteration, ratios."""
from __future__ import annotations

import math

from ..report import AuditRow

__all__ = ["broken_row", "term_label", "verdict_below", "verdict_above", "ratio", "terms_of"]


def term_label(ctx, term: str):
    """``None`` for a scalar loss's single term (the row is about the whole loss), else the term's name."""
    return term if ctx.baseline.mapping else None


def terms_of(ctx, with_total: bool = False) -> list:
    names = list(ctx.baseline.terms)
    if ctx.baseline.mapping and with_total:
        names.append("total")
    return names


def broken_row(probe, source, ev, *, what: str, threshold="", origin="", fix="", chapter="", term=None) -> AuditRow:
    """A failed row: the loss did not give a usable value on this probe's input (``ev.problem`` says why)."""
    return AuditRow(probe, source, None, "fail", threshold=threshold, origin=origin,
                    fix=fix or "make the loss accept every image in [0, 1] and return a finite scalar tensor",
                    chapter=chapter, detail=f"on {what}: {ev.problem}", term=term)


def verdict_below(value, fail, warn) -> str:
    """``"fail"`` when ``value < fail``, ``"warn"`` when ``< warn``, else ``"pass"`` (NaN fails)."""
    if value is None or math.isnan(value):
        return "fail"
    return "fail" if value < fail else "warn" if value < warn else "pass"


def verdict_above(value, fail, warn) -> str:
    if value is None or math.isnan(value):
        return "fail"
    return "fail" if value > fail else "warn" if value > warn else "pass"


def ratio(a: float, b: float) -> float:
    """``a / b`` with ``0 / 0 = 1`` (no response either way) and ``x / 0 = inf``."""
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b
