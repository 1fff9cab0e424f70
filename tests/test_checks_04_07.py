"""Mutation tests for the checks of exercises 04-07: each accepts correct implementations (the
package's reference and independent from-scratch ones) and rejects every known-wrong variant, an
unimplemented stub and a function that raises, without ever raising itself."""
import math

import re

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
# 04 balanced weights
# ---------------------------------------------------------------------------------------------
def _norms(terms, pred, target):
    p = pred.detach().clone().requires_grad_(True)
    out = {}
    for k, fn in terms.items():
        v = fn(p, target)
        out[k] = float(torch.autograd.grad(v, p)[0].norm()) if v.requires_grad else 0.0
    return out, {k: float(fn(p, target).detach()) for k, fn in terms.items()}


def balanced_scratch(terms, pred, target, shares=None):
    """Independent: each live term's weight solves w_i g_i = s_i sum(g) with s renormalised over live terms."""
    g, _ = _norms(terms, pred, target)
    live = [k for k in g if g[k] > 0]
    s = {k: (1.0 if shares is None else shares[k]) for k in live}
    z = sum(s.values())
    return {k: (s[k] * sum(g[j] for j in live) / (z * g[k]) if k in live else 1.0) for k in terms}


def balanced_torch(terms, pred, target, shares=None):
    """Equivalent alternative: tensors without gradient as weights, computed in one vectorised step."""
    g, _ = _norms(terms, pred, target)
    names = list(terms)
    gn = torch.tensor([g[k] for k in names], dtype=torch.float64)
    sv = torch.tensor([1.0 if shares is None else float(shares[k]) for k in names], dtype=torch.float64)
    live = gn > 0
    sv = torch.where(live, sv, torch.zeros_like(sv))
    w = torch.where(live, sv / sv.sum() * gn.sum() / gn.clamp_min(1e-30), torch.ones_like(gn))
    return {k: w[i] for i, k in enumerate(names)}


def _sum_to_one(weights):
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def _inverse(terms, pred, target, shares=None):
    g, _ = _norms(terms, pred, target)
    return {k: 1 / g[k] for k in g}


BALANCE_WRONG = {
    "equal weights": lambda terms, p, t, shares=None: {k: 1.0 for k in terms},
    "the article's 0.3 / 0.3 / 0.4": lambda terms, p, t, shares=None: dict(zip(terms, [0.3, 0.3, 0.4, 0.0])),
    "initial-value normalisation 1 / L_i": lambda terms, p, t, shares=None: {k: 1 / max(v, 1e-12) for k, v in
                                                                            _norms(terms, p, t)[1].items()},
    "1 / g_i without rescaling": lambda terms, p, t, shares=None: {k: (1 / v if v else 0.0) for k, v in
                                                                   _norms(terms, p, t)[0].items()},
    "weights sum to 1": lambda terms, p, t, shares=None: _sum_to_one(balanced_scratch(terms, p, t, shares)),
    "proportional to g_i (inverted)": lambda terms, p, t, shares=None: _norms(terms, p, t)[0],
    "division by zero for a dead term": _inverse,
    "shares ignored": lambda terms, p, t, shares=None: balanced_scratch(terms, p, t),
    "shares applied inverted": lambda terms, p, t, shares=None: balanced_scratch(
        terms, p, t, None if shares is None else {k: 1 / max(v, 1e-3) for k, v in shares.items()}),
    "weights that carry gradients": lambda terms, p, t, shares=None: {
        k: torch.tensor(v, requires_grad=True) for k, v in balanced_scratch(terms, p, t, shares).items()},
    "a list of weights": lambda terms, p, t, shares=None: list(balanced_scratch(terms, p, t, shares).values()),
    "modifies pred in place": lambda terms, p, t, shares=None: (p.requires_grad_(True),
                                                                 balanced_scratch(terms, p, t, shares))[1],
}


