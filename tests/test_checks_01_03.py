"""Mutation tests for the checks of exercises 01-03.

Each build check accepts correct implementations (the package's reference, independent from-scratch
ones, and legitimate equivalent formulas a learner may write) and rejects each known-wrong variant,
written here independently of the checks' own catalogues; where a variant is a known mistake, the
verdict must *name* it (the diagnosis). The "predict, then run" and open-ended checks accept right
answers and reject wrong ones. No check raises, prints a traceback, or shows torch's advice meant
for package code.
"""
import math

import re

import pytest
import torch
import torch.nn.functional as F

from lowlight_course import checks as C
from lowlight_course import losses as L
from lowlight_course import metrics as M
from lowlight_course.checks import histogram as H
from lowlight_course.checks import mse_psnr as MP
from lowlight_course.checks import ssim as S
from lowlight_course.pitfalls import gaussian_window_float_exp, ssim_data_range_255, ssim_zero_padding

# Wrong variants such as float(tensor_with_grad) warn by design; the checks must still reject them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ---------------------------------------------------------------------------------------------
# 01 MSE
# ---------------------------------------------------------------------------------------------
def mse_scratch(p, t):
    return ((p - t) ** 2).mean()


MSE_CORRECT = {
    "reference (losses.mse, no range check)": lambda p, t: L.mse(p, t, data_range=None),
    "from scratch": mse_scratch,
    "diff * diff": lambda p, t: ((p - t) * (p - t)).mean(),
    "F.mse_loss": lambda p, t: F.mse_loss(p, t),
    "sum / numel": lambda p, t: ((p - t) ** 2).sum() / p.numel(),
    "pow and mean over explicit dims": lambda p, t: (p - t).pow(2).mean(dim=(0, 1, 2, 3)),
    "square of t - p": lambda p, t: ((t - p) ** 2).mean(),
}

# name -> (implementation, the mistake the diagnosis must name, or None where no single one applies)
MSE_WRONG = {
    "sum instead of mean": (lambda p, t: ((p - t) ** 2).sum(), "a sum instead of a mean"),
    "missing square": (lambda p, t: (p - t).mean(), "the difference is not squared"),
    "absolute error (L1)": (lambda p, t: (p - t).abs().mean(), "the absolute difference (L1) instead of its square"),
    "square root (RMSE)": (lambda p, t: torch.sqrt(((p - t) ** 2).mean()), "a square root at the end (RMSE)"),
    "squared mean error": (lambda p, t: torch.mean(p - t) ** 2, "the square of the mean error"),
    "clamped prediction": (lambda p, t: ((torch.clamp(p, 0.0, 1.0) - t) ** 2).mean(),
                           "the prediction clamped to [0, 1] before the loss"),
    "clamped both": (lambda p, t: ((p.clamp(0, 1) - t.clamp(0, 1)) ** 2).mean(),
                     "the prediction clamped to [0, 1] before the loss"),
    "mean over pixels only (per-channel values)": (lambda p, t: ((p - t) ** 2).mean(dim=(2, 3)),
                                                   "the mean over the pixels only"),
    "divided by H * W": (lambda p, t: ((p - t) ** 2).sum() / (p.shape[2] * p.shape[3]),
                         "divided by the number of pixels instead of the number of elements"),
    "python float (no gradient)": (lambda p, t: float(((p - t) ** 2).mean()), "the result has no gradient"),
    "detached": (lambda p, t: ((p - t) ** 2).mean().detach(), "the result has no gradient"),
    "rebuilt leaf with requires_grad": (lambda p, t: torch.tensor(float(((p - t) ** 2).mean()), requires_grad=True),
                                        None),
    "mean over the batch of per-image sums": (lambda p, t: ((p - t) ** 2).flatten(1).sum(1).mean(), None),
}


# ---------------------------------------------------------------------------------------------
# 01 PSNR with a data range
# ---------------------------------------------------------------------------------------------
def psnr_scratch(p, t, data_range=1.0):
    per_image = ((p - t) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(data_range ** 2 / per_image)).mean()


def _psnr(p, t, L=1.0, log=torch.log10, factor=10, pooled=False, square=True, power=2):
    err = (p - t) ** 2 if square else (p - t).abs()
    per = err.mean() if pooled else err.flatten(1).mean(1)
    return (factor * log(L ** power / per)).mean()


