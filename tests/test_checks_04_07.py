"""Mutation tests for the checks of exercises 04-07: each accepts correct implementations (the
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