# ---------------------------------------------------------------------------------------------
# 05 augmentation
# ---------------------------------------------------------------------------------------------
def augment_scratch(clean, seed):
    """Vectorised alternative: per-image exposure, gains (not luminance-normalised) and shot-noise level,
    Gaussian approximation of shot noise plus read noise, in linear light."""
    g = torch.Generator().manual_seed(seed)
    b = clean.shape[0]
    lin = D.srgb_to_linear(clean)
    exposure = torch.exp(torch.empty(b, 1, 1, 1).uniform_(math.log(0.02), math.log(0.3), generator=g))
    gains = torch.exp(0.3 * torch.randn(b, 3, 1, 1, generator=g))
    k = torch.exp(torch.empty(b, 1, 1, 1).uniform_(math.log(1e-4), math.log(1e-2), generator=g))
    sig = lin * exposure * gains
    noise = (k * sig).sqrt() * torch.randn(lin.shape, generator=g) + 1e-3 * torch.randn(lin.shape, generator=g)
    return D.linear_to_srgb((sig + noise).clamp(0, 1))


def _augment_no_clamp(clean, seed):
    g = torch.Generator().manual_seed(seed)
    return clean * (0.05 + 0.2 * torch.rand((), generator=g)) * torch.exp(0.3 * torch.randn(1, 3, 1, 1, generator=g)) \
        + 0.05 * torch.randn(clean.shape, generator=g)


def _augment_variant(clean, seed, *, srgb=False, back=True, one_draw=False, gains=True, gauss=False):
    """From scratch, with one switch per known mistake."""
    g = torch.Generator().manual_seed(seed)
    lin = clean.clone() if srgb else D.srgb_to_linear(clean)
    out = torch.empty_like(lin)
    for i in range(lin.shape[0]):
        if not (one_draw and i):
            u = torch.rand(2, generator=g, dtype=torch.float64)
            e = math.exp(math.log(0.01) + float(u[0]) * math.log(30))
            k = math.exp(math.log(1e-4) + float(u[1]) * math.log(100))
            gain = D.normalize_gains(torch.exp(0.3 * torch.randn(3, generator=g)).tolist()) if gains else (1, 1, 1)
        sig = lin[i] * e * torch.tensor(gain, dtype=lin.dtype).view(3, 1, 1)
        n = (0.003 if gauss else (k * sig).sqrt()) * torch.randn(sig.shape, generator=g) \
            + 1e-3 * torch.randn(sig.shape, generator=g)
        out[i] = (sig + n).clamp(0, 1)
    return out if (srgb or not back) else D.linear_to_srgb(out)


AUGMENT_DIAGNOSED = {  # variant -> the mistake the check must name
    "darkened in sRGB": (dict(srgb=True), "darkened sRGB values instead of linear light"),
    "not converted back to sRGB": (dict(back=False), "not converted back to sRGB"),
    "one draw for the whole batch": (dict(one_draw=True), "one random draw for the whole batch"),
    "fixed neutral light": (dict(gains=False), "a fixed (neutral) light colour"),
    "fixed-level Gaussian noise": (dict(gauss=True), "fixed-level Gaussian noise instead of shot noise"),
}

