"""Dark-region leniency: the same noisy pair, dark and brightened (Chapter 2's measurement).

``dark_target = 0.08 target``, ``dark_pred = clamp(dark_target + 0.005 n, 0, 0.1)``; the pair is then brightened
by ``sqrt(10)`` and by 10 (both images, so the noise relative to the signal is unchanged). A loss that is
homogeneous in brightness (MSE: degree 2, L1: degree 1, a scale-free index: degree 0) scales the same way at
every brightness, so ``R = L(dark) L(bright) / L(mid)^2 = 1`` exactly. SSIM's fixed constants dominate the
dark pair's variances: its loss falls faster between mid and dark than between bright and mid (it is lenient
on the dark pair), so ``R < 1``. Chapter 2 measured the dark pair above 0.85 SSIM, the brightened one below 0.65.
Rule: fail below 0.2, warn below 0.5.
"""
from __future__ import annotations

import math

from ..context import excess
from ..report import AuditRow
from ._common import broken_row, term_label, terms_of, verdict_below

SOURCE = "dark-region leniency"
ORIGIN = "Chapter 2, section 6 (SSIM is lenient on dark images) (dark pair SSIM > 0.85, brightened < 0.65)"
FIX = "add a pixel term (L1), or weight dark pixels up (hdr.dark_weighted_l1, Chapter 6)"


def run(ctx):
    d = ctx.data
    dt = 0.08 * d.target
    dp = (dt + 0.005 * d.noise).clamp(0, 0.1)
    gains = {"dark": 1.0, "mid": math.sqrt(10.0), "bright": 10.0}
    evs = {}
    for k, g in gains.items():
        evs[k] = ctx.loss.evaluate(dp * g, dt * g, d.low, wrt=None)
        evs[k + "0"] = ctx.loss.evaluate(dt * g, dt * g, d.low, wrt=None)
    bad = next((e for e in evs.values() if not e.ok), None)
    if bad is not None:
        ctx.add(broken_row("same noisy pair, dark vs brightened", SOURCE, bad, what="a dark noisy pair",
                           origin=ORIGIN, chapter="02"))
        return
    for t in terms_of(ctx):
        v = {k: excess(evs[k], evs[k + "0"], t) for k in gains}
        label = term_label(ctx, t)
        if min(v.values()) <= 0:
            ctx.add(AuditRow("same noisy pair, dark vs brightened", SOURCE, None, "warn", "fail < 0.2, warn < 0.5",
                             ORIGIN, FIX, "02", f"the loss does not grow with the noise at every brightness "
                             f"(dark {v['dark']:.3g}, mid {v['mid']:.3g}, bright {v['bright']:.3g})", label))
            continue
        r = v["dark"] * v["bright"] / v["mid"] ** 2
        ctx.add(AuditRow("same noisy pair, dark vs brightened", SOURCE, r, verdict_below(r, 0.2, 0.5),
                         "fail < 0.2, warn < 0.5", ORIGIN, FIX, "02",
                         f"loss above identical images: dark {v['dark']:.3g}, x3.16 {v['mid']:.3g}, x10 {v['bright']:.3g}",
                         label))
