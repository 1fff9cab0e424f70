"""The audit's result: :class:`AuditRow` (one probe) and :class:`AuditReport` (all of them).

A report renders as an HTML table in a notebook (``_repr_html_``), as Markdown (:meth:`AuditReport.to_markdown`)
and as JSON (:meth:`AuditReport.to_json`); :meth:`AuditReport.raise_for_failures` turns it into an
assertion for a test suite.

Example:
    >>> row = AuditRow("unrelated images", "scale and range", 0.99, "fail", threshold="> 0.5 fails",
    ...                source="Chapter 2", fix="use data_range=1", chapter="02")
    >>> report = AuditReport([row], loss_name="demo")
    >>> report.passed, [r.probe for r in report.failures]
    (False, ['unrelated images'])
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field

__all__ = ["AuditRow", "AuditReport", "AuditFailure", "VERDICTS", "ERROR_SOURCES"]

#: the verdicts a row can have; "skip" means the probe does not apply (reason in ``detail``).
VERDICTS = ("pass", "warn", "fail", "skip")

#: the error sources, in the order the report lists them (the course's four, plus the call contract).
ERROR_SOURCES = ("call contract", "scale and range", "gradient liveness", "precision", "perceptual mismatch",
                 "dark-region leniency", "spatial blindness", "weight imbalance", "plateaus",
                 "domain sensitivity")


class AuditFailure(AssertionError):
    """Raised by :meth:`AuditReport.raise_for_failures`; ``.report`` holds the report."""

    def __init__(self, message: str, report: "AuditReport"):
        super().__init__(message)
        self.report = report


@dataclass
class AuditRow:
    """One probe's result.

    Attributes:
        probe: what was measured, e.g. ``"gradient flattening at [0, 1]"``.
        source: the error source it belongs to (one of :data:`ERROR_SOURCES`).
        measured: the measured number (``None`` when the probe could not measure: see ``detail``).
        verdict: ``"pass"``, ``"warn"``, ``"fail"`` or ``"skip"``.
        threshold: the rule, e.g. ``"fail > 100, warn > 5"``.
        origin: where the threshold comes from (chapter and cell).
        fix: what to do when it does not pass.
        chapter: the chapter that teaches the fix, e.g. ``"02"``.
        detail: one or two sentences saying what was measured on what, or what went wrong.
        term: the loss term the row is about (``None``: the whole loss).
    """

    probe: str
    source: str
    measured: float | None
    verdict: str
    threshold: str = ""
    origin: str = ""
    fix: str = ""
    chapter: str = ""
    detail: str = ""
    term: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.source not in ERROR_SOURCES:
            raise ValueError(f"source must be one of {ERROR_SOURCES}, got {self.source!r}")
        if self.measured is not None:
            self.measured = float(self.measured)

    @property
    def label(self) -> str:
        """The probe's name with its term, e.g. ``"gradient at a realistic pair [hist]"``."""
        return f"{self.probe} [{self.term}]" if self.term else self.probe

    def measured_text(self) -> str:
        v = self.measured
        if v is None:
            return "n/a"
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == 0:
            return "0"
        return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.2e}"


