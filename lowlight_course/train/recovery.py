"""Recovery: whatever ends a run, the history so far is kept and everything is put back.

:class:`Recovery` wraps the run. On leaving it (normally, by ``KeyboardInterrupt`` or by any
exception) the progress bar closes, the model returns to the device and the train/eval mode it
came with, and a loss module to its own device. Then:

* ``KeyboardInterrupt`` (Jupyter's stop button) is absorbed: one line says where the run stopped,
  ``history.interrupted`` is True and ``fit`` returns the history (or, with
  ``absorb_interrupt=False``, it propagates with ``.history`` attached); in a notebook, a later
  ``fit`` in the same cell then refuses to start (:mod:`.interrupts`), so the stop button ends a
  cell that trains several models;
* a NaN or Inf (:class:`~.errors.Divergence` from the step) becomes a
  :class:`~.errors.TrainingDivergedError` naming the step and the term, with ``.history``;
* any other exception from the loop propagates unchanged (type and traceback) with ``.history`` and
  ``.step`` attached and a note naming the step; only an exception that refuses attributes is
  wrapped in :class:`~.errors.TrainingError` (raised ``from`` it).
"""
from __future__ import annotations

import time

from torch import nn

from .devices import home_device
from .errors import DIVERGENCE_FIXES, Divergence, TrainingDivergedError, TrainingError
from .history import History
from .interrupts import remember_interrupt

__all__ = ["Recovery"]


class Recovery:
    """Context manager around one run; set ``.step`` to the step in progress, ``.bar`` once made."""

    def __init__(self, model: nn.Module, loss_fn, hist: History, steps: int, *, absorb_interrupt: bool = True):
        self.model, self.loss_fn, self.hist, self.steps = model, loss_fn, hist, steps
        self.absorb_interrupt = absorb_interrupt
        self.model_home, self.model_mode = home_device(model), model.training
        self.loss_home = home_device(loss_fn) if isinstance(loss_fn, nn.Module) else None
        self.step: int | None = None
        self.bar = None
        self.t0: float | None = None

    def __enter__(self) -> "Recovery":
        return self

    def _restore(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.t0 is not None:
            self.hist.extra["seconds"] = time.perf_counter() - self.t0
        if self.model_home is not None:
            self.model.to(self.model_home)
        self.model.train(self.model_mode)
        if self.loss_home is not None:
            self.loss_fn.to(self.loss_home)

    def __exit__(self, etype, exc, tb) -> bool:
        try:
            self._restore()
        except Exception as err:  # never hide the error that ended the run
            if exc is None:
                raise
            exc.add_note(f"(fit could not put the model back: {type(err).__name__}: {err})")
        if exc is None or self.step is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            self.hist.interrupted = True
            self.hist.extra["interrupted_at_step"] = self.step
            if not self.absorb_interrupt:
                self._attach(exc)
                return False
            print(f"fit: interrupted at step {self.step} of {self.steps}; returning the history of the "
                  f"steps before it ({len(self.hist)} recorded, history.interrupted is True).", flush=True)
            remember_interrupt()
            return True
        if isinstance(exc, Divergence):
            raise self._diverged(exc) from None
        if isinstance(exc, Exception) and not isinstance(exc, TrainingDivergedError):
            self._attach(exc)
        return False

    def _diverged(self, d: Divergence) -> TrainingDivergedError:
        what = ", ".join(d.names)
        what = f"{d.kind} {what}" if d.kind else what
        hist = self.hist
        msg = (f"Training diverged at step {d.step}: {what} became NaN or Inf"
               f" (last finite total loss: {hist.loss[-1]:.4g})." if hist.loss else
               f"Training diverged at step {d.step}: {what} became NaN or Inf.")
        return TrainingDivergedError(f"{msg} {DIVERGENCE_FIXES}", step=d.step, terms=list(d.names), history=hist)

    def _attach(self, exc: BaseException) -> None:
        where = f"at step {self.step} of {self.steps}"
        try:
            exc.history = self.hist
            if not hasattr(exc, "step"):
                exc.step = self.step
        except (AttributeError, TypeError):
            raise TrainingError(f"fit stopped {where}: {type(exc).__name__}: {exc}. The history so far "
                                f"({len(self.hist)} steps) is in this exception's .history.",
                                step=self.step, history=self.hist) from exc
        exc.add_note(f"fit stopped {where}; the {len(self.hist)} steps recorded before are in this "
                     f"exception's .history, and the model is back where it came from.")
        if self.step == 0 and isinstance(exc, TypeError) and "positional argument" in str(exc):
            exc.add_note("fit calls loss_fn(pred, target, low); a loss that takes (pred, target) "
                         "can be wrapped as lambda pred, target, low: loss(pred, target).")
