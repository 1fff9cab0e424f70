"""Recording: what a run writes into its :class:`~.history.History`.

Values arrive here already read to the host (:mod:`.step` reads them once per step). Recording
keeps every ``log_every``-th step and the last, and every gradient-norm measurement.
"""
from __future__ import annotations

from .history import History
from .run import Run
from .step import StepResult

__all__ = ["describe_run", "record_step"]


def describe_run(hist: History, run: Run, *, seed: int, steps: int, lr: float, loss_lr, optimizer) -> None:
    """Fill ``hist.extra`` with the run's settings (device, amp dtype, sizes, learning rates)."""
    amp = str(run.amp_dtype).replace("torch.", "") if run.amp_dtype else None
    hist.extra.update(device=str(run.device), amp=amp, seed=seed, steps=steps,
                      batch_size=run.batch_size, lr=lr, optimizer=str(optimizer),
                      parameters=sum(p.numel() for p in run.model_params),
                      loss_parameters=sum(p.numel() for p in run.loss_params))
    if run.loss_params:
        hist.extra["loss_lr"] = lr if loss_lr is None else loss_lr


def record_step(hist: History, run: Run, step: int, result: StepResult, lrs: list, *, logged: bool) -> None:
    """Append step ``step``'s values (when ``logged``) and its gradient norms (when measured)."""
    if logged:
        hist.steps.append(step)
        hist.loss.append(result.values[0])
        for k, v in zip(result.names, result.values[1:]):
            hist.terms.setdefault(k, []).append(v)
        hist.lr.append(lrs[run.model_group])
        if run.loss_groups:
            hist.loss_lr.append(lrs[run.loss_groups[0]])
    if result.term_grad_norms is not None:
        hist.grad_norm_steps.append(step)
        hist.grad_norm_total.append(result.grad_norm)
        for k, v in result.term_grad_norms.items():
            hist.grad_norms.setdefault(k, []).append(v)
