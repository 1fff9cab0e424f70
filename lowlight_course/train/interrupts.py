"""Stopping a notebook cell stops the cell, not only the ``fit`` that was running.

``fit`` absorbs ``KeyboardInterrupt`` (Jupyter's stop button) and returns the history so far, so
nothing learned is lost. But a cell that trains several models in a loop (a weight sweep, a run per
seed) would then go straight on to the next model, and the learner would have to press stop once per
model. So an absorbed interrupt is remembered together with the IPython execution count of the cell
it happened in, and a later ``fit`` in the *same* cell execution raises ``KeyboardInterrupt`` before
it touches anything, which ends the cell. The next cell the learner runs trains normally. Outside
IPython (scripts, tests) nothing is remembered and every ``fit`` runs.
"""
from __future__ import annotations

__all__ = ["remember_interrupt", "check_cell_not_stopped", "execution_count"]

_stopped_in: int | None = None


def execution_count() -> int | None:
    """The running IPython cell's execution count, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the course
        return None
    shell = get_ipython()
    return None if shell is None else getattr(shell, "execution_count", None)


def remember_interrupt() -> None:
    """Record that a ``fit`` absorbed an interrupt in the current cell."""
    global _stopped_in
    _stopped_in = execution_count()


def check_cell_not_stopped() -> None:
    """Raise ``KeyboardInterrupt`` when an earlier ``fit`` in this same cell was interrupted."""
    count = execution_count()
    if count is not None and count == _stopped_in:
        raise KeyboardInterrupt("this cell was stopped during an earlier fit, so the next fit does not "
                                "start; the stopped fit returned its history (history.interrupted is True).")
