"""The exceptions :func:`~lowlight_course.train.fit` raises from inside its loop."""
from __future__ import annotations

__all__ = ["TrainingDivergedError", "TrainingError", "DIVERGENCE_FIXES"]

DIVERGENCE_FIXES = (
    "Try: a lower learning rate (lr), checking the data range (images in [0, 1], not 0-255), "
    "guarding divisions, logs and square roots with an epsilon, or clipping gradients "
    "(clip_grad=1.0). The history up to this step is in the exception's .history.")


class TrainingDivergedError(RuntimeError):
    """A loss or gradient became NaN or Inf during :func:`fit`.

    Attributes:
        step: the step (0-based) at which it happened; the model holds the weights from before it.
        terms: names of the loss terms (or ``"gradient of <term>"``) that went non-finite.
        history: the :class:`History` recorded up to (not including) that step.
    """

    def __init__(self, message: str, *, step: int, terms: list[str], history):
        super().__init__(message)
        self.step, self.terms, self.history = step, terms, history


class TrainingError(RuntimeError):
    """Any other error inside :func:`fit`'s loop, when the original exception cannot carry the history.

    ``fit`` normally re-raises the original exception (same type, same traceback) with ``.history``
    and ``.step`` attached and a note naming the step. Only an exception object that refuses new
    attributes is wrapped in this class instead, raised ``from`` the original.

    Attributes:
        step: the step (0-based) during which the error happened.
        history: the :class:`History` recorded before it.
    """

    def __init__(self, message: str, *, step: int, history):
        super().__init__(message)
        self.step, self.history = step, history


class Divergence(Exception):
    """Internal signal from one step to the recovery: ``names`` went non-finite at ``step``."""

    def __init__(self, step: int, names: list[str], kind: str):
        super().__init__(step, names, kind)
        self.step, self.names, self.kind = step, list(names), kind
