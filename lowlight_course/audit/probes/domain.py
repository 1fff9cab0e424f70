"""Domain sensitivity: the loss's response to a change of light colour against a change of exposure, at one MSE.

Both are applied in linear light to the first probe photo (the tungsten gains of Chapter 5's
``indoor_tungsten`` domain, raised to a strength; an exposure drop), each scaled to MSE 0.0025. Measured:
``L(illuminant) / L(exposure)``. Chapter 5 measured the light colour as the factor that costs most (the
tungsten gap is mostly the illuminant, and it leaves a visible cast); a loss that scores it far below an
exposure change of the same MSE lets a model keep the cast. Rule: fail below 0.5, warn below 0.9; fail when the
light-colour change does not raise the loss at all (the measured number is then that change).
"""
from __future__ import annotations

from ..context import excess
from ..distortions import illuminant_and_exposure
from ..report import AuditRow
from ._common import broken_row, ratio, term_label, terms_of, verdict_below

SOURCE = "domain sensitivity"
ORIGIN = "Chapter 5, section 4 (Attribution: change one factor at a time) (the illuminant explains > 60 % of the tungsten gap and leaves the cast)"
FIX = "add a colour term, and train with illuminant augmentation (data.DOMAINS['randomized'])"


def run(ctx):
    d = ctx.data
    img, low = d.target[:1], d.low[:1]
    ch = illuminant_and_exposure(img)
    evs = {k: ctx.loss.evaluate(x, img, low, wrt=None) for k, x in ch.items()}
    same = ctx.loss.evaluate(img, img, low, wrt=None)
    bad = next((e for e in list(evs.values()) + [same] if not e.ok), None)
    if bad is not None:
        ctx.add(broken_row("light colour vs exposure", SOURCE, bad, what="a re-lit copy of the photo", origin=ORIGIN,
                           chapter="05"))
        return
    for t in terms_of(ctx):
        a, b = excess(evs["illuminant"], same, t), excess(evs["exposure"], same, t)
        if a <= 0:  # the re-lit photo scores no worse than the photo itself: no ratio to speak of
            ctx.add(AuditRow("light colour vs exposure", SOURCE, a, "fail", "fail < 0.5, warn < 0.9", ORIGIN, FIX, "05",
                             f"a tungsten light colour at MSE 0.0025 costs {a:.3g} (the exposure drop {b:.3g}): the "
                             f"loss does not penalise the change of light at all", term_label(ctx, t)))
            continue
        r = ratio(a, b) if b > 0 else float("inf")
        ctx.add(AuditRow("light colour vs exposure", SOURCE, r, verdict_below(r, 0.5, 0.9), "fail < 0.5, warn < 0.9",
                         ORIGIN, FIX, "05", f"tungsten light colour {a:.3g} against an exposure drop {b:.3g} at equal MSE",
                         term_label(ctx, t)))