PSNR_CORRECT = {
    "reference (metrics.psnr)": M.psnr,
    "package reference_psnr": C.reference_psnr,
    "from scratch": psnr_scratch,
    "20 log10(L / RMSE)": lambda p, t, data_range=1.0: (20 * torch.log10(
        data_range / ((p - t) ** 2).flatten(1).mean(1).sqrt())).mean(),
    "normalise by L first": lambda p, t, data_range=1.0: psnr_scratch(p / data_range, t / data_range),
    "20 log10 L - 10 log10 MSE": lambda p, t, data_range=1.0: (20 * math.log10(data_range) - 10 * torch.log10(
        ((p - t) ** 2).mean(dim=(1, 2, 3)))).mean(),
    "with epsilon": lambda p, t, data_range=1.0: (10 * torch.log10(
        data_range ** 2 / (((p - t) ** 2).flatten(1).mean(1) + 1e-10))).mean(),
    "ln with / ln(10)": lambda p, t, data_range=1.0: (10 * torch.log(
        data_range ** 2 / ((p - t) ** 2).flatten(1).mean(1)) / math.log(10)).mean(),
}

PSNR_WRONG = {
    "L instead of L^2 (the issue's case)": (lambda p, t, data_range=1.0: _psnr(p, t, data_range, power=1),
                                            "L instead of L^2"),
    "data_range ignored": (lambda p, t, data_range=1.0: _psnr(p, t, 1.0), "the data_range argument is ignored (L = 1 always)"),
    "data range 255 always": (lambda p, t, data_range=1.0: _psnr(p, t, 255.0), "L = 255 whatever the data range"),
    "peak from target.max()": (lambda p, t, data_range=1.0: _psnr(p, t, t.max()),
                               "the peak taken from the image (its maximum) instead of data_range"),
    "natural log": (lambda p, t, data_range=1.0: _psnr(p, t, data_range, log=torch.log), "the natural logarithm"),
    "20 log10 of L^2 / MSE": (lambda p, t, data_range=1.0: _psnr(p, t, data_range, factor=20), "20 log10 of L^2 / MSE"),
    "PSNR of the pooled batch MSE": (lambda p, t, data_range=1.0: _psnr(p, t, data_range, pooled=True),
                                     "the PSNR of the batch's pooled MSE"),
    "mean absolute error instead of MSE": (lambda p, t, data_range=1.0: _psnr(p, t, data_range, square=False),
                                           "the mean absolute error instead of the MSE"),
    "upside down": (lambda p, t, data_range=1.0: (10 * torch.log10(((p - t) ** 2).flatten(1).mean(1)
                                                                   / data_range ** 2)).mean(),
                    "the ratio upside down (MSE / L^2)"),
    "NaN for identical images": (lambda p, t, data_range=1.0: torch.tensor(float("nan")) if torch.equal(p, t)
                                 else psnr_scratch(p, t, data_range), "NaN for identical images"),
    "no data_range argument": (lambda p, t: psnr_scratch(p, t), None),
    "per-image values, not averaged": (lambda p, t, data_range=1.0: 10 * torch.log10(
        data_range ** 2 / ((p - t) ** 2).flatten(1).mean(1)), None),
}


