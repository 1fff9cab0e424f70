"""What every probe receives: :class:`Context` (the adapted loss, the probe images, the baseline call)."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .adapt import Evaluation, LossAdapter
from .probe_data import ProbeData
from .report import AuditRow

__all__ = ["Context", "excess"]


@dataclass
class Context:
    """Shared state of one audit.

    Attributes:
        loss: the :class:`LossAdapter`.
        data: the :class:`ProbeData`.
        quick: quick audit (fewer, smaller measurements).
        model: the model given to :func:`audit` (or ``None``).
        baseline: the loss at ``(data.pred, data.target, data.low)`` with gradients w.r.t. pred.
        identical: the loss at ``(data.target, data.target, data.low)`` (no gradients).
        rows: the rows the probes add.
    """

    loss: LossAdapter
    data: ProbeData
    quick: bool
    model: nn.Module | None
    baseline: Evaluation
    identical: Evaluation
    rows: list = field(default_factory=list)

    @property
    def terms(self) -> list:
        """The baseline's term names (``["total"]`` for a scalar loss)."""
        return list(self.baseline.terms)

    def add(self, *rows: AuditRow) -> None:
        self.rows.extend(rows)


def excess(ev: Evaluation, ref: Evaluation, term: str = "total") -> float:
    """``ev``'s value of ``term`` minus ``ref``'s (the loss at identical images): the part due to the error."""
    if term == "total" and ev.mapping:
        return ev.total - ref.total
    return ev.terms.get(term, float("nan")) - ref.terms.get(term, float("nan"))
