"""Mutation tests for the checks of exercises 01-03: each accepts correct implementations (the
package's reference and independent from-scratch ones) and rejects every known-wrong variant, an
unimplemented stub and a function that raises, without ever raising itself."""
import math

import pytest
import torch
import torch.nn.functional as F

from lowlight_course import checks as C
from lowlight_course import data as D
from lowlight_course import losses as L
from lowlight_course import metrics as M
from lowlight_course.pitfalls import gaussian_window_float_exp, ssim_data_range_255, ssim_zero_padding

# Wrong variants such as float(tensor_with_grad) warn by design; the checks must still reject them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")



# ---------------------------------------------------------------------------------------------
# 01 MSE / PSNR
# ---------------------------------------------------------------------------------------------
def mse_scratch(p, t):
    return ((p - t) ** 2).mean()


MSE_WRONG = {
    "sum instead of mean": lambda p, t: ((p - t) ** 2).sum(),
    "missing square": lambda p, t: (p - t).mean(),
    "absolute error (L1)": lambda p, t: (p - t).abs().mean(),
    "square root (RMSE)": lambda p, t: ((p - t) ** 2).mean().sqrt(),
    "mean over pixels only (per-channel values)": lambda p, t: ((p - t) ** 2).mean(dim=(2, 3)),
    "python float (no gradient)": lambda p, t: float(((p - t) ** 2).mean()),
    "detached": lambda p, t: ((p - t) ** 2).mean().detach(),
}


def psnr_scratch(p, t):
    per_image = ((p - t) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / per_image)).mean()


def _psnr(p, t, L=1.0, log=torch.log10, factor=10, pooled=False, square=True):
    err = (p - t) ** 2 if square else (p - t).abs()
    per = err.mean() if pooled else err.flatten(1).mean(1)
    return (factor * log(L ** 2 / per)).mean()


PSNR_WRONG = {
    "data range 255": lambda p, t: _psnr(p, t, L=255.0),
    "natural log": lambda p, t: _psnr(p, t, log=torch.log),
    "20 log10 of 1 / MSE": lambda p, t: _psnr(p, t, factor=20),
    "PSNR of the pooled batch MSE": lambda p, t: _psnr(p, t, pooled=True),
    "mean absolute error instead of MSE": lambda p, t: _psnr(p, t, square=False),
    "NaN for identical images": lambda p, t: _psnr(p, t) * 0 + float("nan") if torch.equal(p, t) else _psnr(p, t),
}


# ---------------------------------------------------------------------------------------------
# 02 Gaussian window / SSIM
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


