"""Weight imbalance: for a loss returning a mapping of weighted terms, each term's share of the value against
its share of the gradient, at the prediction and (with a model) at the model's parameters.

Shares: ``|value_i| / sum |value_j|`` and ``|grad_i| / sum |grad_j|``. Chapter 4 measured, under the article's
weights 0.3 / 0.3 / 0.4, gradient shares nothing like the weights (the largest weight is not the largest pull);
Chapter 7 flags a term whose gradient is below 1e-3 of the largest as dead. Rule: fail when a term holds at
least 1 % of the value but less than 1e-3 of the largest gradient (its weight buys nothing); warn when a value
share and its gradient share differ by more than 0.2.
"""
from __future__ import annotations

from ..adapt import grad_norm
from ..report import AuditRow

SOURCE = "weight imbalance"
ORIGIN = ("Chapter 4, section 2 (The weighted loss, built from scratch) (shares differ from the weights by > 0.2); "
          "Chapter 7, section 2 (A plateau detector) (dead: < 1e-3 of the largest)")
FIX = "balance by gradients, not values: normalise each term (WeightedLoss strategies) and check the shares again"


def _row(probe, ev, terms):
    vals = {k: abs(ev.terms[k]) for k in terms}
    norms = {k: grad_norm(ev.grads.get(k)) for k in terms}
    sv, sg = sum(vals.values()), sum(norms.values())
    vshare = {k: v / sv if sv else 0.0 for k, v in vals.items()}
    gshare = {k: g / sg if sg else 0.0 for k, g in norms.items()}
    top = max(norms.values())
    dead = [k for k in terms if vshare[k] >= 0.01 and norms[k] < 1e-3 * top]
    gap = max(abs(vshare[k] - gshare[k]) for k in terms)
    verdict = "fail" if dead else "warn" if gap > 0.2 else "pass"
    shares = ", ".join(f"{k} {vshare[k]:.0%} of the value / {gshare[k]:.0%} of the gradient" for k in terms)
    detail = shares + (f"; dead weight: {', '.join(dead)}" if dead else "")
    return AuditRow(probe, SOURCE, gap, verdict, "fail: a term with >= 1 % of the value and < 1e-3 of the largest "
                    "gradient; warn: shares differ by > 0.2", ORIGIN, FIX, "04", detail)


def run(ctx):
    base = ctx.baseline
    if not base.mapping or len(base.terms) < 2:
        ctx.add(AuditRow("value vs gradient shares", SOURCE, None, "skip", "", ORIGIN, "", "04",
                         "the loss returns one scalar: return a mapping {name: weighted term} to have each term's "
                         "share measured (a dead term inside a scalar is invisible)"))
        return
    terms = list(base.terms)
    ctx.add(_row("value vs gradient shares at the prediction", base, terms))
    if ctx.model is not None:
        d = ctx.data
        ev = ctx.loss.evaluate(d.pred, d.target, d.low, wrt="params", model=ctx.model)
        if not ev.ok:
            ctx.add(AuditRow("value vs gradient shares at the parameters", SOURCE, None, "fail", "", ORIGIN, FIX, "04",
                             f"with the model: {ev.problem}"))
        else:
            ctx.add(_row("value vs gradient shares at the parameters", ev, terms))
