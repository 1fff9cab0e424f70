"""Structural similarity (SSIM) as a metric and as a loss, with a fast analytic backward.

The definition is the reference one of Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality
assessment: from error visibility to structural similarity", IEEE Trans. Image Processing 13(4),
600-612, with the defaults of that paper and of scikit-image and pytorch-msssim:

* local statistics are weighted by an 11 x 11 Gaussian window with sigma 1.5 (separable);
* filtering is 'valid' only: no padding, so an H x W image gives an (H - 10) x (W - 10) SSIM map;
* variances and covariance are population (biased) moments: ``E[x^2] - E[x]^2``;
* the stabilising constants are ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2`` with ``k1 = 0.01``,
  ``k2 = 0.03`` and ``L = data_range`` (1 for images in [0, 1]);
* the map is computed per channel and averaged over channels and pixels.

With ``m1 = G*x``, ``m2 = G*y``, ``m11 = G*x^2``, ``m22 = G*y^2``, ``m12 = G*(xy)`` (``G*`` is
Gaussian filtering)::

    A1 = 2 m1 m2 + C1            A2 = 2 (m12 - m1 m2) + C2
    B1 = m1^2 + m2^2 + C1        B2 = (m11 - m1^2) + (m22 - m2^2) + C2
    SSIM map = A1 A2 / (B1 B2)   (equation 13 of the paper)

Speed. The five filtered quantities are stacked into one tensor and filtered in one separable pass.
Two formulations of that pass give the same values (to float32 rounding, about 1e-7):

* ``filter="shift"``: shifted multiply-adds, 11 along W then 11 along H (on the CPU about 4x faster
  than a depthwise ``conv2d`` with a 1 x 11 kernel);
* ``filter="conv"``: two single-channel ``conv2d`` passes (1 x k, then k x 1) over the stack viewed
  as a batch of planes, with ``conv_transpose2d`` as the adjoint: one cuDNN kernel per pass on a
  GPU instead of 11 elementwise kernels, each reading the whole stack.

``filter="auto"`` (the default) takes ``$LOWLIGHT_SSIM_FILTER`` when it is set, else ``"shift"`` on the
CPU and ``"conv"`` on CUDA and MPS (:func:`default_filter`); ``benchmarks/bench_losses.py`` times both.
The backward pass is written by hand (:class:`_SSIMFunction`). Differentiating the map ``S``::

    dS/dm1  = 2 m2 (A2 - A1) / (B1 B2) - 2 m1 S (1/B1 - 1/B2)
    dS/dm2  = 2 m1 (A2 - A1) / (B1 B2) - 2 m2 S (1/B1 - 1/B2)
    dS/dm11 = dS/dm22 = -S / B2
    dS/dm12 = 2 A1 / (B1 B2)

and, with ``g`` the incoming gradient of each map element and ``G^T`` the adjoint of valid
filtering (a 'full' filtering with the flipped, here symmetric, window)::

    dL/dx = G^T(g dS/dm1) + 2 x G^T(g dS/dm11) + y G^T(g dS/dm12)
    dL/dy = G^T(g dS/dm2) + 2 y G^T(g dS/dm22) + x G^T(g dS/dm12)

so the backward is one more stacked filtering pass of three (or four) maps. The plain-autograd
version (``_impl="autograd"``, grouped ``conv2d``) is kept as an independent reference for tests.

Higher-order gradients. The hand-written backward is not itself differentiable. When PyTorch asks
for a differentiable gradient (``torch.autograd.grad(..., create_graph=True)``, as in a gradient
penalty, or ``gradgradcheck``) grad mode is on inside the backward; the backward then recomputes
the gradient through the plain-autograd formulation from the saved inputs, so double backward is
exact (at the plain-autograd path's speed). An ordinary ``backward()`` keeps the fast path.

SSIM is always computed in float32 (float64 when an input is float64), also under autocast: the
products ``x * x`` and the differences ``m11 - m1^2`` lose too many digits in float16 (peers that
filter in half precision report SSIM(0, 0) = 1.32 under autocast, and values above 1 where the
variance ``m11 - m1^2`` rounds negative). The returned value is capped at 1: float32 rounding of
the ratio leaves at most a few 1e-6 above 1 on nearly identical images, and the cap (on the value
only; the gradient is the formula's) keeps ``1 - SSIM`` a loss that is never negative.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (DataRangeWarning, ImageInputError, check_pair, check_reduction, check_window_fits,
                           warn_if_below_range)

__all__ = ["gaussian_window", "ssim", "SSIMLoss", "DataRangeWarning", "default_filter", "FILTERS",
           "FILTER_ENV"]

_REDUCTIONS = ("mean", "none", "map")
#: Formulations of the separable filtering pass (see the module docstring).
FILTERS = ("shift", "conv")
#: Environment variable that overrides ``filter="auto"`` on every device.
FILTER_ENV = "LOWLIGHT_SSIM_FILTER"


# ---------------------------------------------------------------------------------------------
# Window and filtering
# ---------------------------------------------------------------------------------------------
def gaussian_window(window_size: int = 11, sigma: float = 1.5, *, dtype: torch.dtype = torch.float32,
                    device=None) -> torch.Tensor:
    """A normalised 1-D Gaussian window, the separable factor of SSIM's 2-D window.

    Args:
        window_size: number of taps, a positive odd integer (11 in Wang et al. 2004).
        sigma: standard deviation in pixels, > 0 (1.5 in Wang et al. 2004).
        dtype, device: of the returned tensor.

    Returns:
        Tensor of shape ``(window_size,)``, symmetric, summing to 1. The 2-D window is the outer
        product ``w[:, None] * w[None, :]``.

    Example:
        >>> w = gaussian_window(11, 1.5)
        >>> w.shape, round(float(w.sum()), 6)
        (torch.Size([11]), 1.0)
    """
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1 \
            or window_size % 2 == 0:
        raise ImageInputError(
            f"window_size must be a positive odd integer, got {window_size!r}: use 11 (the standard "
            f"SSIM window) or another odd number, so the window has a centre pixel."
        )
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not math.isfinite(sigma) or sigma <= 0:
        raise ImageInputError(
            f"sigma must be a finite number > 0, got {sigma!r}: use 1.5 (the standard SSIM window)."
        )
    # Build in float64 (exact enough for any dtype), then cast. torch.arange gives a tensor, so
    # torch.exp receives a tensor, not a Python float.
    offsets = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    w = torch.exp(-(offsets ** 2) / (2.0 * float(sigma) ** 2))
    w = w / w.sum()
    return w.to(dtype=dtype, device=device)


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' correlation of the last two dims with the 1-D window ``taps``.

    Implemented as shifted multiply-adds: ``out[i] = sum_k taps[k] * x[i + k]``, first along W,
    then along H. (H, W) -> (H - k + 1, W - k + 1).
    """
    k = len(taps)
    w_out = x.shape[-1] - k + 1
    tmp = x[..., 0:w_out] * taps[0]
    for i in range(1, k):
        tmp.add_(x[..., i:i + w_out], alpha=taps[i])
    h_out = x.shape[-2] - k + 1
    out = tmp[..., 0:h_out, :] * taps[0]
    for i in range(1, k):
        out.add_(tmp[..., i:i + h_out, :], alpha=taps[i])
    return out


