"""Scale and range: constants sized for another data range (Chapter 2's SSIM with L = 255 on [0, 1] images).

Two measurements, per term:

* **unrelated images**: how far two unrelated random images (``a`` uniform, ``b`` an independent uniform
  squared) are from identical ones, as a fraction of the way to the farthest pair in range (black against
  white): ``D = (L(a, b) - L(b, b)) / (L(black, white) - L(white, white))``. Chapter 2 measured SSIM with
  L = 255 at 0.9964 on two uniform images (L = 1: 0.0121); here its 1 - SSIM gives D of about 0.06, MSE 0.2,
  L1 0.37, SSIM (L = 1) about 1.
  Rule: fail below 0.1, warn below 0.15.
* **[0, 255] input**: the same photo pair times 255. A loss that rejects it passes (the 0-255 mistake is
  caught). One that accepts it is measured: the gradient with respect to the *normalised* image,
  ``255 |grad L(255 p, 255 t)|``, against ``|grad L(p, t)|``, divided by ``255^k`` where ``k`` is the
  loss's degree of homogeneity measured at that scale (``L(255 x) / L(127.5 x) = 2^k``, rounded to the nearest
  integer, as the degree of every standard loss is), so MSE (k = 2), L1 (k = 1) and a scale-free SSIM (k = 0)
  all give 1. A loss whose constants were sized for [0, 255] gives how many
  times its gradient on [0, 1] images is flattened: for SSIM with L = 255 this is Chapter 2's
  gradient ratio (hundreds on photographs: 640 on the astronaut pair). Rule: fail above 100, warn above 5.
"""
from __future__ import annotations

import math

import torch

from ..context import excess
from ..adapt import grad_norm
from ..report import AuditRow
from ._common import broken_row, term_label, terms_of, verdict_above, verdict_below

SOURCE = "scale and range"
ORIGIN_D = "Chapter 2, section 4 (Defect 1: the data range) (L = 255: unrelated images 0.996, L = 1: 0.012)"
ORIGIN_G = "Chapter 2, section 4 (Defect 1: the data range) (assert ratio > 100); Chapter 7, section 3 (Five broken runs) (ratio > 5)"
FIX = ("size the constants for the images' range (data_range=1.0 for images in [0, 1]) and check how the term is "
       "normalised: it barely separates unrelated images from identical ones")


def run(ctx):
    d, loss = ctx.data, ctx.loss
    a, b = d.unrelated_a, d.unrelated_b
    black, white = torch.zeros_like(a), torch.ones_like(a)
    evs = {"unrelated": loss.evaluate(a, b, a, wrt=None), "same": loss.evaluate(b, b, a, wrt=None),
           "far": loss.evaluate(black, white, black, wrt=None), "far_same": loss.evaluate(white, white, black, wrt=None)}
    bad = next((k for k, e in evs.items() if not e.ok and e.kind != "nonfinite"), None)
    names = terms_of(ctx)
    if bad:
        ctx.add(broken_row("unrelated images", SOURCE, evs[bad], what="uniform-random and black/white images",
                           origin=ORIGIN_D, chapter="02"))
    else:
        for t in names:
            num, den = excess(evs["unrelated"], evs["same"], t), excess(evs["far"], evs["far_same"], t)
            if not (math.isfinite(num) and math.isfinite(den)):
                ctx.add(AuditRow("unrelated images", SOURCE, None, "fail", "fail < 0.1, warn < 0.15", ORIGIN_D, FIX, "02",
                                 "the loss is NaN or Inf on uniform-random or black/white images", term_label(ctx, t)))
                continue
            if den <= 0:
                ctx.add(AuditRow("unrelated images", SOURCE, None, "skip", "fail < 0.1, warn < 0.15", ORIGIN_D,
                                 "", "02",
                                 f"black against white scores no worse than identical images "
                                 f"({den:+.3g}): the fraction cannot be measured", term_label(ctx, t)))
                continue
            frac = num / den
            ctx.add(AuditRow("unrelated images", SOURCE, frac, verdict_below(frac, 0.1, 0.15),
                             "fail < 0.1, warn < 0.15", ORIGIN_D, FIX, "02",
                             f"two unrelated random images are {frac:.3f} of the way from identical "
                             f"({num:.3g}) to black against white ({den:.3g})", term_label(ctx, t)))
    _range(ctx, names)


def _range(ctx, names):
    d, loss, base = ctx.data, ctx.loss, ctx.baseline
    ev255 = loss.evaluate(d.pred * 255, d.target * 255, d.low * 255, wrt="pred")
    if ev255.kind in ("raised",):
        ctx.add(AuditRow("[0, 255] input", SOURCE, None, "pass", "rejects it, or gradient flattening: fail > 100, warn > 5",
                         ORIGIN_G, "", "02", f"the loss rejects images in [0, 255]: {ev255.problem}"))
        return
    if not ev255.ok and ev255.kind != "nonfinite":
        ctx.add(broken_row("[0, 255] input", SOURCE, ev255, what="the photo pair times 255", origin=ORIGIN_G, chapter="02"))
        return
    half = loss.evaluate(d.pred * 127.5, d.target * 127.5, d.low * 127.5, wrt=None)
    same255 = loss.evaluate(d.target * 255, d.target * 255, d.low * 255, wrt=None)
    same_half = loss.evaluate(d.target * 127.5, d.target * 127.5, d.low * 127.5, wrt=None)
    for t in names:
        g1, g255 = grad_norm(base.grads.get(t)), grad_norm(ev255.grads.get(t)) * 255
        v255, vhalf = excess(ev255, same255, t), excess(half, same_half, t)
        label = term_label(ctx, t)
        if not (math.isfinite(v255) and math.isfinite(vhalf)) or g1 == 0 or not math.isfinite(g255):
            why = ("it has no gradient on [0, 1] images (see gradient liveness)" if g1 == 0 else
                   "the loss is NaN or Inf on images in [0, 255]")
            ctx.add(AuditRow("[0, 255] input", SOURCE, None, "skip", "fail > 100, warn > 5", ORIGIN_G, "", "02",
                             f"accepts images in [0, 255] without complaint; flattening not measurable: {why}", label))
            continue
        k_raw = math.log2(v255 / vhalf) if v255 > 0 and vhalf > 0 else 0.0
        k = round(k_raw)
        flat = g255 / (g1 * 255 ** k)
        ctx.add(AuditRow("[0, 255] input", SOURCE, flat, verdict_above(flat, 100, 5), "fail > 100, warn > 5",
                         ORIGIN_G, FIX, "02",
                         f"accepts images in [0, 255] without complaint; degree k = {k} (measured {k_raw:.2f}); the gradient on "
                         f"[0, 1] images is {flat:.3g} times smaller than the loss's own scaling predicts", label))