AUGMENT_WRONG = {
    **{name: (lambda kw: lambda x, seed: _augment_variant(x, seed, **kw))(kw)
       for name, (kw, _) in AUGMENT_DIAGNOSED.items()},
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
def noise_scratch(img, ref, patch_size=8, dark_thr=0.25, *, demean=True, dark=True, flat=True,
                  empty=float("nan"), unbiased=False, variance=False):
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
            if dark and float(py.mean()) >= dark_thr:
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


def _nw(**kw):
    return lambda i, r, patch_size=8, dark=0.25: noise_scratch(i, r, patch_size, dark, **kw)


NOISE_WRONG = {
    "offset counted as noise (no mean removal)": _nw(demean=False),
    "bright patches used too": _nw(dark=False),
    "textured patches used too": _nw(flat=False),
    "0 instead of nan": _nw(empty=0.0),
    "variance instead of std": _nw(variance=True),
    "std over the whole image": lambda i, r, patch_size=8, dark=0.25: float((i - r).std()),
    "patch_size ignored": lambda i, r, patch_size=8, dark=0.25: noise_scratch(i, r, 4, dark),
    "dark argument ignored": lambda i, r, patch_size=8, dark=0.25: noise_scratch(i, r, patch_size, 0.25),
}


# ---------------------------------------------------------------------------------------------
# 07 stalled terms
# ---------------------------------------------------------------------------------------------
def stalled(history, window=10, grad_tol=1e-8, min_rel_decrease=0.01, *, use_grad=True, use_values=True,
            whole=False, absolute=None, values_first=False, fixed_window=None, last_grad=False, mean_grad=False,
            last_pair=False, from_end=False, fixed_tols=False):
    window = fixed_window or window
    if fixed_tols:
        grad_tol, min_rel_decrease = 1e-8, 0.01
    out = {}
    for name, values in history.terms.items():
        grads = history.grad_norms.get(name, [])[-window:]
        grads = grads[-1:] if last_grad else grads
        level = (sum(grads) / len(grads) if mean_grad else max(grads)) if grads else None
        dead = use_grad and level is not None and level <= grad_tol
        vals = values if whole else values[-window:]
        vals = vals[-2:] if last_pair else vals
        plateau = False
        if use_values and len(vals) >= 2:
            drop = vals[0] - vals[-1]
            plateau = drop < (absolute if absolute is not None else
                              min_rel_decrease * abs(vals[-1] if from_end else vals[0]))
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
    "gradient check only": lambda h, window=10, **kw: stalled(h, window, use_values=False, **kw),
    "value check only": lambda h, window=10, **kw: stalled(h, window, use_grad=False, **kw),
    "whole history instead of the last window": lambda h, window=10, **kw: stalled(h, window, whole=True, **kw),
    "absolute threshold 1e-3": lambda h, window=10, **kw: stalled(h, window, absolute=1e-3, **kw),
    "plateau tested before dead": lambda h, window=10, **kw: stalled(h, window, values_first=True, **kw),
    "window argument ignored": lambda h, window=10, **kw: stalled(h, window, fixed_window=10, **kw),
    "a list of names": lambda h, window=10: list(stalled(h, window)),
    "only the last gradient norm": lambda h, window=10, **kw: stalled(h, window, last_grad=True, **kw),
    "mean instead of max gradient norm": lambda h, window=10, **kw: stalled(h, window, mean_grad=True, **kw),
    "only the last step's decrease": lambda h, window=10, **kw: stalled(h, window, last_pair=True, **kw),
    "decrease relative to the end": lambda h, window=10, **kw: stalled(h, window, from_end=True, **kw),
    "tolerance arguments ignored": lambda h, window=10, **kw: stalled(h, window, fixed_tols=True),
    "fails on short histories": _stalled_crash_short,
}


