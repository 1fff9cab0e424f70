"""The probes, one module per error source. Each has ``run(ctx)`` adding :class:`AuditRow`\\ s to ``ctx``.

Every number comes from a call of the loss through :class:`~lowlight_course.audit.adapt.LossAdapter`
(time-limited, input-safe); every threshold cites the chapter cell it comes from.
"""
from . import balance, call, dark, domain, liveness, perceptual, plateaus, precision, scale, spatial

#: in report order; the call-contract probe runs first and decides whether the others can run.
PROBES = {
    "scale and range": scale,
    "gradient liveness": liveness,
    "precision": precision,
    "perceptual mismatch": perceptual,
    "dark-region leniency": dark,
    "spatial blindness": spatial,
    "weight imbalance": balance,
    "plateaus": plateaus,
    "domain sensitivity": domain,
}

__all__ = ["PROBES", "call"]
