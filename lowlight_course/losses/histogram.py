"""A differentiable (soft) intensity histogram and a histogram ("tone") loss.

Why soft. ``torch.histc`` counts each pixel into one bin: the count is a step function of the pixel
value, its derivative is zero almost everywhere, and PyTorch does not even define a backward for it.
A loss built on it is a constant to the optimiser. A *soft* histogram spreads each pixel over the
bins with a smooth kernel, so moving a pixel moves mass between neighbouring bins, smoothly.

The kernel (kernel density estimation, integrated over each bin). Pixel value ``v`` contributes to
bin ``j`` (edges ``e_j`` and ``e_{j+1}``) the probability mass that a Gaussian centred on ``v``
with standard deviation ``bandwidth`` puts inside the bin::

    w_j(v) = Phi((e_{j+1} - v) / bandwidth) - Phi((e_j - v) / bandwidth)

with ``Phi`` the standard normal CDF (via ``erf``). The two outer bins are open-ended (``e_0 = -inf``,
``e_bins = +inf``), so no mass falls off the ends and each pixel contributes 1 in total. As the
bandwidth shrinks, ``w_j`` tends to the indicator of the bin that holds ``v``: the hard histogram.
See Parzen (1962), "On estimation of a probability density function and mode", and, for soft
histograms as losses, Avi-Aharon, Arbelle & Raviv (2020), "DeepHist: differentiable joint and color
histogram layers for image-to-image translation" (arXiv:2005.03995).

Default bandwidth: half a bin width. Narrower and a pixel's gradient is large only very close to a
bin edge (the loss is nearly flat, like the hard histogram); wider and the histogram blurs across
bins. Half a bin keeps the histogram within a few percent of the hard one on photographs while
every pixel still has a usable gradient.

Memory and time. A naive soft histogram evaluates the kernel of every pixel at every bin: a
``pixels x bins`` tensor (8 x 3 x 256 x 256 pixels at 256 bins: 1.6 GB per float32 temporary).
Here only the bins within 4 bandwidths of each pixel are visited (5 bins at the default bandwidth,
whatever ``bins`` is): a loop over those few offsets, each step a pixel-sized tensor accumulated
with ``index_add_`` into a flat ``(B * C * bins)`` buffer. Memory is linear in the pixel count and
independent of ``bins``. Time is proportional to pixels times the visited bins, ``2 ceil(4
bandwidth / bin width) + 1``, and never more than ``bins``: a window as wide as the range is
visited by absolute bin index instead (each bin once per pixel, summed over pixels without a
scatter). So time is independent of ``bins`` only when the bandwidth is a fixed fraction of a
bin; a wide kernel over many bins (``bins=4096, bandwidth=1.0``: every bin for every pixel) costs
``pixels x bins``. Wide windows are processed in blocks of about 4 M elements, which bounds the
memory and the per-step overhead. The Gaussian mass beyond 4 bandwidths (< 6.4e-5 per pixel) is
dropped and the histogram renormalised. The backward is written by hand
(:class:`_SoftHistogramCounts`); by telescoping the bin differences it only needs the Gaussian
density at the visited internal edges. Under ``create_graph=True`` (a gradient penalty,
``gradgradcheck``) the same backward is built from differentiable operations, so second
derivatives are exact.

Values outside ``value_range`` are clamped into it first: they land in the outer bins and get no
gradient from this term (keeping the range is the job of a pixel loss).
"""
from __future__ import annotations

import contextlib
import math
from numbers import Real

import torch
from torch import nn

from .._validation import ImageInputError, check_image, check_pair, check_reduction

__all__ = ["soft_histogram", "hard_histogram", "HistogramLoss", "REC709_LUMA"]

#: Rec. ITU-R BT.709 luma weights (R, G, B), applied to the (gamma-encoded) sRGB values.
from ..data.color import REC709_LUMA  # noqa: E402  (one definition, re-exported)

_MODES = ("channels", "luminance")
_DISTANCES = ("l1", "emd")
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TRUNCATE = 4.0  # bandwidths


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------
def _check_bins(bins):
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ImageInputError(f"bins must be a positive integer, got {bins!r}: use 16 (a coarse tone "
                              f"histogram) or 256 (one bin per 8-bit level).")


def _check_value_range(value_range):
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ImageInputError(f"value_range must be a pair (low, high), got {value_range!r}: "
                              f"use (0.0, 1.0) for images in [0, 1].") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ImageInputError(f"value_range must be finite with low < high, got {value_range!r}: "
                              f"use (0.0, 1.0) for images in [0, 1].")
    return lo, hi