# ---------------------------------------------------------------------------------------------
CHECKS = {
    "balanced_weights": (C.check_balanced_weights, {"reference": C.reference_balanced_weights,
                                                    "from scratch": balanced_scratch,
                                                    "tensor weights, vectorised": balanced_torch}, BALANCE_WRONG),
    "augmentation": (C.check_augmentation, {"reference": C.reference_augment, "from scratch": augment_scratch},
                     AUGMENT_WRONG),
    "noise_estimator": (C.check_noise_estimator, {
        "reference": C.reference_noise_in_flat_dark_patches,
        "from scratch (population std, loops)": lambda i, r, patch_size=8, dark=0.25: noise_scratch(i, r, patch_size, dark),
        "from scratch (sample std)": lambda i, r, patch_size=8, dark=0.25: noise_scratch(i, r, patch_size, dark,
                                                                                        unbiased=True),
    }, NOISE_WRONG),
    "stalled_terms": (C.check_stalled_terms, {"reference": C.reference_find_stalled_terms,
                                              "from scratch": lambda h, window=10, **kw: stalled(h, window, **kw)},
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
    assert bool(result) and result.implemented and re.search(r"(all \d+ cases|the one case) passed", out)
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


# ---------------------------------------------------------------------------------------------
# diagnosis: each known mistake a check holds is rejected AND named (one mutation test per mistake)
# ---------------------------------------------------------------------------------------------
from lowlight_course.checks.balancing import BALANCE_MISTAKES  # noqa: E402
from lowlight_course.checks.noise import NOISE_MISTAKES  # noqa: E402
from lowlight_course.checks.plateaus import STALLED_MISTAKES  # noqa: E402

HELD = [(C.check_balanced_weights, m) for m in BALANCE_MISTAKES] + \
       [(C.check_noise_estimator, m) for m in NOISE_MISTAKES] + \
       [(C.check_stalled_terms, m) for m in STALLED_MISTAKES]


@pytest.mark.parametrize("check,mistake", HELD, ids=[f"{c.__name__}-{m.name}" for c, m in HELD])
def test_known_mistake_is_rejected_and_named(check, mistake):
    result = check(mistake.fn, verbose=False)
    assert not result.passed, f"{check.__name__} accepted {mistake.name!r}"
    assert mistake.name in result.mistakes[:2], (mistake.name, result.mistakes)  # among the best matches
    assert f"- {mistake.name}:" in result.message and "Reread Lecture" in result.message


@pytest.mark.parametrize("variant", list(AUGMENT_DIAGNOSED))
def test_augmentation_mistake_is_named(variant):
    kw, name = AUGMENT_DIAGNOSED[variant]
    result = C.check_augmentation(lambda x, seed: _augment_variant(x, seed, **kw), verbose=False)
    assert not result.passed and result.mistakes == [name], result.message


def test_augmentation_variant_without_mistakes_passes():
    assert C.check_augmentation(lambda x, seed: _augment_variant(x, seed), verbose=False).passed


def test_unknown_mistake_says_what_to_reread():
    result = C.check_noise_estimator(lambda i, r, patch_size=8, dark=0.25: 0.5 * noise_scratch(i, r, patch_size, dark),
                                     verbose=False)
    assert not result.passed and result.mistakes == []
    assert "none of the mistakes" in result.message and "Lecture 6" in result.message


# ---------------------------------------------------------------------------------------------
# "predict, then run" and the open tasks
# ---------------------------------------------------------------------------------------------
def test_share_prediction():
    m = C.measured_article_shares()
    assert m["histc"] == 0.0 and m["ssim"] > 0.8 and abs(sum(m.values()) - 1) < 1e-6
    assert C.check_share_prediction(lambda: {"mse": 0.05, "ssim": 0.95, "histc": 0.0}, verbose=False).passed
    wrong = C.check_share_prediction(lambda: {"mse": 0.3, "ssim": 0.3, "histc": 0.4}, verbose=False)
    assert not wrong.passed and "Why:" in wrong.message and "histc" in wrong.message
    assert not C.check_share_prediction(lambda: 0.3, verbose=False).passed


def test_generic_prediction_choices_and_numbers():
    assert C.check_prediction("p", lambda: "No ", "no", choices=("yes", "no"), verbose=False).passed
    assert not C.check_prediction("p", lambda: "maybe", "no", choices=("yes", "no"), verbose=False).passed
    assert C.check_prediction("p", lambda: 2.1, 2.0, tol=0.3, verbose=False).passed
    assert not C.check_prediction("p", lambda: 2.5, 2.0, tol=0.3, verbose=False).passed
    stub = C.check_prediction("p", lambda: (_ for _ in ()).throw(NotImplementedError("predict")), 1.0, verbose=False)
    assert not stub.implemented


def test_gray_world_and_gain_predictions():
    g = C.measured_gray_world()
    assert g["zero_at_clean"] == "no" and g["clean"] > 0.01
    assert C.check_gray_world_prediction(lambda: "no", verbose=False).passed
    assert not C.check_gray_world_prediction(lambda: "yes", verbose=False).passed
    r = C.measured_gain_ratio()
    assert 1.8 < r < 2.2
    assert C.check_gain_prediction(lambda: 2.0, verbose=False).passed
    assert not C.check_gain_prediction(lambda: 4.0, verbose=False).passed


def _wide(clean, seed):
    g = torch.Generator().manual_seed(seed)
    lin = D.srgb_to_linear(clean)
    out = torch.empty_like(lin)
    for i in range(lin.shape[0]):
        u = torch.rand(3, generator=g, dtype=torch.float64)
        gains = (1.0, 1.0, 1.0) if float(u[0]) < 0.4 else D.illuminant_from_cct(2000 + 8000 * float(u[1]))
        out[i] = (lin[i] * 0.1 * torch.tensor(gains).view(3, 1, 1)).clamp(0, 1)
    return D.linear_to_srgb(out)


def test_domain_coverage():
    assert C.check_domain_coverage(_wide, verbose=False).passed
    narrow = C.check_domain_coverage(C.reference_augment, verbose=False)  # jitter 0.3 falls short of tungsten
    assert not narrow.passed and "tungsten" in narrow.message or "warmest" in narrow.message
    only_casts = C.check_domain_coverage(lambda c, s: D.linear_to_srgb(D.srgb_to_linear(c) * torch.tensor(
        D.illuminant_from_cct(2000.0 if s % 2 else 10000.0)).view(1, 3, 1, 1) * 0.1), verbose=False)
    assert not only_casts.passed and "neutral" in only_casts.message


def _blur(x, sigma):
    import torch.nn.functional as F

    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    w = torch.exp(-t ** 2 / (2 * sigma ** 2))
    w = w / w.sum()
    x = F.pad(x, (r,) * 4, mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, w.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


@pytest.mark.parametrize("sigma,ok", [(1.5, True), (1.0, False), (2.5, False)])
def test_denoise_choice(sigma, ok):
    assert C.check_denoise_choice(lambda x: _blur(x, sigma).clamp(0, 1), verbose=False).passed is ok
    assert not C.check_denoise_choice(lambda x: x * 2, verbose=False).passed  # out of range


def test_weight_choice_and_fixed_setup():
    """The open tasks that train (a few seconds each, cached)."""
    assert C.check_weight_choice({"mse": 0.8, "ssim": 0.2, "hist": 0.0}, verbose=False).passed
    article = C.check_weight_choice({"mse": 0.3, "ssim": 0.3, "hist": 0.4}, verbose=False)
    assert not article.passed and "PSNR" in article.message
    assert not C.check_weight_choice({"mse": -1, "ssim": 0, "hist": 0}, verbose=False).passed
    fixed = {"lr": 3e-3, "ssim_data_range": 1.0, "hist": "soft"}
    assert C.check_fixed_setup(fixed, verbose=False).passed
    assert not C.check_fixed_setup(C.BROKEN_SETUP, verbose=False).passed
    assert not C.check_fixed_setup({**fixed, "hist": "histc"}, verbose=False).passed  # one fault left: dead
    dropped = C.check_fixed_setup({**fixed, "hist": "none"}, verbose=False)
    assert not dropped.passed and "dropped" in dropped.message
    assert not C.check_fixed_setup({**fixed, "lr": True}, verbose=False).passed


def test_stalled_prediction_uses_the_reference_on_the_given_history():
    from lowlight_course.checks.plateaus import _history

    h = _history({"mse": [1.0 - 0.05 * i for i in range(12)], "histc": [0.3] * 12},
                 {"mse": [0.1] * 12, "histc": [0.0] * 12})
    assert C.check_stalled_prediction(lambda: {"mse": "healthy", "histc": "dead"}, h, verbose=False).passed
    assert not C.check_stalled_prediction(lambda: {"mse": "healthy", "histc": "plateau"}, h, verbose=False).passed
