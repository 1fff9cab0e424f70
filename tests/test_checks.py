"""Mutation tests for lowlight_course.checks: every check accepts correct implementations (the
package's reference and independent from-scratch ones) and rejects every known-wrong variant,
an unimplemented stub and a function that raises, without ever raising itself."""
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
# 04 balanced weights
# ---------------------------------------------------------------------------------------------
def _norms(terms, pred, target):
    p = pred.detach().clone().requires_grad_(True)
    out = {}
    for k, fn in terms.items():
        v = fn(p, target)
        out[k] = float(torch.autograd.grad(v, p)[0].norm()) if v.requires_grad else 0.0
    return out, {k: float(fn(p, target).detach()) for k, fn in terms.items()}


def balanced_scratch(terms, pred, target):
    g, _ = _norms(terms, pred, target)
    live = [k for k in g if g[k] > 0]
    mean = sum(g[k] for k in live) / len(live)
    return {k: (mean / g[k] if g[k] > 0 else 1.0) for k in terms}


def _sum_to_one(weights):
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def _inverse(terms, pred, target):
    g, _ = _norms(terms, pred, target)
    return {k: 1 / g[k] for k in g}


BALANCE_WRONG = {
    "equal weights": lambda terms, p, t: {k: 1.0 for k in terms},
    "the article's 0.3 / 0.3 / 0.4": lambda terms, p, t: dict(zip(terms, [0.3, 0.3, 0.4, 0.0])),
    "initial-value normalisation 1 / L_i": lambda terms, p, t: {k: 1 / max(v, 1e-12) for k, v in
                                                               _norms(terms, p, t)[1].items()},
    "1 / g_i without rescaling": lambda terms, p, t: {k: (1 / v if v else 0.0) for k, v in
                                                      _norms(terms, p, t)[0].items()},
    "weights sum to 1": lambda terms, p, t: _sum_to_one(balanced_scratch(terms, p, t)),
    "proportional to g_i (inverted)": lambda terms, p, t: _norms(terms, p, t)[0],
    "division by zero for a dead term": _inverse,
    "weights that carry gradients": lambda terms, p, t: {k: torch.tensor(v, requires_grad=True) for k, v in
                                                         balanced_scratch(terms, p, t).items()},
    "a list of weights": lambda terms, p, t: list(balanced_scratch(terms, p, t).values()),
    "modifies pred in place": lambda terms, p, t: (p.requires_grad_(True), balanced_scratch(terms, p, t))[1],
}


# ---------------------------------------------------------------------------------------------
# 05 augmentation
# ---------------------------------------------------------------------------------------------
def augment_scratch(clean, seed):
    """Random exposure, illuminant gains and Gaussian noise in linear light, from scratch."""
    g = torch.Generator().manual_seed(seed)
    b = clean.shape[0]
    lin = D.srgb_to_linear(clean)
    exposure = torch.exp(torch.empty(b, 1, 1, 1).uniform_(math.log(0.02), math.log(0.3), generator=g))
    gains = torch.exp(0.3 * torch.randn(b, 3, 1, 1, generator=g))
    noise = 0.01 * torch.randn(lin.shape, generator=g)
    return D.linear_to_srgb((lin * exposure * gains + noise).clamp(0, 1))


def _augment_no_clamp(clean, seed):
    g = torch.Generator().manual_seed(seed)
    return clean * (0.05 + 0.2 * torch.rand((), generator=g)) * torch.exp(0.3 * torch.randn(1, 3, 1, 1, generator=g)) \
        + 0.05 * torch.randn(clean.shape, generator=g)


AUGMENT_WRONG = {
    "identity": lambda x, seed: x.clone(),
    "fixed neutral light (outdoor daylight only)": lambda x, seed: D.simulate_low_light(x, "outdoor_daylight", seed=seed),
    "fixed warm light (tungsten only)": lambda x, seed: D.simulate_low_light(x, "indoor_tungsten", seed=seed),
    "global RNG instead of the seed": lambda x, seed: D.simulate_low_light(
        x, "randomized", seed=int(torch.randint(0, 10 ** 6, ()))),
    "seed ignored": lambda x, seed: D.simulate_low_light(x, "randomized", seed=0),
    "no clamping": _augment_no_clamp,
    "no noise": lambda x, seed: D.simulate_low_light(x, "randomized", seed=seed, noise=False),
    "modifies the input in place": lambda x, seed: D.simulate_low_light(x.mul_(0.99), "randomized", seed=seed),
    "wrong shape (drops the batch)": lambda x, seed: D.simulate_low_light(x, "randomized", seed=seed)[0],
}


