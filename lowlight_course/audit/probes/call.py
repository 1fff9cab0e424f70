"""The call contract: the loss runs on the probe pair, returns a finite scalar tensor with a gradient, leaves its
inputs alone and finishes in time. Everything else depends on it: if it fails, the other probes do not run."""
from __future__ import annotations

from ..report import AuditRow

SOURCE = "call contract"


def run(ctx, no_grad_ev) -> bool:
    """Adds the contract row(s); returns whether the other probes can run."""
    ev, base = no_grad_ev, ctx.baseline
    for e in (ev, base):
        if not e.ok:
            ctx.add(AuditRow("call on a photo pair", SOURCE, None, "fail", threshold="returns a finite scalar tensor",
                             origin="docs/CONTRACTS.md (losses)",
                             fix=_fix(e.kind), chapter="01", detail=e.problem))
            return False
    ctx.add(AuditRow("call on a photo pair", SOURCE, base.total, "pass", threshold="finite scalar tensor, inputs unchanged",
                     origin="docs/CONTRACTS.md (losses)",
                     detail=f"value {base.total:.4g} (measured), {len(base.terms)} term(s), {base.elapsed * 1e3:.1f} ms per call; "
                            f"called as loss({'pred, target, low' if ctx.loss.arity == 3 else 'pred, target'})"))
    if not any(base.grads.get(k) is not None for k in base.terms):
        ctx.add(AuditRow("gradient of the total", SOURCE, 0.0, "fail", threshold="the total has an autograd path to pred",
                         origin="Chapter 3, section 1 (The article's histogram term has no gradient)",
                         fix="build the loss from differentiable torch operations (no torch.histc, .item(), "
                             "rounding or argmax on the path)", chapter="03",
                         detail="no term of the loss has a gradient with respect to pred: training cannot move."))
        return False
    return True


def _fix(kind: str) -> str:
    return {
        "not_tensor": "return the tensor itself, not .item() or float()",
        "not_scalar": "reduce the loss to one number, e.g. with .mean()",
        "inplace": "compute new tensors instead of writing into the inputs (no clamp_, add_, [...] = )",
        "timeout": "make the loss cheaper: vectorise Python loops over pixels",
        "nonfinite": "guard divisions, logs and square roots with an epsilon",
    }.get(kind, "fix the error the loss raised on a (pred, target) pair of photographs in [0, 1]")