@dataclass
class AuditReport:
    """All rows of one audit, with the loss's name and how long the audit took.

    Attributes:
        rows: the :class:`AuditRow` objects, in :data:`ERROR_SOURCES` order.
        loss_name: the audited loss, as the report names it.
        elapsed: seconds the audit took.
        quick: whether it was the quick audit.
        seed: the seed of the probe data.
        settings: image size, batch, limits (for the record).
    """

    rows: list = field(default_factory=list)
    loss_name: str = "loss"
    elapsed: float = 0.0
    quick: bool = False
    seed: int = 0
    settings: dict = field(default_factory=dict)

    # --- queries ----------------------------------------------------------------------------
    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, probe: str) -> AuditRow:
        """The first row whose :attr:`AuditRow.label` or ``probe`` is ``probe``."""
        for r in self.rows:
            if probe in (r.label, r.probe):
                return r
        raise KeyError(f"no probe {probe!r} in this report; probes: {sorted({r.label for r in self.rows})}")

    def verdict_of(self, probe: str) -> str:
        return self[probe].verdict

    def rows_for(self, source: str | None = None, verdict: str | None = None, term: str | None = ...) -> list:
        return [r for r in self.rows if (source is None or r.source == source)
                and (verdict is None or r.verdict == verdict) and (term is ... or r.term == term)]

    @property
    def failures(self) -> list:
        return [r for r in self.rows if r.verdict == "fail"]

    @property
    def warnings(self) -> list:
        return [r for r in self.rows if r.verdict == "warn"]

    @property
    def passed(self) -> bool:
        """True when no probe failed (warnings allowed)."""
        return not self.failures

    def counts(self) -> dict:
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    def summary(self) -> str:
        c = self.counts()
        kind = "quick audit" if self.quick else "audit"
        return (f"{kind} of {self.loss_name}: {c['fail']} fail, {c['warn']} warn, {c['pass']} pass, "
                f"{c['skip']} skip ({self.elapsed:.1f} s)")

    def raise_for_failures(self) -> None:
        """Raise :class:`AuditFailure` (an ``AssertionError``) naming every failed probe; else do nothing."""
        if self.failures:
            lines = [f"- {r.label} ({r.source}): {r.measured_text()} [{r.threshold}]. {r.detail} Fix: {r.fix}"
                     for r in self.failures]
            raise AuditFailure(f"{self.summary()}\n" + "\n".join(lines), self)

    # --- renderings ---------------------------------------------------------------------------
    _COLUMNS = ("verdict", "error source", "probe", "measured", "threshold (origin)", "fix (chapter)")

    def _cells(self, r: AuditRow) -> tuple:
        origin = f" ({r.origin})" if r.origin else ""
        chap = f" (Chapter {r.chapter})" if r.chapter else ""
        detail = f" {r.detail}" if r.detail else ""
        return (r.verdict.upper(), r.source, r.label + ":" + detail if detail else r.label, r.measured_text(),
                r.threshold + origin, (r.fix + chap) if r.verdict in ("fail", "warn") else "")

    def to_markdown(self) -> str:
        """A Markdown table, one row per probe, under a one-line summary."""
        def esc(s):
            return str(s).replace("|", "\\|").replace("\n", " ")
        out = [f"**{esc(self.summary())}**", "", "| " + " | ".join(self._COLUMNS) + " |",
               "|" + "---|" * len(self._COLUMNS)]
        out += ["| " + " | ".join(esc(c) for c in self._cells(r)) + " |" for r in self.rows]
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict:
        return {"loss": self.loss_name, "passed": self.passed, "counts": self.counts(), "elapsed_s": self.elapsed,
                "quick": self.quick, "seed": self.seed, "settings": self.settings,
                "rows": [asdict(r) for r in self.rows]}

    def to_json(self, **kwargs) -> str:
        """The report as JSON (NaN and Inf measured values become strings, so any JSON parser reads it)."""
        d = self.to_dict()
        for r in d["rows"]:
            v = r["measured"]
            if v is not None and (math.isnan(v) or math.isinf(v)):
                r["measured"] = str(v)
        kwargs.setdefault("indent", 2)
        return json.dumps(d, **kwargs)

    def _repr_html_(self) -> str:
        colours = {"FAIL": "#f8d7da", "WARN": "#fff3cd", "PASS": "#d4edda", "SKIP": "#e2e3e5"}
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self._COLUMNS)
        body = []
        for r in self.rows:
            cells = self._cells(r)
            style = f" style='background:{colours[cells[0]]}'"
            body.append("<tr>" + "".join(f"<td{style if i == 0 else ''}>{html.escape(str(c))}</td>"
                                         for i, c in enumerate(cells)) + "</tr>")
        return (f"<div><p><b>{html.escape(self.summary())}</b></p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def __repr__(self) -> str:
        return f"AuditReport({self.summary()})"

    def __str__(self) -> str:
        lines = [self.summary()]
        for r in self.rows:
            lines.append(f"  {r.verdict.upper():4s}  {r.source:20s}  {r.label}: {r.measured_text()}  [{r.threshold}]")
        return "\n".join(lines)
