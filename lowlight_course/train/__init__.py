"""One training loop for every notebook: :func:`fit`, its :class:`History`, and :func:`predict`.

``fit`` trains on the GPU when there is one (``device="auto"``), uses mixed precision there, shows a
``tqdm.auto`` progress bar, is seeded (two CPU runs with the same seed give identical histories),
records every loss term and, every few steps, each term's gradient norm with respect to the model
parameters, and stops with a :class:`TrainingDivergedError` that names the step and the term when a
loss or gradient becomes NaN or Inf. Whatever ends a run, the history so far is kept.

The loss contract (``docs/CONTRACTS.md``): ``loss_fn(pred, target, low)`` returns a scalar tensor,
or a mapping ``name -> weighted contribution`` whose values sum to the total loss.

Its parts, one job each: :mod:`.arguments` (checking the arguments), :mod:`.data` and :mod:`.run`
(building the run: data on the device, an optimiser with parameter groups), :mod:`.step` (one step:
forward, loss, finiteness, backward, clip, update), :mod:`.record` and :mod:`.evaluate`
(recording), :mod:`.recovery` (on any exception or interrupt), :mod:`.checkpoint` (saving every N
steps and resuming after a dead kernel), :mod:`.fit` (the loop).
"""
from .checkpoint import CheckpointError
from .devices import resolve_device
from .errors import TrainingDivergedError, TrainingError
from .fit import fit
from .history import History
from .predict import predict

__all__ = ["fit", "predict", "History", "TrainingDivergedError", "TrainingError", "CheckpointError", "resolve_device"]