# ---------------------------------------------------------------------------------------------
# 06 noise estimator
# ---------------------------------------------------------------------------------------------
def noise_scratch(img, ref, patch_size=8, *, demean=True, dark=True, flat=True, empty=float("nan"),
                  unbiased=False, variance=False):
    k = patch_size
    h, w = (img.shape[2] // k) * k, (img.shape[3] // k) * k
    wts = torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)
    luma = (ref * wts).sum(1, keepdim=True)
    diff = (img - ref)[..., :h, :w]
    y = luma[..., :h, :w]
    acc = []
    for i in range(0, h, k):
        for j in range(0, w, k):
            py = y[..., i:i + k, j:j + k]
            if dark and float(py.mean()) >= 0.25:
                continue
            if flat and float(py.std(unbiased=False)) >= 0.02:
                continue
            pd = diff[..., i:i + k, j:j + k].flatten(2)
            v = pd.var(-1, unbiased=unbiased) if demean else (pd ** 2).mean(-1)
            acc.append(v.mean())
    if not acc:
        return empty
    var = float(torch.stack(acc).mean())
    return var if variance else math.sqrt(var)


NOISE_WRONG = {
    "offset counted as noise (no mean removal)": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, demean=False),
    "bright patches used too": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, dark=False),
    "textured patches used too": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, flat=False),
    "0 instead of nan": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, empty=0.0),
    "variance instead of std": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, variance=True),
    "std over the whole image": lambda i, r, patch_size=8: float((i - r).std()),
    "patch_size ignored": lambda i, r, patch_size=8: noise_scratch(i, r, 4),
}


# ---------------------------------------------------------------------------------------------
# 07 stalled terms
# ---------------------------------------------------------------------------------------------
def stalled(history, window=10, grad_tol=1e-8, min_rel_decrease=0.01, *, use_grad=True, use_values=True,
            whole=False, absolute=None, values_first=False, fixed_window=None):
    window = fixed_window or window
    out = {}
    for name, values in history.terms.items():
        grads = history.grad_norms.get(name, [])[-window:]
        dead = use_grad and bool(grads) and max(grads) <= grad_tol
        vals = values if whole else values[-window:]
        plateau = False
        if use_values and len(vals) >= 2:
            drop = vals[0] - vals[-1]
            plateau = drop < (absolute if absolute is not None else min_rel_decrease * abs(vals[0]))
        if values_first and plateau:
            out[name] = "plateau"
        elif dead:
            out[name] = "dead"
        elif plateau:
            out[name] = "plateau"
    return out


def _stalled_crash_short(history, window=10, **kw):
    out = {}
    for name, values in history.terms.items():
        start = values[len(values) - window]  # IndexError-free but wrong for short histories
        if len(values) < window:
            raise IndexError("history shorter than the window")
        if start - values[-1] < 0.01 * abs(start):
            out[name] = "plateau"
    return out


STALLED_WRONG = {
    "gradient check only": lambda h, window=10: stalled(h, window, use_values=False),
    "value check only": lambda h, window=10: stalled(h, window, use_grad=False),
    "whole history instead of the last window": lambda h, window=10: stalled(h, window, whole=True),
    "absolute threshold 1e-3": lambda h, window=10: stalled(h, window, absolute=1e-3),
    "plateau tested before dead": lambda h, window=10: stalled(h, window, values_first=True),
    "window argument ignored": lambda h, window=10: stalled(h, window, fixed_window=10),
    "a list of names": lambda h, window=10: list(stalled(h, window)),
    "fails on short histories": _stalled_crash_short,
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
    "balanced_weights": (C.check_balanced_weights, {"reference": C.reference_balanced_weights,
                                                    "from scratch": balanced_scratch}, BALANCE_WRONG),
    "augmentation": (C.check_augmentation, {"reference": C.reference_augment, "from scratch": augment_scratch},
                     AUGMENT_WRONG),
    "noise_estimator": (C.check_noise_estimator, {
        "reference": C.reference_noise_in_flat_dark_patches,
        "from scratch (population std)": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size),
        "from scratch (sample std)": lambda i, r, patch_size=8: noise_scratch(i, r, patch_size, unbiased=True),
    }, NOISE_WRONG),
    "stalled_terms": (C.check_stalled_terms, {"reference": C.reference_find_stalled_terms,
                                              "from scratch": lambda h, window=10: stalled(h, window)},
                      STALLED_WRONG),
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


def test_verbose_false_prints_nothing(capsys):
    result = C.check_mse(L.mse, verbose=False)
    assert result.passed and capsys.readouterr().out == ""


def test_use_or_reference(capsys):
    def stub(p, t):
        raise NotImplementedError

    x, y = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    f = C.use_or_reference(stub, L.mse, "mse")
    assert float(f(x, y)) == 0.25 and float(f(x, y)) == 0.25
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == 1 and "lowlight_course.losses" in out
    g = C.use_or_reference(mse_scratch, L.mse, "mse")
    assert float(g(x, y)) == 0.25 and capsys.readouterr().out == ""
    failed = C.check_mse(MSE_WRONG["sum instead of mean"], verbose=False)
    h = C.use_or_reference(MSE_WRONG["sum instead of mean"], L.mse, "mse", result=failed)
    assert float(h(x, y)) == 0.25 and "did not pass its check" in capsys.readouterr().out


def test_checks_are_fast():
    import time

    t0 = time.perf_counter()
    for fn, correct, _ in CHECKS.values():
        fn(next(iter(correct.values())), verbose=False)
    assert time.perf_counter() - t0 < 20
