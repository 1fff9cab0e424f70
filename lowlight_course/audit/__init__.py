"""The loss auditor: point it at any loss and get the course's error sources measured.

``from lowlight_course import audit; report = audit(loss_fn, model=None, quick=False, seed=0)``: this module is
itself callable (it is :func:`~lowlight_course.audit.run.audit`). Modules, one job each:

- :mod:`.report`       :class:`AuditRow`, :class:`AuditReport` (HTML, Markdown, JSON, ``raise_for_failures``)
- :mod:`.adapt`        :class:`LossAdapter`: calls any loss through :func:`lowlight_course.guarded.run_guarded`
- :mod:`.probe_data`   the probe images (photographs under the course's low-light simulation, seeded)
- :mod:`.distortions`  Chapter 1's equal-MSE panel, Chapter 5's light-colour and exposure changes
- :mod:`.probes`       one module per error source (scale, liveness, precision, perceptual, dark, spatial,
  balance, plateaus, domain) plus the call contract
- :mod:`.examples`     the article's three losses and the course's fixes, in the form the auditor takes
- :mod:`.run`          :func:`audit`

Each row names its measured number, its rule, the chapter cell the threshold comes from, a verdict
(pass / warn / fail / skip) and the fix with its chapter. A loss that raises, returns NaN, a Python float or
a non-scalar, writes into its inputs or runs past its time limit gets a failed row, never a crash or a hang.
"""
import sys as _sys
import types as _types

from .adapt import AuditUsageError, LossAdapter
from .report import AuditFailure, AuditReport, AuditRow, ERROR_SOURCES, VERDICTS
from .run import audit

__all__ = ["audit", "AuditReport", "AuditRow", "AuditFailure", "AuditUsageError", "LossAdapter", "ERROR_SOURCES",
           "VERDICTS"]


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
