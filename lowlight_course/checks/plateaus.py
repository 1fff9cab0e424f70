"""Checks for exercise 07: dead terms and plateaus in a training history. See :mod:`lowlight_course.checks`.

- :func:`check_stalled_terms`: the build, ``find_stalled_terms(history, window=10, grad_tol=1e-8,
  min_rel_decrease=0.01)``;
- :func:`check_stalled_prediction`: the prediction (what the detector will say about the article's loss);
- :func:`check_fixed_setup`: the open task (find and fix what stalls a given broken training setup).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

import functools

from ._core import CheckResult, Mistake, _Fail, _call, _run
from .balancing import check_prediction

__all__ = ["check_stalled_terms", "reference_find_stalled_terms", "STALLED_MISTAKES", "check_stalled_prediction",
           "check_fixed_setup", "train_setup", "BROKEN_SETUP", "SETUP_TARGETS"]

REREAD_07 = "Lecture 7, section 2 (a plateau detector) and section 3 (five broken runs)"


# ---------------------------------------------------------------------------------------------
# 07: dead terms and plateaus in a training history
# ---------------------------------------------------------------------------------------------
def reference_find_stalled_terms(history, window: int = 10, grad_tol: float = 1e-8,
                                 min_rel_decrease: float = 0.01) -> dict:
    """Reference for exercise 07. For each term of ``history.terms``:

    * ``"dead"`` when its last ``window`` recorded gradient norms are all <= ``grad_tol``;
    * else ``"plateau"`` when over its last ``window`` recorded values it fell by less than
      ``min_rel_decrease`` of its value at the start of that window (or rose);
    * healthy terms are left out.
    """
    out = {}
    for name, values in history.terms.items():
        grads = history.grad_norms.get(name, [])[-window:]
        if grads and max(abs(float(g)) for g in grads) <= grad_tol:
            out[name] = "dead"
            continue
        vals = [float(v) for v in values[-window:]]
        if len(vals) < 2:
            continue
        start, end = vals[0], vals[-1]
        if start - end < min_rel_decrease * abs(start):
            out[name] = "plateau"
    return out


def _history(terms: dict, grads: dict, grad_every: int = 1):
    from ..train import History

    n = len(next(iter(terms.values()))) if terms else 0
    h = History()
    h.steps = list(range(n))
    h.terms = {k: [float(x) for x in v] for k, v in terms.items()}
    h.loss = [sum(v[i] for v in h.terms.values()) for i in range(n)]
    h.grad_norm_steps = list(range(0, n, grad_every))
    h.grad_norms = {k: [float(x) for x in v] for k, v in grads.items()}
    return h


def _stalled(history, window=10, grad_tol=1e-8, min_rel_decrease=0.01, *, last_only=False, grad_mean=False,
             from_end=False, ignore_tol=False, use_grad=True, use_values=True, whole=False, values_first=False,
             fixed_window=None, last_step=False):
    """A parametrised detector: the reference with defaults, each known mistake by one switch."""
    if ignore_tol:
        grad_tol, min_rel_decrease = 1e-8, 0.01
    window = fixed_window or window
    out = {}
    for name, values in history.terms.items():
        grads = [abs(float(g)) for g in history.grad_norms.get(name, [])[-window:]]
        if last_only:
            grads = grads[-1:]
        level = (sum(grads) / len(grads) if grad_mean else max(grads)) if grads else None
        dead = use_grad and level is not None and level <= grad_tol
        vals = [float(v) for v in (values if whole else values[-window:])]
        if last_step:
            vals = vals[-2:]
        plateau = False
        if use_values and len(vals) >= 2:
            start, end = vals[0], vals[-1]
            plateau = start - end < min_rel_decrease * abs(end if from_end else start)
        if values_first and plateau:
            out[name] = "plateau"
        elif dead:
            out[name] = "dead"
        elif plateau:
            out[name] = "plateau"
    return out


def _sm(name, why, **switches):
    return Mistake(name, why, REREAD_07, fn=lambda history, window=10, grad_tol=1e-8, min_rel_decrease=0.01: _stalled(
        history, window, grad_tol, min_rel_decrease, **switches))


STALLED_MISTAKES = (
    _sm("only the last gradient norm tested", "one zero reading (a step that happened to give no gradient) is not a "
        "dead term: every reading in the window must be at or below grad_tol.", last_only=True),
    _sm("only the last step's decrease tested", "a term can fall steadily by less than the threshold per step and a "
        "lot over the window: compare the first and the last value of the window.", last_step=True),
    _sm("the mean instead of the max gradient norm", "a term with a few real gradients in the window is alive; the "
        "mean hides them under the zeros, the max does not.", grad_mean=True),
    _sm("the decrease measured relative to the end", "the relative decrease is (start - end) / |start|: relative to "
        "where the window started.", from_end=True),
    _sm("grad_tol and min_rel_decrease ignored", "use the tolerances the caller passes, not fixed numbers.",
        ignore_tol=True),
    _sm("the gradient check only", "a term with a gradient can still stop improving: test the values too.",
        use_values=False),
    _sm("the value check only", "a dead term's value can still move (the other terms move the model): test the "
        "gradient norms first.", use_grad=False),
    _sm("the whole history instead of the last window", "an early drop hides a later stall: look at the last "
        "`window` records only.", whole=True),
    _sm("plateau tested before dead", "a term without gradient is dead whatever its values do: test dead first.",
        values_first=True),
    _sm("the window argument ignored", "use the window the caller passes.", fixed_window=10),
)


def check_stalled_terms(find_stalled_terms: Callable, verbose: bool = True) -> CheckResult:
    """Check ``find_stalled_terms(history, window=10) -> {name: "dead" | "plateau"}`` on synthetic
    :class:`~lowlight_course.train.History` objects: a healthy decaying term is not flagged; a term
    with zero gradient is ``"dead"`` even when its value still changes; a term that fell early and
    then flattened is a ``"plateau"`` (only the last ``window`` records count); a healthy term at a
    tiny scale is not flagged (the decrease is relative); a rising term is a plateau; short and
    empty histories work. Rejects: checking only the gradient or only the values, looking at the
    whole history, an absolute threshold, and returning a list instead of a dict."""
    n = 40
    t = torch.arange(n, dtype=torch.float64)
    healthy = (0.05 * torch.exp(-t / 15) + 0.001).tolist()
    healthy_g = (0.3 * torch.exp(-t / 30)).tolist()

    def get(history, **kw):
        out = _call(find_stalled_terms, history, **kw)
        if not isinstance(out, dict):
            raise _Fail(f"returned {type(out).__name__}, expected a dict name -> 'dead' or 'plateau'.")
        return out

    def expect(history, want, what, **kw):
        got = get(history, **kw)
        if got != want:
            raise _Fail(f"{what}: got {got}, expected {want}.")

    def dead_vs_healthy():
        h = _history({"mse": healthy, "histc": [3e-4] * n}, {"mse": healthy_g, "histc": [0.0] * n})
        expect(h, {"histc": "dead"}, "a healthy term and a constant term with zero gradient")

    def dead_but_moving():
        moving = (3e-4 * torch.exp(-t / 20)).tolist()  # its value changes with the model, no gradient
        h = _history({"mse": healthy, "histc": moving}, {"mse": healthy_g, "histc": [0.0] * n})
        expect(h, {"histc": "dead"}, "a term whose value falls but whose gradient is 0")

    def plateau():
        flat = [0.2 * math.exp(-i / 3) + 0.01 if i < 15 else 0.2 * math.exp(-5) + 0.01 for i in range(n)]
        h = _history({"mse": healthy, "ssim": flat}, {"mse": healthy_g, "ssim": [0.05] * n})
        expect(h, {"ssim": "plateau"}, "a term that fell during 15 steps and then stayed flat")

    def tiny_scale():
        small = (1e-5 * torch.exp(-t / 10)).tolist()
        h = _history({"hist": small}, {"hist": (1e-4 * torch.ones(n)).tolist()})
        expect(h, {}, "a healthy term of size 1e-5 (falling by 60 % per window)")

    def rising():
        up = (0.01 + 0.001 * t).tolist()
        h = _history({"mse": healthy, "tv": up}, {"mse": healthy_g, "tv": [0.1] * n})
        expect(h, {"tv": "plateau"}, "a term that rises")

    def sparse_grads():
        h = _history({"mse": healthy, "histc": [3e-4] * n},
                     {"mse": healthy_g[::5], "histc": [0.0] * (n // 5)}, grad_every=5)
        expect(h, {"histc": "dead"}, "gradient norms recorded every 5 steps only")

    def window_arg():
        flat = [0.1 * math.exp(-i / 4) if i < 30 else 0.1 * math.exp(-30 / 4) for i in range(n)]
        h = _history({"a": flat}, {"a": [0.1] * n})
        expect(h, {"a": "plateau"}, "flat for the last 10 records, window=8", window=8)
        expect(h, {}, "the same history with window=20 (still falling at its start)", window=20)

    def one_zero_reading():
        g = list(healthy_g)
        g[-1] = 0.0  # one step without gradient, the rest alive
        h = _history({"mse": healthy}, {"mse": g})
        expect(h, {}, "a healthy term whose last gradient norm happens to be 0")

    def steady_small_steps():
        steady = [1.0 - 0.004 * i for i in range(n)]  # 0.4 % per step, about 4 % per window
        h = _history({"l1": steady}, {"l1": [0.1] * n})
        expect(h, {}, "a term falling by 0.4 % per step (about 4 % per window)")

    def spiky_grads():
        g = [0.0] * n
        g[-3] = 5e-3  # one real gradient in the window
        h = _history({"tv": healthy}, {"tv": g})
        expect(h, {}, "zero gradient norms but one of 5e-3, grad_tol=1e-3", grad_tol=1e-3)

    def tolerances():
        halves = [1.0 * (0.95 ** i) for i in range(n)]  # falls about 40 % per window
        h = _history({"a": halves, "b": healthy}, {"a": [1e-4] * n, "b": healthy_g})
        expect(h, {"a": "dead"}, "gradient norms of 1e-4 with grad_tol=1e-3", grad_tol=1e-3)
        expect(h, {"a": "plateau", "b": "plateau"}, "a 40 % fall with min_rel_decrease=0.5",
               min_rel_decrease=0.5)

    def relative_to_start():
        fall = [1.0 - 0.045 * min(i, 10) if i < 30 else 1.0 for i in range(n)]
        fall = [1.0] * 30 + [1.0 - 0.04 * i for i in range(10)]  # 1.0 -> 0.64 over the last window
        h = _history({"a": fall}, {"a": [0.1] * n})
        expect(h, {"a": "plateau"}, "a fall from 1.0 to 0.64 with min_rel_decrease=0.4 (36 % of the start)",
               min_rel_decrease=0.4)

    def short_and_empty():
        h = _history({"mse": healthy[:4]}, {"mse": healthy_g[:4]})
        expect(h, {}, "a 4-step healthy history (shorter than the window)")
        expect(_history({}, {}), {}, "an empty history")

    return _run("check_stalled_terms", find_stalled_terms, [
        ("a dead term next to a healthy one", dead_vs_healthy,
         "dead: every gradient norm in the last `window` records is <= grad_tol"),
        ("dead means no gradient, even if the value moves", dead_but_moving,
         "test the gradient norms first, then the values"),
        ("a term that stopped decreasing", plateau, "compare the first and last value of the last `window` records"),
        ("a healthy term at a tiny scale", tiny_scale, "use a relative decrease: (start - end) / |start|"),
        ("a rising term is a plateau", rising, "a rise is 'not decreasing' too"),
        ("gradient norms recorded every few steps", sparse_grads, "history.grad_norms[name] is its own list"),
        ("the window argument", window_arg, "use the last `window` records only"),
        ("short and empty histories", short_and_empty, "use what there is when fewer than `window` records exist"),
        ("one zero gradient reading is not dead", one_zero_reading, "dead needs every reading in the window at 0"),
        ("small steps add up over the window", steady_small_steps, "compare the window's first and last value"),
        ("a few real gradients keep a term alive", spiky_grads, "the largest reading decides"),
        ("the grad_tol and min_rel_decrease arguments", tolerances, "use the tolerances passed in"),
        ("the decrease is relative to the window's start", relative_to_start, "(start - end) / |start|"),
    ], verbose, mistakes=STALLED_MISTAKES, reference=reference_find_stalled_terms, reread=REREAD_07)


# ---------------------------------------------------------------------------------------------
# prediction: what will the detector say about the article's loss?
# ---------------------------------------------------------------------------------------------
def check_stalled_prediction(predict: Callable, history, verbose: bool = True) -> CheckResult:
    """Exercise 07's prediction: ``predict() -> {term: "dead" | "plateau" | "healthy"}`` for every
    term of ``history``, against :func:`reference_find_stalled_terms` on it (terms it leaves out are
    "healthy")."""
    found = reference_find_stalled_terms(history)
    truth = {name: found.get(name, "healthy") for name in history.terms}
    return check_prediction(
        "check_stalled_prediction", predict, truth, choices=("dead", "plateau", "healthy"), verbose=verbose,
        explain="torch.histc counts pixels into bins: counting has no derivative, so its term has no gradient "
                "from the first step (dead), whatever its weight. MSE and SSIM have gradients; whether one is "
                "on a plateau depends on the run's length and learning rate, which is why the detector reads "
                "the recent window (Lecture 7, sections 2 and 3).")


# ---------------------------------------------------------------------------------------------
# open task: find and fix a broken setup
# ---------------------------------------------------------------------------------------------
#: the broken setup of exercise 07's open task (three things wrong).
BROKEN_SETUP = {"lr": 1e-5, "ssim_data_range": 255.0, "hist": "histc"}
#: targets for :func:`check_fixed_setup`: nothing stalled (window 10) and the loss down to this fraction.
SETUP_TARGETS = {"final_fraction": 0.5, "window": 10}
_SETUP_KEYS = {"lr": (float, int), "ssim_data_range": (float, int), "hist": (str,)}


def _validate_setup(setup):
    if not isinstance(setup, dict) or set(setup) != set(_SETUP_KEYS):
        raise ValueError(f"a setup is a dict with the keys {sorted(_SETUP_KEYS)}, like BROKEN_SETUP; got {setup!r}.")
    lr, dr, hist = setup["lr"], setup["ssim_data_range"], setup["hist"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < float(lr) <= 1:
        raise ValueError(f"lr must be a number in (0, 1], got {lr!r}.")
    if isinstance(dr, bool) or not isinstance(dr, (int, float)) or not float(dr) > 0:
        raise ValueError(f"ssim_data_range must be a positive number, got {dr!r}.")
    if hist not in ("histc", "soft", "none"):
        raise ValueError(f"hist must be 'histc', 'soft' or 'none', got {hist!r}.")
    return float(lr), float(dr), hist


@functools.lru_cache(maxsize=8)
def _train_setup_cached(lr: float, data_range: float, hist: str):
    from torch import nn

    from .. import data as D
    from ..losses import HistogramLoss, mse, ssim
    from ..models import seed_everything
    from ..pitfalls import histogram_loss_histc
    from ..train import fit

    low, high = D.make_pairs(16, 32, "outdoor_daylight", seed=0)
    seed_everything(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1))
    soft = HistogramLoss(bins=16)

    def loss(pred, target, low_):
        terms = {"mse": 0.3 * mse(pred, target), "ssim": 0.3 * (1 - ssim(pred, target, data_range=data_range))}
        if hist == "histc":
            terms["hist"] = 0.4 * histogram_loss_histc(pred, target)
        elif hist == "soft":
            terms["hist"] = 0.4 * soft(pred, target)
        return terms

    import warnings

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same history whatever the machine's thread count (and no oversubscription)
    try:
        with warnings.catch_warnings():  # the data-range warning would repeat at every step; the detector shows it
            warnings.simplefilter("ignore")
            return fit(net, loss, (low, high), steps=60, batch_size=8, lr=lr, seed=0, grad_norm_every=1,
                       progress=False, device="cpu", on_interrupt="raise")  # cached: never keep a half run
    finally:
        torch.set_num_threads(threads)


def train_setup(setup: dict):
    """Train exercise 07's fixed run (a two-layer conv net, 16 daylight pairs of 32 px, 60 steps of
    Adam, seed 0, CPU; loss ``0.3 MSE + 0.3 (1 - SSIM(data_range)) + 0.4 histogram``) with ``setup``
    (keys ``lr``, ``ssim_data_range``, ``hist`` in ``"histc" | "soft" | "none"``) and return its
    :class:`~lowlight_course.train.History` (one CPU thread, so the same history on every machine; cached
    per setup; a few seconds)."""
    lr, dr, hist = _validate_setup(setup)
    return _train_setup_cached(lr, dr, hist)


def check_fixed_setup(fixed_setup, verbose: bool = True) -> CheckResult:
    """Exercise 07's open task: ``fixed_setup`` (a dict like :data:`BROKEN_SETUP`, or a function
    returning one) must train (:func:`train_setup`) with no term dead or on a plateau over the last
    10 records (:func:`reference_find_stalled_terms`), its loss down to at most half of its first
    value, and a histogram term still in the loss (dropping a term is not fixing it)."""
    fn = fixed_setup if callable(fixed_setup) else (lambda: fixed_setup)

    def case():
        setup = _call(fn, what="your setup")
        try:
            h = train_setup(setup)
        except ValueError as exc:
            raise _Fail(str(exc)) from None
        problems = []
        stalled = reference_find_stalled_terms(h, window=SETUP_TARGETS["window"])
        if stalled:
            problems.append(f"stalled terms {stalled}")
        frac = h.loss[-1] / h.loss[0] if h.loss and h.loss[0] else float("nan")
        if not frac <= SETUP_TARGETS["final_fraction"]:
            problems.append(f"the loss ends at {frac:.0%} of its first value, want <= "
                            f"{SETUP_TARGETS['final_fraction']:.0%}")
        if setup["hist"] == "none":
            problems.append("the histogram term was dropped: make it work instead")
        if problems:
            raise _Fail(f"with {setup}: " + "; ".join(problems) + ".")

    return _run("check_fixed_setup", fn, [
        ("nothing stalled, the loss halved, every term kept", case, ""),
    ], verbose, timeout=120.0)