def _check_bandwidth(bandwidth, width):
    if bandwidth is None:
        return 0.5 * width
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, Real) or not math.isfinite(bandwidth) \
            or bandwidth <= 0:
        raise ImageInputError(f"bandwidth must be a finite number > 0 (in pixel-value units), got "
                              f"{bandwidth!r}: leave it as None for half a bin width "
                              f"({0.5 * width:.4g}).")
    return float(bandwidth)


def _data_range_for(lo, hi):
    # check_image flags values far outside [0, data_range]; only meaningful for ranges from 0.
    return hi if lo == 0.0 else None


def _prepare(x, mode, lo, hi):
    """(B, C, H, W) -> clamped values (B, C', H*W), C' = C or 1 for luminance."""
    if mode not in _MODES:
        raise ImageInputError(f"mode must be one of {_MODES}, got {mode!r}.")
    if mode == "luminance":
        if x.shape[1] != 3:
            fix = (f"drop the alpha channel with x[:, :3]" if x.shape[1] == 4
                   else "use mode='channels' (one histogram per channel)")
            raise ImageInputError(f"mode='luminance' needs RGB images (3 channels), got {x.shape[1]} "
                                  f"channel(s) (shape {tuple(x.shape)}): {fix}.")
        w = torch.tensor(REC709_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True)
    return x.clamp(lo, hi).flatten(2)


# ---------------------------------------------------------------------------------------------
# Core: soft counts with a hand-written backward
# ---------------------------------------------------------------------------------------------
def _edge_cdf(z, edge, bins):
    """Phi(z), with the outer edges open: 0 at or below edge 0, 1 at or above edge ``bins``."""
    c = torch.special.erf(z * _SQRT_HALF).add_(1.0).mul_(0.5)
    c.masked_fill_(edge <= 0, 0.0)
    c.masked_fill_(edge >= bins, 1.0)
    return c


#: Offsets visited per pass when the kernel window is wide: a block's temporaries hold about this
#: many elements (rows x pixels x offsets), 16 MB in float32.
_BLOCK_ELEMENTS = 1 << 22
#: Windows of at most this many edges are visited one offset at a time (the course's settings:
#: the same operations in the same order as before blocking, so the same values to the bit).
_LOOP_EDGES = 64