# ---------------------------------------------------------------------------------------------
# 02 Gaussian window
# ---------------------------------------------------------------------------------------------
def window_scratch(n, sigma):
    d = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
    w = torch.exp(-d ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def _window(n, sigma, normalise=True, two=2.0, centre=None, start=None, stop=None):
    if start is not None:
        d = torch.arange(start, stop, dtype=torch.float64)
    else:
        d = torch.arange(n, dtype=torch.float64) - ((n - 1) / 2 if centre is None else centre)
    w = torch.exp(-d ** 2 / (two * sigma ** 2))
    return w / w.sum() if normalise else w


WINDOW_CORRECT = {
    "reference": L.gaussian_window,
    "from scratch": window_scratch,
    "linspace offsets in pixels": lambda n, s: (lambda w: w / w.sum())(
        torch.exp(-torch.linspace(-(n - 1) / 2, (n - 1) / 2, n) ** 2 / (2 * s * s))),
    "softmax of the exponent": lambda n, s: torch.softmax(
        -(torch.arange(n, dtype=torch.float64) - n // 2) ** 2 / (2 * s ** 2), 0),
}

WINDOW_WRONG = {
    "unnormalised": (lambda n, s: _window(n, s, normalise=False), "not normalised to sum 1"),
    "exp(-d^2 / sigma^2)": (lambda n, s: _window(n, s, two=1.0), "exp(-d^2 / sigma^2): the 2 is missing"),
    "sigma instead of sigma^2": (lambda n, s: _window(n, s, two=2.0 / s), "sigma where sigma^2 belongs"),
    "off-centre: arange(n) - n / 2": (lambda n, s: _window(n, s, centre=n / 2), "offsets not centred"),
    "offsets from 0": (lambda n, s: _window(n, s, centre=0.0), "offsets counted from the first tap"),
    "linspace(-1, 1)": (lambda n, s: (lambda w: w / w.sum())(torch.exp(-torch.linspace(-1, 1, n) ** 2 / (2 * s ** 2))),
                        "offsets from -1 to 1 instead of in pixels"),
    "hard-coded 11 and 1.5": (lambda n, s: _window(11, 1.5), "the arguments are ignored (11 taps, sigma 1.5 always)"),
    "off-centre: arange(n) - n // 2 - 1": (lambda n, s: _window(n, s, centre=n // 2 + 1), None),
    "even length": (lambda n, s: _window(n, s, start=-(n // 2), stop=n // 2), None),
    "torch.exp of a Python float (the article's bug)": (lambda n, s: gaussian_window_float_exp(n, s), None),
    "a Python list": (lambda n, s: _window(n, s).tolist(), None),
}


# ---------------------------------------------------------------------------------------------
# 02 SSIM, per image, with data_range, window_size and sigma
# ---------------------------------------------------------------------------------------------
def ssim_scratch(p, t, data_range=1.0, window_size=11, sigma=1.5, *, L=None, padding=0, window="gauss",
                 constants=True, unbiased=False, reduce="image", squared=True):
    """A plain from-scratch per-image SSIM, with switches for each known mistake."""
    L = data_range if L is None else L
    c, n = p.shape[1], window_size
    w1 = window_scratch(n, sigma).to(p.dtype) if window == "gauss" else torch.full((n,), 1 / n, dtype=p.dtype)
    w = (w1[:, None] * w1[None, :]).expand(c, 1, n, n)

    def blur(x):
        return F.conv2d(x, w, padding=padding, groups=c)

    mx, my = blur(p), blur(t)
    corr = n * n / (n * n - 1) if unbiased else 1.0
    sxx, syy, sxy = [(blur(a * b) - ma * mb) * corr for a, b, ma, mb in
                     ((p, p, mx, mx), (t, t, my, my), (p, t, mx, my))]
    c1, c2 = ((0.01 * L) ** 2, (0.03 * L) ** 2) if constants else (0.0, 0.0)
    if not squared:
        c1, c2 = 0.01 * L, 0.03 * L
    smap = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return smap.mean() if reduce == "all" else smap.mean(dim=(1, 2, 3))


def ssim_separable(p, t, data_range=1.0, window_size=11, sigma=1.5):
    """A legitimate alternative: separable filtering (rows, then columns)."""
    c = p.shape[1]
    g = window_scratch(window_size, sigma).to(p.dtype)

    def blur(x):
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, window_size), groups=c)
        return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, window_size, 1), groups=c)

    mx, my = blur(p), blur(t)
    sxx, syy, sxy = blur(p * p) - mx ** 2, blur(t * t) - my ** 2, blur(p * t) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return (lum * cs).flatten(1).mean(1)


SSIM_CORRECT = {
    "package reference": C.reference_ssim_per_image,
    "losses.ssim reduction none": lambda p, t, data_range=1.0, window_size=11, sigma=1.5: L.ssim(
        p, t, data_range, window_size, sigma, reduction="none"),
    "from scratch": ssim_scratch,
    "separable filtering, luminance x contrast-structure": ssim_separable,
    "float64 inside": lambda p, t, *a, **k: ssim_scratch(p.double(), t.double(), *a, **k),
    "images scaled to [0, 1] first": lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(
        p / data_range, t / data_range, 1.0, window_size, sigma),
}

SSIM_WRONG = {
    "one value for the batch (the lecture's reduction)": (lambda p, t, *a, **k: ssim_scratch(p, t, *a, reduce="all", **k),
                                                          "one SSIM for the whole batch instead of one per image"),
    "per image and channel": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: L.ssim(
        p, t, data_range, window_size, sigma, reduction="map").mean(dim=(2, 3)), "one SSIM per image *and channel*"),
    "data_range ignored": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(p, t, 1.0, window_size, sigma),
                           "the data_range argument is ignored (L = 1 always)"),
    "data range 255 always (from scratch)": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(
        p, t, window_size=window_size, sigma=sigma, L=255.0), "L = 255 whatever the data range"),
    "data range 255 (pitfalls, per image)": (lambda p, t, *a, **k: torch.stack(
        [ssim_data_range_255(p[i:i + 1], t[i:i + 1]) for i in range(p.shape[0])]), None),
    "zero padding (from scratch)": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(
        p, t, data_range, window_size, sigma, padding=window_size // 2), "zero padding (padding = window_size // 2)"),
    "zero padding (pitfalls, per image)": (lambda p, t, *a, **k: torch.stack(
        [ssim_zero_padding(p[i:i + 1], t[i:i + 1]) for i in range(p.shape[0])]), None),
    "uniform window": (lambda p, t, *a, **k: ssim_scratch(p, t, *a, window="uniform", **k), "a uniform (box) window"),
    "missing constants": (lambda p, t, *a, **k: ssim_scratch(p, t, *a, constants=False, **k), "no constants (C1 = C2 = 0)"),
    "sample covariance (N - 1)": (lambda p, t, *a, **k: ssim_scratch(p, t, *a, unbiased=True, **k),
                                  "sample (N - 1) instead of population statistics"),
    "window arguments ignored": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(p, t, data_range),
                                 "window_size and sigma ignored (11 and 1.5 always)"),
    "constants not squared": (lambda p, t, *a, **k: ssim_scratch(p, t, *a, squared=False, **k),
                              "C1 = 0.01 L and C2 = 0.03 L, not squared"),
    "grey first": (lambda p, t, *a, **k: ssim_scratch(p.mean(1, keepdim=True), t.mean(1, keepdim=True), *a, **k),
                   "the images turned grey first"),
    "no gradient (numpy)": (lambda p, t, *a, **k: torch.tensor(ssim_scratch(p.detach(), t, *a, **k).numpy()),
                            "the result has no gradient"),
    "channels mixed by one window over all channels": (lambda p, t, data_range=1.0, window_size=11, sigma=1.5: ssim_scratch(
        p.mean(1, keepdim=True).expand_as(p).contiguous(), t, data_range, window_size, sigma), None),
}


# ---------------------------------------------------------------------------------------------
# 03 soft histograms
# ---------------------------------------------------------------------------------------------
def hist_gauss_centres(x, bins=16, bandwidth=None):
    """Gaussian kernel evaluated at bin centres, normalised per pixel (a common, valid variant)."""
    bw = bandwidth or 0.5 / bins
    centres = (torch.arange(bins, dtype=x.dtype) + 0.5) / bins
    k = torch.exp(-(x.clamp(0, 1).flatten(2)[..., None] - centres) ** 2 / (2 * bw ** 2))
    k = k / k.sum(-1, keepdim=True)
    return k.mean(2)


def hist_triangular(x, bins=16, centres=None, normalise_pixels=True):
    """Linear interpolation between the two nearest bin centres (a triangular kernel)."""
    c = (torch.arange(bins, dtype=x.dtype) + 0.5) / bins if centres is None else centres
    k = (1 - (x.clamp(0, 1).flatten(2)[..., None] - c).abs() * bins).clamp_min(0)
    if normalise_pixels:
        k = k / k.sum(-1, keepdim=True)
    return k.mean(2)


def hist_triangular_scatter(x, bins=16):
    """Equivalent alternative: floor/fraction, then scatter-add the two weights (differentiable in frac)."""
    v = (x.clamp(0, 1).flatten(2) * bins - 0.5).clamp(0, bins - 1)
    lo = v.floor().clamp(max=bins - 2)
    frac = v - lo
    h = torch.zeros(*v.shape[:2], bins, dtype=x.dtype)
    h = h.scatter_add(2, lo.long(), 1 - frac).scatter_add(2, lo.long() + 1, frac)
    return h / v.shape[-1]


def _histc(x, bins, normalise=True):
    rows = [torch.histc(r, bins=bins, min=0, max=1) for r in x.reshape(-1, x.shape[2] * x.shape[3])]
    h = torch.stack(rows).view(x.shape[0], x.shape[1], bins)
    return h / h.sum(-1, keepdim=True) if normalise else h


def _some_rows(h, k=1):
    """Normalise only the first ``k`` (image, channel) rows of an unnormalised histogram."""
    flat = h.flatten(0, 1).clone()
    flat[:k] = flat[:k] / flat[:k].sum(-1, keepdim=True)
    return flat.view_as(h)


SOFT_CORRECT = {
    "package reference": L.soft_histogram,
    "Gaussian at bin centres, half-bin bandwidth": hist_gauss_centres,
    "Gaussian at bin centres, one-bin bandwidth": lambda x, b: hist_gauss_centres(x, b, 1.0 / b),
    "triangular kernel": hist_triangular,
    "float64 output": lambda x, b: L.soft_histogram(x.double(), b),
}

_shifted = lambda x, b: hist_triangular(x, b, centres=torch.arange(b, dtype=x.dtype) / b)  # noqa: E731
_linspace = lambda x, b: hist_triangular(x, b, centres=torch.linspace(0, 1, b, dtype=x.dtype))  # noqa: E731
_gauss_shifted = lambda x, b: (lambda c: (lambda k: (k / k.sum(-1, keepdim=True)).mean(2))(  # noqa: E731
    torch.exp(-(x.clamp(0, 1).flatten(2)[..., None] - c) ** 2 / (2 * (0.5 / b) ** 2))))(torch.arange(b, dtype=x.dtype) / b)
_gauss_linspace = lambda x, b: (lambda c: (lambda k: (k / k.sum(-1, keepdim=True)).mean(2))(  # noqa: E731
    torch.exp(-(x.clamp(0, 1).flatten(2)[..., None] - c) ** 2 / (2 * (0.5 / b) ** 2))))(torch.linspace(0, 1, b, dtype=x.dtype))

SOFT_WRONG = {
    "centres shifted by half a bin (Gaussian)": (_gauss_shifted, "bin centres shifted by half a bin (j / bins)"),
    "centres from linspace(0, 1, bins) (Gaussian)": (_gauss_linspace,
                                                     "bin centres from an evenly spaced grid from 0 to 1 inclusive"),
    "normalisation of only some rows": (lambda x, b: _some_rows(hist_gauss_centres(x, b) * 7.0, 2),
                                        "normalisation of only some rows"),
    "torch.histc (no gradient)": (lambda x, b: _histc(x, b), "a hard histogram (torch.histc or counting)"),
    "one-hot of floor (no gradient)": (lambda x, b: F.one_hot((x.clamp(0, 1 - 1e-6) * b).long(), b)
                                       .float().flatten(2, 3).mean(2), "a hard histogram (torch.histc or counting)"),
    "unnormalised counts": (lambda x, b: hist_gauss_centres(x, b) * x.shape[2] * x.shape[3],
                            "counts instead of fractions (a sum over the pixels)"),
    "bins in reverse order": (lambda x, b: hist_gauss_centres(x, b).flip(-1), "the bins in reverse order"),
    "bins over [0, 255]": (lambda x, b: hist_gauss_centres(x / 255, b), "bins over [0, 255]"),
    "pooled over channels (B, bins)": (lambda x, b: hist_gauss_centres(x, b).mean(1), None),
    "flattened (B * C, bins)": (lambda x, b: hist_gauss_centres(x, b).flatten(0, 1), None),
    "pooled over the batch (1, C, bins)": (lambda x, b: hist_gauss_centres(x, b).mean(0, keepdim=True), None),
    "kernel far too wide (4 bins)": (lambda x, b: hist_gauss_centres(x, b, 4.0 / b), None),
    "near-hard kernel (gradient only at edges)": (lambda x, b: hist_gauss_centres(x, b, 0.02 / b), None),
}

TRI_CORRECT = {
    "package reference": C.reference_triangular_histogram,
    "from scratch (clamp of 1 - |d| bins)": hist_triangular,
    "floor/fraction with scatter_add": hist_triangular_scatter,
    "float64": lambda x, b=16: hist_triangular(x.double(), b),
    "relu form": lambda x, b=16: (lambda k: (k / k.sum(-1, keepdim=True)).mean(2))(
        F.relu(1 - ((x.clamp(0, 1).flatten(2)[..., None] * b - 0.5) - torch.arange(b)).abs())),
}

TRI_WRONG = {
    "centres shifted by half a bin": (_shifted, "bin centres shifted by half a bin (j / bins)"),
    "centres from linspace(0, 1, bins)": (_linspace, "bin centres from an evenly spaced grid from 0 to 1 inclusive"),
    "normalisation of only some rows": (lambda x, b=16: _some_rows(hist_triangular(x, b) * 3.0, 1),
                                        "normalisation of only some rows"),
    "pixel weights not normalised": (lambda x, b=16: hist_triangular(x, b, normalise_pixels=False),
                                     "each pixel's weights not normalised"),
    "the lecture's Gaussian kernel": (lambda x, b=16: L.soft_histogram(x, b),
                                      "the lecture's Gaussian kernel instead of the triangular one"),
    "Gaussian at centres": (hist_gauss_centres, "a Gaussian kernel evaluated at the bin centres"),
    "triangle two bins wide": (lambda x, b=16: (lambda k: (k / k.sum(-1, keepdim=True)).mean(2))(
        (1 - (x.clamp(0, 1).flatten(2)[..., None] - (torch.arange(b) + 0.5) / b).abs() * b / 2).clamp_min(0)),
        "a triangle two bins wide on each side"),
    "counts": (lambda x, b=16: hist_triangular(x, b) * x.shape[-1] * x.shape[-2],
               "counts instead of fractions (a sum over the pixels)"),
    "reversed": (lambda x, b=16: hist_triangular(x, b).flip(-1), "the bins in reverse order"),
    "torch.histc": (lambda x, b=16: _histc(x, b), "a hard histogram (torch.histc or counting)"),
    "detached": (lambda x, b=16: hist_triangular(x, b).detach(), "the result has no gradient"),
    "pooled over channels": (lambda x, b=16: hist_triangular(x, b).mean(1), None),
    "no clamp (values outside [0, 1] lost)": (lambda x, b=16: hist_triangular(x, b) * 0.999, None),
}


# ---------------------------------------------------------------------------------------------
CHECKS = {
    "mse": (C.check_mse, MSE_CORRECT, MSE_WRONG),
    "psnr": (C.check_psnr, PSNR_CORRECT, PSNR_WRONG),
    "gaussian_window": (C.check_gaussian_window, WINDOW_CORRECT, WINDOW_WRONG),
    "ssim": (C.check_ssim, SSIM_CORRECT, SSIM_WRONG),
    "soft_histogram": (C.check_soft_histogram, SOFT_CORRECT, SOFT_WRONG),
    "triangular_histogram": (C.check_triangular_histogram, TRI_CORRECT, TRI_WRONG),
}
CATALOGUES = {"mse": MP.MSE_MISTAKES, "psnr": MP.PSNR_MISTAKES, "gaussian_window": S.WINDOW_MISTAKES,
              "ssim": S.SSIM_MISTAKES, "soft_histogram": H.SOFT_HISTOGRAM_MISTAKES,
              "triangular_histogram": H.TRIANGULAR_MISTAKES}

CORRECT_CASES = [(c, n) for c, (_, ok, _) in CHECKS.items() for n in ok]
WRONG_CASES = [(c, n) for c, (_, _, bad) in CHECKS.items() for n in bad]
CATALOGUE_CASES = [(c, m.name) for c, ms in CATALOGUES.items() for m in ms if m.fn is not None]


def _clean(result, out):
    for text in (result.message, out):
        assert "Traceback" not in text and 'File "' not in text, text
        assert "allow_unused" not in text and "retain_graph" not in text, text


@pytest.mark.parametrize("check,impl", CORRECT_CASES, ids=[f"{c}-{n}" for c, n in CORRECT_CASES])
def test_check_accepts_correct(check, impl, capsys):
    fn, correct, _ = CHECKS[check]
    result = fn(correct[impl])
    out = capsys.readouterr().out
    assert result.passed, result.message
    assert bool(result) and result.implemented and re.search(r"(all \d+ cases|the one case) passed", out) and not result.mistakes
    _clean(result, out)


@pytest.mark.parametrize("check,impl", WRONG_CASES, ids=[f"{c}-{n}" for c, n in WRONG_CASES])
def test_check_rejects_wrong_variant(check, impl, capsys):
    fn, _, wrong = CHECKS[check]
    impl_fn, mistake = wrong[impl]
    state = torch.random.get_rng_state()
    result = fn(impl_fn)
    torch.random.set_rng_state(state)
    out = capsys.readouterr().out
    assert not result.passed, f"{check} accepted the wrong variant {impl!r}:\n{result.message}"
    assert "[FAIL]" in result.message and result.implemented
    if mistake is not None:
        assert mistake in result.mistakes, f"{impl!r} should be diagnosed as {mistake!r}:\n{result.message}"
        assert f"- {mistake}:" in result.message or mistake in result.message
        assert "Reread Lecture" in result.message
    _clean(result, out)


@pytest.mark.parametrize("check,name", CATALOGUE_CASES, ids=[f"{c}-{n}" for c, n in CATALOGUE_CASES])
def test_each_catalogue_mistake_is_rejected_and_named(check, name, capsys):
    mistake = next(m for m in CATALOGUES[check] if m.name == name)
    result = CHECKS[check][0](mistake.fn)
    out = capsys.readouterr().out
    assert not result.passed and name in result.mistakes, result.message
    assert mistake.reread in result.message
    _clean(result, out)


def test_every_catalogue_names_its_lecture_section():
    for ms in CATALOGUES.values():
        names = [m.name for m in ms]
        assert len(names) == len(set(names))
        for m in ms:
            assert m.reread.startswith("Lecture ") and "section" in m.reread and m.why.endswith(".")
            assert (m.fn is None) != (m.test is None)


def test_required_mistakes_are_in_the_catalogues():
    """Issue 9 item 3: the mistakes that passed before must be known to the checks by name."""
    names = {c: [m.name for m in ms] for c, ms in CATALOGUES.items()}
    assert "L instead of L^2" in names["psnr"]
    assert "the prediction clamped to [0, 1] before the loss" in names["mse"]
    for c in ("soft_histogram", "triangular_histogram"):
        assert "bin centres shifted by half a bin (j / bins)" in names[c]
        assert "bin centres from an evenly spaced grid from 0 to 1 inclusive" in names[c]
        assert "normalisation of only some rows" in names[c]


def test_psnr_l_instead_of_l_squared_only_shows_for_l_not_1(capsys):
    wrong = PSNR_WRONG["L instead of L^2 (the issue's case)"][0]
    x = torch.full((1, 3, 8, 8), 0.3)
    assert float(wrong(x + 0.1, x)) == pytest.approx(float(psnr_scratch(x + 0.1, x)))  # identical at L = 1
    result = C.check_psnr(wrong)
    failed = [d for d, ok, _ in result.cases if not ok]
    assert failed and all("data_range" in d for d in failed)


def test_no_fixed_hints_in_01_03_verdicts(capsys):
    result = C.check_psnr(PSNR_WRONG["natural log"][0])
    assert "hint:" not in result.message and "Diagnosis" in result.message


def test_unknown_mistake_gets_a_section_to_reread(capsys):
    result = C.check_mse(lambda p, t: ((p - t) ** 2).mean() + 0.01)
    assert not result.passed and not result.mistakes
    assert "match none of the mistakes" in result.message and "Lecture 1" in result.message


ALL = [C.check_mse, C.check_psnr, C.check_gaussian_window, C.check_ssim, C.check_soft_histogram,
       C.check_triangular_histogram, C.check_psnr_prediction, C.check_rank_reversal, C.check_shift_prediction,
       C.check_fool_ssim, C.check_histogram_prediction, C.check_tone_curve]


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_stub_is_not_implemented_yet(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line with your solution.")

    result = check(stub)
    out = capsys.readouterr().out
    assert not result.passed and not result.implemented
    assert "not implemented yet" in result.message and "not implemented yet" in out
    assert "not implemented yet" in repr(result)
    _clean(result, out)


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", ["raises", "returns None", "returns a string", "not callable"])
def test_broken_functions_never_raise(check, kind, capsys):
    def raises(*args, **kwargs):
        return {}["missing key"]

    fn = {"raises": raises, "returns None": lambda *a, **k: None,
          "returns a string": lambda *a, **k: "0.5", "not callable": 42}[kind]
    result = check(fn)
    out = capsys.readouterr().out
    assert not result.passed and result.message
    if kind == "raises":
        assert "KeyError" in result.message
    _clean(result, out)


# ---------------------------------------------------------------------------------------------
# "predict, then run" answers and the open-ended tasks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check,right,wrongs", [
    (C.check_psnr_prediction, [48.13, 48, 20 * math.log10(255), torch.tensor(48.1)], [20.0, 0, 255, 2.3, "48", True]),
    (C.check_histogram_prediction, [0.9, 0.89, 0.91], [0.1, 0.5, 1.0, 0.8, None]),
    (C.check_shift_prediction, ["B", " b "], ["A", "C", "between 0.4 and 0.9", "0.72", 0.72]),
], ids=["psnr", "histogram", "shift"])
def test_predictions(check, right, wrongs, capsys):
    for r in right:
        assert check(lambda: r, verbose=False).passed, r
    for w in wrongs:
        res = check(lambda: w, verbose=False)
        assert not res.passed and res.implemented, w
        assert "Traceback" not in res.message


