"""What :func:`~lowlight_course.train.fit` recorded: the :class:`History` of a run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """What :func:`fit` recorded.

    Attributes:
        steps: step index of each entry of ``loss`` / ``terms`` / ``lr``.
        loss: total loss per recorded step.
        terms: ``name -> list`` of each term's (weighted) value per recorded step. A scalar loss is
            recorded as the single term ``"loss"``.
        grad_norm_steps: steps at which gradient norms were measured.
        grad_norms: ``name -> list`` of the L2 norm of each term's gradient with respect to the
            model parameters, at ``grad_norm_steps`` (0.0 for a term with no autograd path).
        grad_norm_total: norm of the total gradient at ``grad_norm_steps`` (before clipping).
        lr: the model's learning rate per recorded step.
        val_steps, val: validation metrics ``name -> list`` (when ``fit`` got ``val``).
        extra: free-form information: device, amp dtype, seconds, parameter names, ...
        loss_lr: the learning rate of the loss module's own parameters per recorded step (empty
            when the loss has none; see ``fit(loss_lr=...)``).
        interrupted: True when the run was stopped by ``KeyboardInterrupt`` (Jupyter's stop
            button): the history then ends at the step before the interrupt.
    """

    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    grad_norm_steps: list = field(default_factory=list)
    grad_norms: dict = field(default_factory=dict)
    grad_norm_total: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    loss_lr: list = field(default_factory=list)
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def term_names(self) -> list[str]:
        return list(self.terms)

    def final(self, name: str = "loss", last: int = 1) -> float:
        """Mean of the last ``last`` recorded values of ``name``.

        ``name`` is ``"loss"`` (the total), a term name, ``"grad:<term>"`` for a gradient norm, or
        ``"val:<metric>"`` for a validation metric.
        """
        series = self.series(name)
        if not series:
            raise ValueError(f"History has no values for {name!r} yet.")
        tail = series[-max(1, int(last)):]
        return float(sum(tail) / len(tail))

    def series(self, name: str) -> list:
        """The recorded list for ``name`` (see :meth:`final` for the naming)."""
        if name == "loss" and name not in self.terms:
            return self.loss
        if name in self.terms:
            return self.terms[name]
        if name.startswith("grad:") and name[5:] in self.grad_norms:
            return self.grad_norms[name[5:]]
        if name.startswith("val:") and name[4:] in self.val:
            return self.val[name[4:]]
        known = ["loss", *self.terms, *(f"grad:{k}" for k in self.grad_norms), *(f"val:{k}" for k in self.val)]
        raise KeyError(f"Unknown history entry {name!r}; known: {', '.join(dict.fromkeys(known))}.")

    def as_dict(self) -> dict:
        """A plain, JSON-serialisable dict of everything recorded."""
        return asdict(self)

    def __repr__(self) -> str:
        stop = ", interrupted" if self.interrupted else ""
        if not self.steps:
            return f"History(empty{stop})"
        parts = "; " + ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.terms.items()) if list(self.terms) != ["loss"] else ""
        return f"History({len(self.steps)} steps, last step {self.steps[-1]}: loss={self.loss[-1]:.4g}{parts}{stop})"