def _block(rows, n, edges):
    """Number of offsets per block: 1 for narrow windows, else as many as fit _BLOCK_ELEMENTS."""
    if edges <= _LOOP_EDGES:
        return 1
    return max(1, min(edges, _BLOCK_ELEMENTS // max(1, rows * n)))


def _absolute(bins, radius):
    """Whether the window spans at least the whole range: then bins are visited by absolute index
    (``bins`` per value) rather than by offset from the value's own bin (``2 radius + 1``)."""
    return 2 * radius + 1 >= bins


class _SoftHistogramCounts(torch.autograd.Function):
    """Soft counts (R, bins) of values ``t`` (R, N) given in bin units (0 .. bins).

    The window holds the bins ``j0 - radius .. j0 + radius`` around each value's own bin ``j0``
    (``radius <= bins``: a wider window adds only bins outside the range, with weight 0). Work is
    ``R * N * (2 radius + 1)`` kernel evaluations.
    """

    @staticmethod
    def forward(ctx, t, bins, s, radius):
        rows, n = t.shape
        j0 = t.detach().floor().clamp_(0, bins - 1)
        d = j0 - t                                   # in (-1, 0]: lower edge of own bin, minus t
        base = (torch.arange(rows, device=t.device) * bins).view(rows, 1)
        j0l = j0.long()
        counts = t.new_zeros(rows * bins)
        k = _block(rows, n, 2 * radius + 2)
        if k == 1:
            # CDFs at edges j0 + o, o = -radius .. radius + 1; bin j0 + o gets c[o + 1] - c[o].
            prev = _edge_cdf((d - radius) / s, j0l - radius, bins)
            for o in range(-radius, radius + 1):
                cur = _edge_cdf((d + (o + 1)) / s, j0l + (o + 1), bins)
                idx = (j0l + o).clamp_(0, bins - 1).add_(base)   # out-of-range bins get weight 0
                counts.index_add_(0, idx.reshape(-1), (cur - prev).reshape(-1))
                prev = cur
        elif _absolute(bins, radius):
            cv = counts.view(rows, bins)
            t3, j3 = t.unsqueeze(-1), j0l.unsqueeze(-1)
            for a in range(0, bins, k):
                b = min(a + k, bins)
                e = torch.arange(a, b + 1, device=t.device)          # edges of bins a .. b-1
                c = _edge_cdf((e.to(t.dtype) - t3) / s, e, bins)
                w = (c[..., 1:] - c[..., :-1]) * ((e[:-1] - j3).abs() <= radius)
                cv[:, a:b] += w.sum(dim=1)
        else:
            d3, j3, base3 = d.unsqueeze(-1), j0l.unsqueeze(-1), base.unsqueeze(-1)
            for start in range(-radius, radius + 1, k):
                stop = min(start + k, radius + 1)              # bins start .. stop - 1
                o = torch.arange(start, stop + 1, device=t.device)  # their edges
                c = _edge_cdf((d3 + o.to(t.dtype)) / s, j3 + o, bins)
                idx = (j3 + o[:-1]).clamp_(0, bins - 1).add_(base3)
                counts.index_add_(0, idx.reshape(-1), (c[..., 1:] - c[..., :-1]).reshape(-1))
        ctx.save_for_backward(t, j0l, base)
        ctx.bins, ctx.s, ctx.radius = bins, s, radius
        return counts.view(rows, bins)

    @staticmethod
    def backward(ctx, grad_counts):
        t, j0l, base = ctx.saved_tensors
        bins, s, radius = ctx.bins, ctx.s, ctx.radius
        if not ctx.needs_input_grad[0] or bins == 1:
            return (torch.zeros_like(t) if ctx.needs_input_grad[0] else None), None, None, None
        # d(counts_j)/dt = (phi(z_j) - phi(z_{j+1})) / s with z_e = (e - t) / s, phi = 0 at open
        # edges. Summing g_j times that over the visited bins telescopes to a sum over the visited
        # edges e of phi(z_e) / s * (g_e - g_{e-1}); at the two ends of the window only one of the
        # two bins was visited: g_e at the lowest edge, -g_{e-1} at the highest.
        g = grad_counts.contiguous()
        g_flat = g.reshape(-1)
        gdiff = (g[:, 1:] - g[:, :-1]).reshape(-1)   # at internal edge e (1 .. bins-1): index e-1
        base_e = base // bins * (bins - 1)
        differentiable = torch.is_grad_enabled()     # create_graph=True: build the graph of this
        d = j0l.to(t.dtype) - t                      # the forward's d, as a function of t
        rows, n = t.shape
        k = _block(rows, n, 2 * radius + 2)
        if k == 1 and not differentiable:
            grad_t = torch.zeros_like(d)
            for o in range(-radius, radius + 2):
                edge = j0l + o
                inside = (edge > 0) & (edge < bins)
                z = (d + o) / s
                dens = torch.exp(-0.5 * z * z).mul_(_INV_SQRT_2PI / s).mul_(inside)
                if o == -radius:      # lowest visited edge: lower edge of bin e only
                    coef = g_flat[edge.clamp(0, bins - 1).add_(base)]
                elif o == radius + 1:  # highest visited edge: upper edge of bin e - 1 only
                    coef = g_flat[(edge - 1).clamp_(0, bins - 1).add_(base)].neg_()
                else:
                    coef = gdiff[(edge - 1).clamp_(0, bins - 2).add_(base_e)]
                grad_t.addcmul_(dens, coef)
            return grad_t, None, None, None
        if differentiable:
            k = max(1, min(2 * radius + 2, _BLOCK_ELEMENTS // max(1, rows * n)))
        if k > 1 and _absolute(bins, radius):
            # Window as wide as the range: bin by bin, d(counts_j)/dt = mask_j (phi_j - phi_{j+1}) / s.
            t3, j3 = t.unsqueeze(-1), j0l.unsqueeze(-1)
            grad_t = None
            for a in range(0, bins, k):
                b = min(a + k, bins)
                e = torch.arange(a, b + 1, device=t.device)
                z = (e.to(t.dtype) - t3) / s
                dens = torch.exp(-0.5 * z * z) * (_INV_SQRT_2PI / s) * ((e > 0) & (e < bins))
                gm = g[:, a:b].unsqueeze(1) * ((e[:-1] - j3).abs() <= radius)
                part = (gm * (dens[..., :-1] - dens[..., 1:])).sum(-1)
                grad_t = part if grad_t is None else grad_t + part
            return grad_t, None, None, None
        # Blocked (wide windows) and differentiable (double backward) form: no in-place updates
        # of tensors that carry a graph.
        d3, j3, base3, base_e3 = d.unsqueeze(-1), j0l.unsqueeze(-1), base.unsqueeze(-1), base_e.unsqueeze(-1)
        grad_t = None
        for start in range(-radius, radius + 2, k):
            o = torch.arange(start, min(start + k, radius + 2), device=t.device)
            edge = j3 + o
            inside = (edge > 0) & (edge < bins)
            z = (d3 + o.to(t.dtype)) / s
            dens = torch.exp(-0.5 * z * z) * (_INV_SQRT_2PI / s) * inside
            coef = gdiff[(edge - 1).clamp(0, bins - 2) + base_e3]
            first, last = o == -radius, o == radius + 1
            if bool(first.any()):
                low = g_flat[edge.clamp(0, bins - 1) + base3]
                coef = torch.where(first, low, coef)
            if bool(last.any()):
                high = -g_flat[(edge - 1).clamp(0, bins - 1) + base3]
                coef = torch.where(last, high, coef)
            part = (dens * coef).sum(-1)
            grad_t = part if grad_t is None else grad_t + part
        return grad_t, None, None, None


def soft_histogram(x: torch.Tensor, bins: int = 16, *, value_range=(0.0, 1.0), bandwidth=None,
                   mode: str = "channels") -> torch.Tensor:
    """Differentiable, normalised intensity histogram of each image (and channel).

    Args:
        x: images (B, C, H, W), floating point.
        bins: number of equal-width bins spanning ``value_range``.
        value_range: (low, high) of the bins. Values outside are clamped into it (they count in
            the outer bins and get no gradient from the histogram).
        bandwidth: standard deviation of the Gaussian kernel, in pixel-value units. ``None`` (the
            default) means half a bin width, ``(high - low) / (2 * bins)``. Smaller tends to the hard
            histogram (``torch.histc``); larger smooths across bins.
        mode: ``"channels"``: one histogram per channel; ``"luminance"``: one histogram of the
            Rec. 709 luma ``0.2126 R + 0.7152 G + 0.0722 B`` (needs C = 3).

    Returns:
        Tensor (B, C, bins) (C = 1 for luminance); each histogram sums to 1.

    Cost: only the bins within 4 bandwidths of a pixel's value are visited (at most all of them), so
    time is proportional to ``pixels x min(2 * ceil(4 * bandwidth / bin width) + 1, bins)``:
    independent of ``bins`` at the default bandwidth (5 bins per pixel), but a wide bandwidth with
    many bins is slow (``bins=4096, bandwidth=1.0`` visits all 4096 bins for every pixel: about
    2 s forward and 2 s backward for one 3 x 64 x 64 image on one busy core). Wide
    windows are processed in blocks of offsets, so memory stays linear in the pixel count
    (at most about 16 MB of temporaries per block). Twice differentiable (``create_graph=True``).

    Example:
        >>> import torch
        >>> h = soft_histogram(torch.rand(2, 3, 32, 32), bins=16)
        >>> h.shape, [round(v, 4) for v in h.sum(-1).flatten().tolist()]
        (torch.Size([2, 3, 16]), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    """
    _check_bins(bins)
    lo, hi = _check_value_range(value_range)
    width = (hi - lo) / bins
    bw = _check_bandwidth(bandwidth, width)
    check_image(x, "x", data_range=_data_range_for(lo, hi), range_arg="value_range")
    if mode not in _MODES:
        raise ImageInputError(f"mode must be one of {_MODES}, got {mode!r}.")
    # Always float32 (float64 for float64 input), autocast off: bin masses are differences of
    # CDF values, which half precision would round to a few levels (and the luma mix with them).
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with _no_autocast(x.device):
        x = x.to(dtype)
        b = x.shape[0]
        v = _prepare(x, mode, lo, hi)                    # (B, C', N)
        c = v.shape[1]
        t = ((v - lo) / width).reshape(b * c, -1).contiguous()   # bin units, one row per histogram
        s = bw / width
        # Bins further than `bins` from a value's own bin lie outside the range for every value, so
        # the window never needs more: the work is bounded by pixels x (2 bins + 1) whatever the bandwidth.
        radius = min(max(1, math.ceil(_TRUNCATE * s)), bins)
        counts = _SoftHistogramCounts.apply(t, bins, s, radius).view(b, c, bins)
        return counts / counts.sum(dim=-1, keepdim=True)


def _no_autocast(device: torch.device):
    """Autocast off on ``device`` (a no-op context for a device type autocast does not know)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


def hard_histogram(x: torch.Tensor, bins: int = 16, *, value_range=(0.0, 1.0),
                   mode: str = "channels") -> torch.Tensor:
    """The hard (``torch.histc``) normalised histogram, (B, C, bins): no gradient, for reference.

    Same binning as :func:`soft_histogram` (equal bins over ``value_range``, values clamped into
    it, the top edge counted in the last bin); it is the limit of the soft histogram as the
    bandwidth tends to 0.
    """
    _check_bins(bins)
    lo, hi = _check_value_range(value_range)
    check_image(x, "x", data_range=_data_range_for(lo, hi), range_arg="value_range")
    v = _prepare(x.detach(), mode, lo, hi)
    out = torch.stack([torch.histc(row, bins=bins, min=lo, max=hi) for row in v.reshape(-1, v.shape[-1])])
    out = out.view(v.shape[0], v.shape[1], bins)
    return out / out.sum(dim=-1, keepdim=True)


class HistogramLoss(nn.Module):
    """Distance between the soft histograms of ``pred`` and ``target`` (a "tone" loss).

    ``distance="l1"`` (default): ``sum_j |h_pred[j] - h_target[j]|``, in [0, 2] (twice the total
    variation distance). It only compares bins one by one: a histogram shifted by a few bins costs
    the same as one shifted across the whole range, and once two histograms no longer overlap the
    gradient gives no direction.

    ``distance="emd"``: the Earth Mover's (Wasserstein-1) distance between the two 1-D
    distributions, ``mean_j |H_pred[j] - H_target[j]|`` with ``H`` the cumulative histograms, in
    units of the value range (in [0, 1]). For a uniform brightness shift by ``delta`` it is about
    ``delta / (high - low)``: it grows with *how far* tones moved, which is what a tone loss should
    measure. See Rubner, Tomasi & Guibas (2000), "The Earth Mover's Distance as a metric for image
    retrieval", IJCV 40(2), and, for the cumulative-sum form in 1-D, Levina & Bickel (2001).

    Either way, a histogram is blind to *where* tones are: a spatially shuffled image has the same
    histogram, so this loss only makes sense next to a pixel or structure term.

    Args:
        bins, value_range, bandwidth, mode: as in :func:`soft_histogram`.
        distance: ``"l1"`` or ``"emd"``.
        reduction: ``"mean"`` -> scalar; ``"none"`` -> (B,) (mean over channels).

    Shapes: ``pred``, ``target``: (B, C, H, W) -> scalar or (B,).

    Example:
        >>> import torch
        >>> loss_fn = HistogramLoss(bins=16, distance="emd")
        >>> pred = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> loss = loss_fn(pred, (pred.detach() * 0.5))
        >>> loss.backward()
        >>> 0.2 < float(loss.detach()) < 0.3
        True
    """

    def __init__(self, bins: int = 16, *, value_range=(0.0, 1.0), bandwidth=None,
                 mode: str = "channels", distance: str = "l1", reduction: str = "mean"):
        super().__init__()
        _check_bins(bins)
        lo, hi = _check_value_range(value_range)
        _check_bandwidth(bandwidth, (hi - lo) / bins)
        if mode not in _MODES:
            raise ImageInputError(f"mode must be one of {_MODES}, got {mode!r}.")
        if distance not in _DISTANCES:
            raise ImageInputError(f"distance must be one of {_DISTANCES}, got {distance!r}.")
        check_reduction(reduction)
        self.bins, self.value_range, self.bandwidth = bins, (lo, hi), bandwidth
        self.mode, self.distance, self.reduction = mode, distance, reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        check_pair(pred, target, data_range=_data_range_for(lo, hi), range_arg="value_range")
        kw = dict(bins=self.bins, value_range=self.value_range, bandwidth=self.bandwidth, mode=self.mode)
        hp = soft_histogram(pred, **kw)
        ht = soft_histogram(target, **kw)
        if self.distance == "l1":
            per = (hp - ht).abs().sum(dim=-1)                                   # (B, C)
        else:
            per = (hp.cumsum(dim=-1) - ht.cumsum(dim=-1)).abs().mean(dim=-1)    # (B, C)
        per = per.mean(dim=1)
        return per.mean() if self.reduction == "mean" else per

    def extra_repr(self) -> str:
        return (f"bins={self.bins}, value_range={self.value_range}, bandwidth={self.bandwidth}, "
                f"mode={self.mode!r}, distance={self.distance!r}")
