"""Spatial blindness: the loss of a pixel-shuffled target (same histogram, no image) against the photo pair.

Measured: ``L(shuffle(target), target) / L(pred, target)`` (above identical images). Chapter 3 measured a
histogram loss of exactly 0 on a shuffled photo while MSE was 0.17. Rule for the whole loss: fail below 1 (a
scrambled image scores no worse than a decent enhancement), warn below 3. For one term of a mapping the rule is
at most a warning: a histogram term is meant to be paired with a spatial one.
"""
from __future__ import annotations

from ...pitfalls import shuffle_pixels
from ..context import excess
from ..report import AuditRow
from ._common import broken_row, ratio, term_label, terms_of, verdict_below

SOURCE = "spatial blindness"
ORIGIN = "Chapter 3, section 4 (A histogram is blind to where tones are) (histogram loss < 1e-5 on a shuffled photo, MSE > 0.02)"
FIX = "pair the term with a spatial one (L1, SSIM): alone it cannot tell an image from noise with its tones"


def run(ctx):
    d = ctx.data
    shuffled = shuffle_pixels(d.target, seed=d.seed)
    ev = ctx.loss.evaluate(shuffled, d.target, d.low, wrt=None)
    if not ev.ok:
        ctx.add(broken_row("shuffled target", SOURCE, ev, what="a pixel-shuffled target", origin=ORIGIN, chapter="03"))
        return
    for t in terms_of(ctx, with_total=True):
        a, b = excess(ev, ctx.identical, t), excess(ctx.baseline, ctx.identical, t)
        r = ratio(a, b)
        v = verdict_below(r, 1.0, 3.0)
        if t != "total" and ctx.baseline.mapping and v == "fail":
            v = "warn"
        ctx.add(AuditRow("shuffled target", SOURCE, r, v, "fail < 1, warn < 3 (a term alone: warn)", ORIGIN, FIX, "03",
                         f"shuffled {a:.3g} against the photo pair {b:.3g}", term_label(ctx, t) if t != "total" else None))
