"""Loss-landscape slices around a trained model, along filter-normalised random directions.

Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018
(arXiv:1712.09913): to look at a loss ``L(theta)`` of millions of parameters, evaluate it on a line
``theta + a d`` or a plane ``theta + a d1 + b d2`` through the trained parameters ``theta``. A random
direction must be scaled like the network, or the picture says more about the direction than about
the loss: *filter normalisation* draws ``d`` from a Gaussian and rescales each filter (each output
unit of a convolution or linear layer) of ``d`` to the norm of the same filter in ``theta``. Biases
and other 1-D parameters get a zero direction (the paper's choice), so scale-invariant re-scalings of
a layer do not distort the slice.

* :func:`filter_normalized_direction`: one such direction, seeded, as a list of tensors.
* :func:`loss_slice_1d`: ``L(theta + a d)`` for a grid of ``a``.
* :func:`loss_slice_2d`: ``L(theta + a d1 + b d2)`` on a grid.
* :func:`flatness`: a one-number summary of a 1-D slice (how much the loss rises at ``|a| = r``).

The model's parameters are restored after every evaluation (even on error).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["filter_normalized_direction", "loss_slice_1d", "loss_slice_2d", "flatness"]


def _params(model: nn.Module) -> list[torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    params = [p for p in model.parameters()]
    if not params:
        raise ValueError("model has no parameters: there is no landscape to slice.")
    return params


def filter_normalized_direction(model: nn.Module, seed: int = 0, *, ignore_1d: bool = True) -> list[torch.Tensor]:
    """A random direction in parameter space, filter-normalised (Li et al. 2018, section 4).

    For each parameter tensor with 2 or more dimensions, draw ``d ~ N(0, 1)`` of the same shape and
    rescale every filter ``d[i]`` (slice along dimension 0) to ``||theta[i]|| / ||d[i]||`` times
    itself. 1-D parameters (biases) get zeros when ``ignore_1d`` is True (the paper's choice), else
    the same treatment as a single filter.

    Returns:
        A list of tensors matching ``model.parameters()`` (same shapes, devices and dtypes).

    Example:
        >>> net = nn.Conv2d(3, 4, 3)
        >>> d = filter_normalized_direction(net, seed=0)
        >>> torch.allclose(d[0].flatten(1).norm(dim=1), net.weight.flatten(1).norm(dim=1))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for p in _params(model):
        w = p.detach()
        d = torch.randn(w.shape, generator=gen, dtype=torch.float32).to(device=w.device, dtype=w.dtype)
        if w.dim() <= 1:
            if ignore_1d:
                d = torch.zeros_like(w)
            else:
                d = d * (w.norm() / d.norm().clamp_min(1e-12))
        else:
            wn = w.flatten(1).norm(dim=1)
            dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
            d = d * (wn / dn).view(-1, *([1] * (w.dim() - 1)))
        out.append(d)
    return out


def _check_direction(params, direction, name):
    if not isinstance(direction, (list, tuple)) or len(direction) != len(params):
        raise ValueError(f"{name} must be a list of {len(params)} tensors (one per model parameter), "
                         f"as returned by filter_normalized_direction(model).")
    for p, d in zip(params, direction):
        if not isinstance(d, torch.Tensor) or d.shape != p.shape:
            raise ValueError(f"{name} does not match the model's parameters (shape "
                             f"{getattr(d, 'shape', None)} vs {tuple(p.shape)}): build it from this model.")


def _check_coords(name, values) -> list[float]:
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, e.g. torch.linspace(-1, 1, 11).") from None
    if not vals:
        raise ValueError(f"{name} is empty.")
    return vals


@torch.no_grad()
def _evaluate(model, loss_fn, batch, params, origin, directions, coeffs) -> float:
    for p, o, *ds in zip(params, origin, *directions):
        p.copy_(o)
        for c, d in zip(coeffs, ds):
            if c:
                p.add_(d, alpha=c)
    value = loss_fn(model, batch)
    value = float(value) if not isinstance(value, torch.Tensor) else float(value.detach().float())
    return value


def _slice(model, loss_fn, batch, directions, grids):
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a callable loss_fn(model, batch) -> scalar.")
    params = _params(model)
    for i, d in enumerate(directions):
        _check_direction(params, d, f"direction {i + 1}")
    origin = [p.detach().clone() for p in params]
    was_training = model.training
    model.eval()
    try:
        if len(grids) == 1:
            return torch.tensor([_evaluate(model, loss_fn, batch, params, origin, directions, (a,))
                                 for a in grids[0]], dtype=torch.float64)
        return torch.tensor([[_evaluate(model, loss_fn, batch, params, origin, directions, (a, b))
                              for a in grids[0]] for b in grids[1]], dtype=torch.float64)
    finally:
        with torch.no_grad():
            for p, o in zip(params, origin):
                p.copy_(o)
        model.train(was_training)


def loss_slice_1d(model: nn.Module, loss_fn: Callable, batch, alphas: Sequence[float],
                  direction: list[torch.Tensor] | None = None, seed: int = 0) -> torch.Tensor:
    """``L(theta + a d)`` for each ``a`` in ``alphas``: a (len(alphas),) float64 tensor.

    Args:
        model: the trained network (its parameters are restored afterwards).
        loss_fn: ``loss_fn(model, batch) -> scalar`` (called under ``torch.no_grad()``, model in eval
            mode), e.g. ``lambda m, b: mse(m(b[0]), b[1])``.
        batch: whatever ``loss_fn`` needs, typically a fixed ``(low, high)`` pair of tensors.
        alphas: step sizes along ``d`` (0 is the trained model).
        direction: from :func:`filter_normalized_direction`; drawn with ``seed`` when None.

    Example:
        >>> net = nn.Linear(2, 1); x = torch.randn(8, 2)
        >>> f = lambda m, b: (m(b) ** 2).mean()
        >>> s = loss_slice_1d(net, f, x, [-1.0, 0.0, 1.0])
        >>> bool(torch.isclose(s[1], f(net, x).double()))
        True
    """
    grid = _check_coords("alphas", alphas)
    d = filter_normalized_direction(model, seed) if direction is None else direction
    return _slice(model, loss_fn, batch, [d], [grid])


def loss_slice_2d(model: nn.Module, loss_fn: Callable, batch, alphas: Sequence[float], betas: Sequence[float],
                  directions: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None, seed: int = 0
                  ) -> torch.Tensor:
    """``L(theta + a d1 + b d2)`` on the grid: a (len(betas), len(alphas)) float64 tensor.

    Row ``j`` holds ``b = betas[j]``, column ``i`` holds ``a = alphas[i]`` (ready for
    ``plt.contour(alphas, betas, Z)``). ``directions`` default to two filter-normalised directions
    drawn with seeds ``seed`` and ``seed + 1``. See :func:`loss_slice_1d` for the other arguments.
    """
    ga, gb = _check_coords("alphas", alphas), _check_coords("betas", betas)
    if directions is None:
        directions = (filter_normalized_direction(model, seed), filter_normalized_direction(model, seed + 1))
    if len(directions) != 2:
        raise ValueError("directions must be a pair (d1, d2).")
    return _slice(model, loss_fn, batch, list(directions), [ga, gb])


def flatness(alphas: Sequence[float], values, radius: float | None = None) -> float:
    """Relative rise of a 1-D slice: ``(mean L at |a| = radius) / L(0) - 1``.

    ``radius`` defaults to the largest ``|a|`` in ``alphas``; the values at ``a = +-radius``
    (whichever exist) are averaged. Near 0 the loss does not change along the direction (flat: a
    plateau or a wide minimum); large values mean a sharp valley. ``L(0) = 0`` gives ``inf`` for
    any rise.

    Example:
        >>> flatness([-1, 0, 1], [2.0, 1.0, 4.0])
        2.0
    """
    a = [float(v) for v in alphas]
    v = [float(x) for x in values]
    if len(a) != len(v) or 0.0 not in a:
        raise ValueError("alphas and values must have the same length and alphas must contain 0.")
    r = max(abs(x) for x in a) if radius is None else float(radius)
    ends = [vi for ai, vi in zip(a, v) if abs(abs(ai) - r) < 1e-12]
    if not ends:
        raise ValueError(f"no alpha with |alpha| = {r}.")
    centre = v[a.index(0.0)]
    rise = sum(ends) / len(ends) - centre
    if centre == 0.0:
        return 0.0 if rise == 0.0 else float("inf") if rise > 0 else float("-inf")
    return rise / abs(centre)
