"""Perceptual mismatch: Chapter 1's six distortions at one MSE (0.0025, PSNR 26 dB) on the first probe photo.

* **equal-MSE spread**: ``(max - min) / mean`` of the loss over the six (its value above identical images).
  MSE gives 0 by construction: it cannot tell a mean shift from noise. Rule: fail below 0.05, warn below 0.2.
* **agreement with SSIM**: Spearman rank correlation between the loss and 1 - SSIM over the six. Rule: warn
  below 0.5.
* **colour cast**: the loss of the colour cast over that of the mean shift. Chapter 1 measured the cast at more
  than twice the mean shift's colour error (Delta E) while SSIM rates it the best of the six. Rule: warn below 1.1.
"""
from __future__ import annotations

import math

from ...losses import ssim
from ..context import excess
from ..distortions import equal_mse_panel
from ..report import AuditRow
from ._common import broken_row, ratio, verdict_below

SOURCE = "perceptual mismatch"
ORIGIN = "Chapter 1, section 2 (Measure: six distortions, one MSE) (SSIM spread > 0.4; colour cast Delta E > 2x mean shift)"
FIX = "add a structural term (SSIM) and a colour term to a pixel loss, e.g. 0.16 L1 + 0.84 (1 - SSIM)"


def _ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra)); vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb) if va > 0 and vb > 0 else float("nan")


def run(ctx):
    d = ctx.data
    img, noise = d.target[:1], d.noise[:1]
    low = d.low[:1]
    panel = equal_mse_panel(img, noise)
    same = ctx.loss.evaluate(img, img, low, wrt=None)
    values, structural = {}, {}
    for name, x in panel.items():
        ev = ctx.loss.evaluate(x, img, low, wrt=None)
        if not ev.ok:
            ctx.add(broken_row("equal-MSE panel", SOURCE, ev, what=f"the {name} distortion", origin=ORIGIN, chapter="01"))
            return
        values[name] = excess(ev, same)
        structural[name] = 1 - float(ssim(x, img))
    vals = list(values.values())
    mean = sum(vals) / len(vals)
    spread = (max(vals) - min(vals)) / abs(mean) if mean != 0 else (0.0 if max(vals) == min(vals) else math.inf)
    listing = ", ".join(f"{k} {v:.3g}" for k, v in values.items())
    ctx.add(AuditRow("equal-MSE spread", SOURCE, spread, verdict_below(spread, 0.05, 0.2), "fail < 0.05, warn < 0.2",
                     ORIGIN, FIX, "01", f"six distortions with MSE 0.0025 score: {listing}"))
    if spread < 0.05:
        ctx.add(AuditRow("agreement with SSIM", SOURCE, None, "skip", "warn < 0.5", ORIGIN, FIX, "01",
                         "the loss scores all six alike: no order to compare"))
    else:
        rho = spearman(vals, list(structural.values()))
        ctx.add(AuditRow("agreement with SSIM", SOURCE, rho, verdict_below(rho, -math.inf, 0.5), "warn < 0.5",
                         ORIGIN, FIX, "01", f"Spearman rank correlation with 1 - SSIM over the six: {rho:.2f}"))
    cast = ratio(values["colour cast"], values["mean shift"])
    ctx.add(AuditRow("colour cast at equal MSE", SOURCE, cast, verdict_below(cast, -math.inf, 1.1), "warn < 1.1",
                     ORIGIN, "add a colour term (Delta E, channel means) to the loss", "01",
                     f"colour cast {values['colour cast']:.3g} against mean shift {values['mean shift']:.3g}"))