def test_prediction_messages_explain(capsys):
    msg = C.check_psnr_prediction(lambda: 20.0, verbose=False).message
    assert "48.13" in msg and "20 log10(255)" in msg and "Reread Lecture 1" in msg
    msg = C.check_shift_prediction(lambda: "A", verbose=False).message
    assert "'B'" in msg and "between 0.4 and 0.9" in msg


def test_check_answer_rejects_a_bad_question():
    with pytest.raises(ValueError, match="choices"):
        C.check_answer(lambda: "a", "c", choices=["a", "b"])
    with pytest.raises(ValueError, match="tol"):
        C.check_answer(lambda: 1.0, 1.0)


def _noise(x, psnr_db, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(x.shape, generator=g) * 2 - 1
    mse = 10 ** (-psnr_db / 10)
    return (x + d * (mse / float((d ** 2).mean())) ** 0.5).clamp(0, 1)


RANK_OK = {"noise vs brightness": lambda x: (_noise(x, 23), (x + 0.1).clamp(0, 1)),
           "noise vs colour cast": lambda x: (_noise(x, 24), (x * torch.tensor([1.25, 1.0, 0.8]).view(1, 3, 1, 1)).clamp(0, 1))}
RANK_BAD = {"same image twice": lambda x: (x, x), "reversed order": lambda x: ((x + 0.1).clamp(0, 1), _noise(x, 23)),
            "PSNR gap too small": lambda x: (_noise(x, 21), (x + 0.1).clamp(0, 1)),
            "out of range": lambda x: (x * 2, x), "one image": lambda x: x, "wrong shape": lambda x: (x[:, :1], x)}


@pytest.mark.parametrize("name", list(RANK_OK))
def test_rank_reversal_accepts(name, capsys):
    assert C.check_rank_reversal(RANK_OK[name]).passed


@pytest.mark.parametrize("name", list(RANK_BAD))
def test_rank_reversal_rejects(name, capsys):
    r = C.check_rank_reversal(RANK_BAD[name])
    assert not r.passed and r.implemented


FOOL_OK = {"brightness +0.25": lambda x: (x + 0.25).clamp(0, 1),
           "brightness and cast": lambda x: (x + torch.tensor([0.25, 0.3, 0.2]).view(1, 3, 1, 1)).clamp(0, 1)}
FOOL_BAD = {"brightness +0.2 (PSNR 14 dB)": lambda x: (x + 0.2).clamp(0, 1), "noise": lambda x: _noise(x, 12),
            "identity": lambda x: x, "contrast 1.5": lambda x: (1.5 * x).clamp(0, 1), "nan": lambda x: x * float("nan")}


@pytest.mark.parametrize("name", list(FOOL_OK))
def test_fool_ssim_accepts(name, capsys):
    assert C.check_fool_ssim(FOOL_OK[name]).passed


@pytest.mark.parametrize("name", list(FOOL_BAD))
def test_fool_ssim_rejects(name, capsys):
    r = C.check_fool_ssim(FOOL_BAD[name])
    assert not r.passed and r.implemented


def _fit_tone(low, target_hist, params="gain+gamma", steps=200):
    p = torch.zeros(2, 1, 3, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.05 if params == "gain+gamma" else 0.08)

    def curve():
        gain = p[1].exp() if params == "gain+gamma" else 1.0
        return (gain * low ** p[0].exp()).clamp(0, 1)

    for _ in range(steps):
        loss = (hist_triangular(curve()) - target_hist).abs().sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return curve().detach()


def test_tone_curve_accepts_a_gain_and_gamma_fit(capsys):
    assert C.check_tone_curve(_fit_tone).passed


@pytest.mark.parametrize("name,fn", [
    ("gamma only (the lecture's setup)", lambda low, th: _fit_tone(low, th, "gamma", 100)),
    ("unchanged", lambda low, th: low),
    ("all white", lambda low, th: torch.ones_like(low)),
    ("histogram-matched noise", lambda low, th: torch.rand_like(low)),
])
def test_tone_curve_rejects(name, fn, capsys):
    r = C.check_tone_curve(fn)
    assert not r.passed and r.implemented


def test_every_section_to_reread_exists_in_its_lecture():
    """A renamed or renumbered lecture section must not leave the checks pointing at nothing."""
    from _lectures import lecture_headings

    headings = lecture_headings()
    rereads = {m.reread for ms in CATALOGUES.values() for m in ms}
    rereads |= {MP._LECTURE_1, MP._LECTURE_1_MEASURE, S._DRIFT, H._TRAIN}
    for reread in rereads:
        m = re.fullmatch(r"Lecture (\d+), section (\d+) \((.+)\)", reread)
        assert m, reread
        lecture, section, title = int(m[1]), m[2], m[3]
        assert any(num == section and heading.startswith(title) for num, heading in headings[lecture]), (
            f"{reread!r} is not a section heading of lecture {lecture}: {headings[lecture]}")


def test_tone_curve_runs_the_fit_on_one_thread_and_restores_it(capsys):
    seen = []

    def records_threads(low, target_hist):
        seen.append(torch.get_num_threads())
        return _fit_tone(low, target_hist)

    before = torch.get_num_threads()
    assert C.check_tone_curve(records_threads).passed
    assert seen == [1] and torch.get_num_threads() == before