WINDOW_WRONG = {
    "unnormalised": lambda n, s: _window(n, s, normalise=False),
    "wrong sigma: exp(-d^2 / sigma^2)": lambda n, s: _window(n, s, two=1.0),
    "wrong sigma: sigma instead of sigma^2": lambda n, s: _window(n, s, two=2.0 / s),
    "off-centre: arange(n) - n / 2": lambda n, s: _window(n, s, centre=n / 2),
    "off-centre: arange(n) - n // 2 - 1": lambda n, s: _window(n, s, centre=n // 2 + 1),
    "even length: arange(-(n // 2), n // 2)": lambda n, s: _window(n, s, start=-(n // 2), stop=n // 2),
    "torch.exp of a Python float (the article's bug)": lambda n, s: gaussian_window_float_exp(n, s),
    "hard-coded 11 and 1.5": lambda n, s: _window(11, 1.5),
    "a Python list": lambda n, s: _window(n, s).tolist(),
}


def ssim_scratch(p, t, L=1.0, padding=0, window="gauss", constants=True, unbiased=False, sigma=1.5,
                 channels=None):
    """A plain from-scratch SSIM, with switches for each known mistake."""
    c = channels or p.shape[1]
    if window == "gauss":
        w1 = window_scratch(11, sigma).to(p.dtype)
    else:
        w1 = torch.full((11,), 1 / 11, dtype=p.dtype)
    w = (w1[:, None] * w1[None, :]).expand(c, 1, 11, 11)

    def blur(x):
        return F.conv2d(x, w, padding=padding, groups=c)

    mx, my = blur(p), blur(t)
    corr = 121 / 120 if unbiased else 1.0
    sxx, syy, sxy = [(blur(a * b) - ma * mb) * corr for a, b, ma, mb in
                     ((p, p, mx, mx), (t, t, my, my), (p, t, mx, my))]
    c1, c2 = ((0.01 * L) ** 2, (0.03 * L) ** 2) if constants else (0.0, 0.0)
    smap = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return smap.mean()


SSIM_WRONG = {
    "data range 255 (pitfalls)": ssim_data_range_255,
    "data range 255 (from scratch)": lambda p, t: ssim_scratch(p, t, L=255.0),
    "zero padding (pitfalls)": ssim_zero_padding,
    "zero padding (from scratch)": lambda p, t: ssim_scratch(p, t, padding=5),
    "uniform 11 x 11 window": lambda p, t: ssim_scratch(p, t, window="uniform"),
    "missing constants C1 = C2 = 0": lambda p, t: ssim_scratch(p, t, constants=False),
    "sample covariance (N - 1)": lambda p, t: ssim_scratch(p, t, unbiased=True),
    "sigma 1.0": lambda p, t: ssim_scratch(p, t, sigma=1.0),
    "groups hard-coded to 3": lambda p, t: ssim_scratch(p, t, channels=3),
    "no gradient (numpy)": lambda p, t: torch.tensor(float(ssim_scratch(p.detach(), t))),
    "per-image values, not the mean": lambda p, t: torch.stack([ssim_scratch(p[i:i + 1], t[i:i + 1])
                                                                 for i in range(p.shape[0])]),
}


# ---------------------------------------------------------------------------------------------
# 03 soft histogram
# ---------------------------------------------------------------------------------------------
def hist_gauss_centres(x, bins, bandwidth=None):
    """Gaussian kernel evaluated at bin centres, normalised per pixel (a common, valid variant)."""
    bw = bandwidth or 0.5 / bins
    centres = (torch.arange(bins, dtype=x.dtype) + 0.5) / bins
    k = torch.exp(-(x.clamp(0, 1).flatten(2)[..., None] - centres) ** 2 / (2 * bw ** 2))
    k = k / k.sum(-1, keepdim=True)
    return k.mean(2)


def hist_triangular(x, bins):
    """Linear interpolation between the two nearest bin centres (a triangular kernel)."""
    centres = (torch.arange(bins, dtype=x.dtype) + 0.5) / bins
    k = (1 - (x.clamp(0, 1).flatten(2)[..., None] - centres).abs() * bins).clamp_min(0)
    k = k / k.sum(-1, keepdim=True)
    return k.mean(2)


def _histc(x, bins, normalise=True):
    rows = [torch.histc(r, bins=bins, min=0, max=1) for r in x.reshape(-1, x.shape[2] * x.shape[3])]
    h = torch.stack(rows).view(x.shape[0], x.shape[1], bins)
    return h / h.sum(-1, keepdim=True) if normalise else h


HIST_CORRECT = {
    "package reference": L.soft_histogram,
    "Gaussian at bin centres, half-bin bandwidth": hist_gauss_centres,
    "Gaussian at bin centres, one-bin bandwidth": lambda x, b: hist_gauss_centres(x, b, 1.0 / b),
    "triangular kernel": hist_triangular,
    "float64 output": lambda x, b: L.soft_histogram(x.double(), b),
}

HIST_WRONG = {
    "torch.histc (no gradient)": lambda x, b: _histc(x, b),
    "one-hot of floor (no gradient)": lambda x, b: F.one_hot((x.clamp(0, 1 - 1e-6) * b).long(), b)
    .float().flatten(2, 3).mean(2),
    "unnormalised counts": lambda x, b: hist_gauss_centres(x, b) * x.shape[2] * x.shape[3],
    "pooled over channels (B, bins)": lambda x, b: hist_gauss_centres(x, b).mean(1),
    "flattened (B * C, bins)": lambda x, b: hist_gauss_centres(x, b).flatten(0, 1),
    "pooled over the batch (1, C, bins)": lambda x, b: hist_gauss_centres(x, b).mean(0, keepdim=True),
    "kernel far too wide (4 bins)": lambda x, b: hist_gauss_centres(x, b, 4.0 / b),
    "bins in reverse order": lambda x, b: hist_gauss_centres(x, b).flip(-1),
    "bins over [0, 255]": lambda x, b: hist_gauss_centres(x / 255, b),
    "near-hard sigmoid kernel (gradient only at edges)": lambda x, b: hist_gauss_centres(x, b, 0.02 / b),
}


# ---------------------------------------------------------------------------------------------
CHECKS = {
    "mse": (C.check_mse, {"reference": L.mse, "from scratch": mse_scratch}, MSE_WRONG),
    "psnr": (C.check_psnr, {"reference": M.psnr, "from scratch": psnr_scratch,
                            "with epsilon": lambda p, t: _psnr(p + 0, t) if not torch.equal(p, t)
                            else torch.tensor(100.0)}, PSNR_WRONG),
    "gaussian_window": (C.check_gaussian_window, {"reference": L.gaussian_window, "from scratch": window_scratch},
                        WINDOW_WRONG),
    "ssim": (C.check_ssim, {"reference": L.ssim, "from scratch": ssim_scratch,
                            "float64 inside": lambda p, t: ssim_scratch(p.double(), t.double())}, SSIM_WRONG),
    "soft_histogram": (C.check_soft_histogram, HIST_CORRECT, HIST_WRONG),
}

CORRECT_CASES = [(c, n) for c, (_, ok, _) in CHECKS.items() for n in ok]
WRONG_CASES = [(c, n) for c, (_, _, bad) in CHECKS.items() for n in bad]


def _no_traceback(result, out):
    for text in (result.message, out):
        assert "Traceback" not in text and 'File "' not in text, text


@pytest.mark.parametrize("check,impl", CORRECT_CASES, ids=[f"{c}-{n}" for c, n in CORRECT_CASES])
def test_check_accepts_correct(check, impl, capsys):
    fn, correct, _ = CHECKS[check]
    result = fn(correct[impl])
    out = capsys.readouterr().out
    assert result.passed, result.message
    assert bool(result) and result.implemented and "all" in out and "passed" in out
    _no_traceback(result, out)


@pytest.mark.parametrize("check,impl", WRONG_CASES, ids=[f"{c}-{n}" for c, n in WRONG_CASES])
def test_check_rejects_wrong_variant(check, impl, capsys):
    fn, _, wrong = CHECKS[check]
    state = torch.random.get_rng_state()
    result = fn(wrong[impl])
    torch.random.set_rng_state(state)
    out = capsys.readouterr().out
    assert not result.passed, f"{check} accepted the wrong variant {impl!r}:\n{result.message}"
    assert "[FAIL]" in result.message and "hint" in result.message.lower() or "failed" in result.message
    assert result.implemented
    _no_traceback(result, out)


@pytest.mark.parametrize("check", list(CHECKS))
def test_stub_is_not_implemented_yet(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line with your solution.")

    result = CHECKS[check][0](stub)
    out = capsys.readouterr().out
    assert not result.passed and not result.implemented
    assert "not implemented yet" in result.message and "not implemented yet" in out
    assert "not implemented yet" in repr(result)
    _no_traceback(result, out)


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("kind", ["raises", "returns None", "returns a string", "not callable"])
def test_broken_functions_never_raise(check, kind, capsys):
    def raises(*args, **kwargs):
        return {}["missing key"]

    fn = {"raises": raises, "returns None": lambda *a, **k: None,
          "returns a string": lambda *a, **k: "0.5", "not callable": 42}[kind]
    result = CHECKS[check][0](fn)
    out = capsys.readouterr().out
    assert not result.passed and result.message
    if kind == "raises":
        assert "KeyError" in result.message
    _no_traceback(result, out)