def _filter_adjoint(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Adjoint of :func:`_filter_valid`: (h, w) -> (h + k - 1, w + k - 1), a 'full' filtering.

    ``in[i + k] += taps[k] * out[i]``: exactly the transpose of the valid correlation, so that
    ``<_filter_valid(a), b> == <a, _filter_adjoint(b)>``.
    """
    k = len(taps)
    h, w = x.shape[-2], x.shape[-1]
    # Along H: the last tap's write initialises rows k-1.., the first k-1 rows start at zero.
    tmp = x.new_empty(x.shape[:-2] + (h + k - 1, w))
    tmp[..., :k - 1, :].zero_()
    torch.mul(x, taps[k - 1], out=tmp[..., k - 1:, :])
    for i in range(k - 1):
        tmp[..., i:i + h, :].add_(x, alpha=taps[i])
    # Along W, the same.
    out = x.new_empty(x.shape[:-2] + (h + k - 1, w + k - 1))
    out[..., :k - 1].zero_()
    torch.mul(tmp, taps[k - 1], out=out[..., k - 1:])
    for i in range(k - 1):
        out[..., i:i + w].add_(tmp, alpha=taps[i])
    return out


@functools.lru_cache(maxsize=32)
def _conv_weights(taps: tuple, dtype: torch.dtype, device: torch.device):
    """The 1 x k and k x 1 single-channel kernels of ``taps`` (cached: no host copy per call)."""
    with torch.inference_mode(False):   # a normal tensor, even when first built in inference mode
        w = torch.tensor(taps, dtype=dtype, device=device)
    k = w.numel()
    return w.view(1, 1, 1, k), w.view(1, 1, k, 1)


def _filter_valid_conv(x: torch.Tensor, taps) -> torch.Tensor:
    """:func:`_filter_valid` as two ``conv2d`` passes over the planes of ``x``: (..., H, W) -> (..., h, w)."""
    w_row, w_col = _conv_weights(tuple(taps), x.dtype, x.device)
    planes = x.reshape((-1, 1) + x.shape[-2:])
    out = F.conv2d(F.conv2d(planes, w_row), w_col)
    return out.view(x.shape[:-2] + out.shape[-2:])


def _filter_adjoint_conv(x: torch.Tensor, taps) -> torch.Tensor:
    """:func:`_filter_adjoint` as two ``conv_transpose2d`` passes: (..., h, w) -> (..., h + k - 1, w + k - 1)."""
    w_row, w_col = _conv_weights(tuple(taps), x.dtype, x.device)
    planes = x.reshape((-1, 1) + x.shape[-2:])
    out = F.conv_transpose2d(F.conv_transpose2d(planes, w_col), w_row)
    return out.view(x.shape[:-2] + out.shape[-2:])


_VALID = {"shift": _filter_valid, "conv": _filter_valid_conv}
_ADJOINT = {"shift": _filter_adjoint, "conv": _filter_adjoint_conv}


def default_filter(device) -> str:
    """The formulation ``filter="auto"`` uses on ``device``: ``$LOWLIGHT_SSIM_FILTER`` when set, else
    ``"shift"`` on the CPU and ``"conv"`` elsewhere (CUDA, MPS)."""
    env = os.environ.get(FILTER_ENV, "").strip().lower()
    if env:
        if env not in FILTERS:
            raise ValueError(f"${FILTER_ENV}={env!r} is not an SSIM filter formulation: use one of "
                             f"{', '.join(FILTERS)}, or unset it.")
        return env
    return "shift" if torch.device(device).type == "cpu" else "conv"


def _check_filter(filter: str, device) -> str:
    if not isinstance(filter, str) or filter.strip().lower() not in FILTERS + ("auto",):
        raise ValueError(f"filter must be 'auto', {', '.join(repr(f) for f in FILTERS)}, got {filter!r}: "
                         f"use 'auto' (the faster one for the device).")
    key = filter.strip().lower()
    return default_filter(device) if key == "auto" else key


# ---------------------------------------------------------------------------------------------
# Custom autograd function
# ---------------------------------------------------------------------------------------------
def _reduce(smap: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return smap.mean()
    if reduction == "none":
        return smap.mean(dim=(1, 2, 3))
    return smap


class _SSIMFunction(torch.autograd.Function):
    """SSIM with an analytic backward (see the module docstring for the derivation)."""

    @staticmethod
    def forward(ctx, x, y, taps, c1, c2, reduction, filt="shift"):
        c = x.shape[1]
        stacked = x.new_empty((x.shape[0], 5 * c) + x.shape[2:])
        stacked[:, :c] = x
        stacked[:, c:2 * c] = y
        torch.mul(x, x, out=stacked[:, 2 * c:3 * c])
        torch.mul(y, y, out=stacked[:, 3 * c:4 * c])
        torch.mul(x, y, out=stacked[:, 4 * c:])
        filtered = _VALID[filt](stacked, taps)
        m1, m2, m11, m22, m12 = filtered.split(c, dim=1)
        m1m2 = m1 * m2
        m1sq = m1 * m1
        m2sq = m2 * m2
        a1 = (2 * m1m2).add_(c1)                                 # 2 m1 m2 + C1
        a2 = (m12 - m1m2).mul_(2).add_(c2)                       # 2 (m12 - m1 m2) + C2
        b1 = (m1sq + m2sq).add_(c1)                              # m1^2 + m2^2 + C1
        b2 = (m11 + m22).sub_(m1sq).sub_(m2sq).add_(c2)          # sigma1^2 + sigma2^2 + C2
        inv_b = (b1 * b2).reciprocal_()
        smap = (a1 * a2).mul_(inv_b)
        ctx.taps, ctx.filt = taps, filt
        ctx.c1, ctx.c2 = c1, c2
        ctx.reduction = reduction
        ctx.save_for_backward(x, y, m1, m2, a1, a2, b1, b2, inv_b, smap)
        return _reduce(smap, reduction)

    @staticmethod
    def backward(ctx, grad_out):
        x, y, m1, m2, a1, a2, b1, b2, inv_b, smap = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_y):
            return None, None, None, None, None, None, None
        if torch.is_grad_enabled():
            # create_graph=True: the gradient itself must be differentiable (gradient penalties,
            # double backward). Recompute it with plain autograd from the saved inputs.
            return _differentiable_backward(ctx, x, y, grad_out, need_x, need_y)
        # Incoming gradient of each map element.
        if ctx.reduction == "mean":
            g = grad_out / smap.numel()
        elif ctx.reduction == "none":
            n = smap[0].numel()
            g = (grad_out / n).view(-1, 1, 1, 1)
        else:
            g = grad_out
        s_term = smap * (1.0 / b1 - 1.0 / b2)       # S (1/B1 - 1/B2)
        diff = (a2 - a1) * inv_b                     # (A2 - A1) / (B1 B2)
        d11 = -smap / b2 * g                         # g dS/dm11 (= g dS/dm22)
        d12 = 2 * a1 * inv_b * g                     # g dS/dm12
        maps = []
        if need_x:
            maps.append(2 * (m2 * diff - m1 * s_term) * g)   # g dS/dm1
        if need_y:
            maps.append(2 * (m1 * diff - m2 * s_term) * g)   # g dS/dm2
        maps += [d11, d12]
        back = _ADJOINT[ctx.filt](torch.cat(maps, dim=1), ctx.taps)
        parts = back.split(x.shape[1], dim=1)
        g11, g12 = parts[-2], parts[-1]
        grad_x = grad_y = None
        if need_x:
            grad_x = torch.addcmul(parts[0], x, g11, value=2).addcmul_(y, g12)
        if need_y:
            gm2 = parts[1] if need_x else parts[0]
            grad_y = torch.addcmul(gm2, y, g11, value=2).addcmul_(x, g12)
        return grad_x, grad_y, None, None, None, None, None


def _differentiable_backward(ctx, x, y, grad_out, need_x, need_y):
    """The gradient of :class:`_SSIMFunction` as a differentiable function of x, y and grad_out."""
    with torch.enable_grad():
        # needs_input_grad[i] implies the input requires grad; the other one enters as a constant.
        xs = x if need_x else x.detach()
        ys = y if need_y else y.detach()
        out = _ssim_autograd_taps(xs, ys, ctx.taps, ctx.c1, ctx.c2, ctx.reduction)
        wrt = [t for t, need in ((xs, need_x), (ys, need_y)) if need]
        grads = torch.autograd.grad(out, wrt, grad_out, create_graph=True)
    it = iter(grads)
    gx = next(it) if need_x else None
    gy = next(it) if need_y else None
    return gx, gy, None, None, None, None, None


def _ssim_autograd_taps(x, y, taps, c1, c2, reduction):
    """Plain-autograd SSIM with the separable window given by its 1-D ``taps``."""
    c = x.shape[1]
    w1 = torch.tensor(taps, dtype=x.dtype, device=x.device)
    k = w1.numel()
    w2 = (w1[:, None] * w1[None, :]).expand(c, 1, k, k)

    def blur(t):
        return F.conv2d(t, w2, groups=c)

    m1, m2 = blur(x), blur(y)
    s11 = blur(x * x) - m1 * m1
    s22 = blur(y * y) - m2 * m2
    s12 = blur(x * y) - m1 * m2
    smap = ((2 * m1 * m2 + c1) * (2 * s12 + c2)) / ((m1 * m1 + m2 * m2 + c1) * (s11 + s22 + c2))
    return _reduce(smap, reduction)


def _ssim_autograd(x, y, window_size, sigma, c1, c2, reduction):
    """Plain-autograd reference: grouped conv2d with the 2-D Gaussian window, no padding."""
    taps = gaussian_window(window_size, sigma, dtype=torch.float64).tolist()
    return _ssim_autograd_taps(x, y, taps, c1, c2, reduction)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def _no_autocast(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):  # a device type autocast does not know
        return contextlib.nullcontext()


def _check_number(name, value, fix, *, positive=True):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or (value <= 0 if positive else value < 0):
        raise ImageInputError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                              f"got {value!r}: {fix}.")


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, reduction: str = "mean",
         _impl: str = "fast", *, filter: str = "auto") -> torch.Tensor:
    """Structural similarity index (Wang et al. 2004), differentiable.

    Args:
        pred: images of shape (B, C, H, W), floating point, values in [0, data_range].
        target: images of the same shape and device.
        data_range: L, the span of pixel values: 1.0 for images in [0, 1], 255 for 8-bit values.
            Getting it wrong is silent in most implementations: C1 and C2 grow with L^2 and, for
            [0, 1] images with L = 255, swamp every statistic (SSIM near 1 for anything).
        window_size: side of the Gaussian window, odd (11).
        sigma: standard deviation of the Gaussian window in pixels (1.5).
        k1, k2: constants of C1 = (k1 L)^2 and C2 = (k2 L)^2 (0.01, 0.03).
        reduction: ``"mean"`` -> scalar (mean over batch, channels and pixels); ``"none"`` -> (B,)
            one SSIM per image; ``"map"`` -> the (B, C, H - window_size + 1, W - window_size + 1)
            SSIM map ('valid' filtering: border pixels without a full window have no value).
        _impl: ``"fast"`` (custom backward, default) or ``"autograd"`` (plain autograd reference).
        filter: formulation of the fast path's filtering: ``"auto"`` (``"shift"`` on the CPU,
            ``"conv"`` on a GPU; ``$LOWLIGHT_SSIM_FILTER`` overrides), ``"shift"`` or ``"conv"``.
            Same values either way (see the module docstring).

    Returns:
        SSIM in float32 (float64 if an input is float64), also for half-precision inputs and under
        autocast; 1 for identical images and never above 1.

    Raises:
        ImageInputError / TypeError: mismatched shapes or devices, wrong rank, non-floating dtype,
            NaN or Inf, values far outside [0, data_range], a window larger than the image.

    Warns:
        DataRangeWarning: ``data_range > 1`` while every value is at most ``data_range / 100``:
            [0, 1] images scored with L = 255 (unrelated images then score about 0.996). Whole-
            number values (a very dark 8-bit photo) are not flagged.

    Gradients: first order through a fast analytic backward; higher order (``create_graph=True``,
    gradient penalties) through plain autograd, exact.

    References:
        Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
        visibility to structural similarity", IEEE TIP 13(4):600-612, 2004 (equations 6-13).

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(ssim(x, x))
        1.0
        >>> ssim(x, x.flip(-1), reduction="none").shape
        torch.Size([2])
    """
    _check_number("data_range", data_range,
                  "use 1.0 for images in [0, 1] or 255 for 8-bit values")
    check_pair(pred, target, data_range=data_range, range_arg="data_range")
    check_reduction(reduction, _REDUCTIONS)
    if _impl not in ("fast", "autograd"):
        raise ValueError(f"_impl must be 'fast' or 'autograd', got {_impl!r}.")
    filt = _check_filter(filter, pred.device)
    taps_t = gaussian_window(window_size, sigma, dtype=torch.float64)  # validates both
    check_window_fits(window_size, pred.shape[-2], pred.shape[-1])
    _check_number("k1", k1, "use the standard 0.01", positive=False)
    _check_number("k2", k2, "use the standard 0.03", positive=False)
    warn_if_below_range((pred, target), float(data_range), what="ssim")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    if c1 == 0 and c2 == 0:
        raise ImageInputError("k1 and k2 are both 0: SSIM then divides by zero on flat regions; "
                              "use k1=0.01, k2=0.03.")

    dtype = torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32
    with _no_autocast(pred.device):
        x = pred.to(dtype)
        y = target.to(dtype)
        if _impl == "autograd":
            out = _ssim_autograd(x, y, window_size, float(sigma), c1, c2, reduction)
        else:
            out = _SSIMFunction.apply(x, y, taps_t.tolist(), c1, c2, reduction, filt)
        return _cap_at_one(out)


def _cap_at_one(s: torch.Tensor) -> torch.Tensor:
    """``min(s, 1)`` in value, with the gradient of ``s`` (rounding above 1 is not a direction)."""
    over = (s.detach() - 1).clamp_(min=0)
    return s - over


class SSIMLoss(nn.Module):
    """``1 - SSIM`` as a loss (0 for identical images). See :func:`ssim` for the arguments.

    Shapes: ``pred``, ``target``: (B, C, H, W) -> scalar (``reduction="mean"``), (B,) (``"none"``)
    or the (B, C, H - 10, W - 10) map of ``1 - SSIM`` (``"map"``).

    Example:
        >>> import torch
        >>> loss_fn = SSIMLoss()
        >>> pred = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> loss = loss_fn(pred, torch.rand(2, 3, 32, 32))
        >>> loss.backward()
        >>> pred.grad.shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, reduction: str = "mean", *, filter: str = "auto"):
        super().__init__()
        gaussian_window(window_size, sigma)  # fail at construction, not at the first batch
        check_reduction(reduction, _REDUCTIONS)
        _check_filter(filter, "cpu")
        self.filter = filter
        self.data_range = data_range
        self.window_size = window_size
        self.sigma = sigma
        self.k1 = k1
        self.k2 = k2
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim(pred, target, data_range=self.data_range, window_size=self.window_size,
                          sigma=self.sigma, k1=self.k1, k2=self.k2, reduction=self.reduction,
                          filter=self.filter)

    def extra_repr(self) -> str:
        return (f"data_range={self.data_range}, window_size={self.window_size}, sigma={self.sigma}, "
                f"reduction={self.reduction!r}")
