"""Check for exercise 07: dead terms and plateaus in a training history. See :mod:`lowlight_course.checks`."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._core import CheckResult, _Fail, _call, _run

__all__ = ['check_stalled_terms', 'reference_find_stalled_terms']


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
    ], verbose)
