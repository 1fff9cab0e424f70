"""Figures and widgets for the course.

Every plotting function returns a :class:`matplotlib.figure.Figure` and detaches it from pyplot
(``plt.close``), so figures never pile up (no "more than 20 figures" warning, no leaks under the Agg
backend in tests) and a figure is shown exactly once: when it is the cell's last expression, or
with ``display(fig)``. ``fig.savefig(...)`` works as usual.

:func:`sweep_explorer` builds an ipywidgets explorer over *precomputed* results, so moving a slider
never trains anything; it also works headless (papermill, nbval), where it simply renders its first
state.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data.color import REC709_LUMA

__all__ = ["to_numpy_image", "show_images", "compare_row", "plot_history", "plot_histograms",
           "pareto_front", "pareto_plot", "sweep_explorer"]


def _done(fig):
    """Detach ``fig`` from pyplot and return it (shown once, when displayed)."""
    plt.close(fig)
    return fig


def to_numpy_image(img) -> np.ndarray:
    """(3, H, W) / (1, H, W) / (H, W) tensor or array -> (H, W, 3) or (H, W) float array in [0, 1]."""
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu().numpy()
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3):  # the course's convention: channels first
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"Cannot show an array of shape {a.shape} as an image; pass (3, H, W) or (H, W).")
    return np.clip(np.nan_to_num(a), 0.0, 1.0)


def _flatten_images(images) -> list:
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return [images]
    out = []
    for im in images:
        out.extend(_flatten_images(im) if (getattr(im, "ndim", 0) == 4) else [im])
    return out


def show_images(images, titles=None, ncols: int | None = None, *, size: float = 2.6,
                suptitle: str | None = None, cmap: str = "gray", vmax: float | None = None):
    """Show images in a grid; return the Figure.

    Args:
        images: a (B, 3, H, W) tensor, or a list of (3, H, W) / (H, W) tensors or arrays (a
            (B, ...) entry contributes B images). Colour images are clipped to [0, 1].
        titles: one title per image (or ``None``).
        ncols: columns (default: all in one row, at most 6).
        size: inches per panel.
        cmap, vmax: used for single-channel images (error maps, curve maps).
    """
    imgs = _flatten_images(images)
    if not imgs:
        raise ValueError("show_images got no images.")
    titles = list(titles) if titles is not None else [None] * len(imgs)
    if len(titles) != len(imgs):
        raise ValueError(f"Got {len(imgs)} images but {len(titles)} titles.")
    ncols = ncols or min(len(imgs), 6)
    nrows = int(np.ceil(len(imgs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, imgs, titles):
        if isinstance(img, torch.Tensor):
            raw = img.detach().float().cpu()
            single = raw.dim() == 2 or (raw.dim() == 3 and raw.shape[0] == 1)
        else:
            raw = np.asarray(img)
            single = raw.ndim == 2
        if single:
            a = np.asarray(raw.squeeze() if isinstance(raw, torch.Tensor) else raw, dtype=np.float32)
            im = ax.imshow(a, cmap=cmap, vmin=0.0, vmax=vmax if vmax is not None else max(float(a.max()), 1e-8))
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        else:
            ax.imshow(to_numpy_image(raw))
        if title:
            ax.set_title(str(title), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return _done(fig)


def compare_row(low, pred, target, error_map: bool = True, *, titles=None, index: int = 0,
                size: float = 2.8, metrics: bool = True):
    """Low input, prediction, target (and ``|pred - target|`` averaged over channels); return the Figure.

    Batches are accepted; ``index`` picks the image. With ``metrics`` the prediction's title shows
    its PSNR against the target.
    """
    def pick(x):
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            return x[index]
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    low, pred, target = pick(low), pick(pred), pick(target)
    panels = [low, pred, target]
    names = list(titles) if titles else ["low-light input", "prediction", "target"]
    if metrics and titles is None:
        mse = float(((pred.float().clamp(0, 1) - target.float()) ** 2).mean())
        names[1] += f"\nPSNR {10 * np.log10(1.0 / max(mse, 1e-12)):.2f} dB"
    if error_map:
        err = (pred.float().clamp(0, 1) - target.float()).abs().mean(0)
        panels.append(err)
        if len(names) < 4:
            names.append("|pred - target|")
    return show_images(panels, names[:len(panels)], ncols=len(panels), size=size, cmap="magma")


def _histories(history) -> dict:
    if isinstance(history, Mapping) and not hasattr(history, "terms"):
        return dict(history)
    return {"": history}


def plot_history(history, terms=None, log: bool = True, *, grad_norms: bool = True, smooth: int = 1,
                 size=(5.0, 3.4), title: str | None = None):
    """Loss terms (left) and their gradient norms (right) against the step; return the Figure.

    Args:
        history: a :class:`~lowlight_course.train.History`, or a mapping ``label -> History`` to
            compare runs.
        terms: which terms to draw (default: every term, plus the total when there are several).
        log: logarithmic y axes (terms that differ by orders of magnitude stay readable).
        grad_norms: add the gradient-norm panel (when the history has any).
        smooth: moving-average window over recorded steps.
    """
    runs = _histories(history)
    show_grads = grad_norms and any(h.grad_norms for h in runs.values())
    ncols = 2 if show_grads else 1
    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    ax_v = axes[0, 0]

    def sm(v):
        v = np.asarray(v, dtype=float)
        if smooth > 1 and len(v) >= smooth:
            return np.convolve(v, np.ones(smooth) / smooth, mode="valid")
        return v

    for label, h in runs.items():
        names = list(terms) if terms is not None else list(h.terms)
        if terms is None and len(h.terms) > 1:
            names = ["total", *names]
        for name in names:
            series = h.loss if name == "total" else h.series(name)
            y = sm(series)
            x = np.asarray(h.steps[len(h.steps) - len(y):])
            ax_v.plot(x, np.abs(y) if log else y, label=f"{label} {name}".strip(),
                      lw=2 if name == "total" else 1.3)
        if show_grads and h.grad_norms:
            ax_g = axes[0, 1]
            for name in (list(terms) if terms is not None else list(h.grad_norms)):
                if name not in h.grad_norms:
                    continue
                y = np.asarray(h.grad_norms[name], dtype=float)
                if log:
                    y = np.where(y > 0, y, np.nan)  # a dead term (norm 0) leaves a gap, noted below
                ax_g.plot(h.grad_norm_steps, y, marker=".", label=f"{label} {name}".strip())
                if log and np.all(np.asarray(h.grad_norms[name]) == 0):
                    ax_g.plot([], [], " ", label=f"{label} {name}: gradient is 0 (dead term)".strip())
    ax_v.set_xlabel("step")
    ax_v.set_ylabel("|value|" if log else "value")
    ax_v.set_title("loss terms (weighted)")
    if show_grads:
        ax_g = axes[0, 1]
        ax_g.set_xlabel("step")
        ax_g.set_ylabel("gradient L2 norm")
        ax_g.set_title("gradient norm per term (model parameters)")
    for ax in axes.flat:
        if log:
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _done(fig)


def plot_histograms(images, labels=None, *, bins: int = 64, channels: str = "luma", log: bool = False,
                    value_range=(0.0, 1.0), density: bool = True, title: str | None = None,
                    size=(5.5, 3.4)):
    """Overlay intensity histograms of several images (or batches); return the Figure.

    Args:
        images: a list of tensors (3, H, W) or (B, 3, H, W) (a batch is pooled), or one tensor.
        labels: one legend label per entry.
        channels: ``"luma"`` (Rec. 709 luminance of the sRGB values), ``"rgb"`` (one panel per
            channel), or ``"mean"`` (channel mean).
        log: log-scaled counts (dark, noisy tails become visible).
    """
    if isinstance(images, (torch.Tensor, np.ndarray)):
        images = [images]
    images = list(images)
    labels = list(labels) if labels is not None else [f"image {i}" for i in range(len(images))]
    if len(labels) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(labels)} labels.")
    if channels not in ("luma", "rgb", "mean"):
        raise ValueError(f"channels must be 'luma', 'rgb' or 'mean', got {channels!r}.")
    panels = ["red", "green", "blue"] if channels == "rgb" else [channels]
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels) * (0.7 if len(panels) > 1 else 1),
                                                      size[1]), squeeze=False)
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    for img, label in zip(images, labels):
        t = torch.as_tensor(np.asarray(img) if not isinstance(img, torch.Tensor) else img).detach().float().cpu()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4:
            raise ValueError(f"plot_histograms expects (3, H, W) or (B, 3, H, W) images, got {tuple(t.shape)}.")
        if channels == "luma" and t.shape[1] == 3:
            vals = [sum(w * t[:, c] for c, w in enumerate(REC709_LUMA))]
        elif channels == "rgb":
            vals = [t[:, c] for c in range(min(3, t.shape[1]))]
        else:
            vals = [t.mean(1)]
        for ax, v in zip(axes.flat, vals):
            ax.hist(v.flatten().numpy(), bins=edges, histtype="step", density=density, label=label, lw=1.4)
    for ax, name in zip(axes.flat, panels):
        ax.set_xlabel(f"{name} value")
        ax.set_ylabel("density" if density else "count")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _done(fig)


def pareto_front(x, y, minimize=(True, True)) -> np.ndarray:
    """Indices of the non-dominated points (sorted by x), for objectives to minimise or maximise."""
    x = np.asarray(x, dtype=float) * (1 if minimize[0] else -1)
    y = np.asarray(y, dtype=float) * (1 if minimize[1] else -1)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and the same length, got {x.shape} and {y.shape}.")
    keep = []
    for i in range(len(x)):
        dominated = np.any((x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i])))
        if not dominated:
            keep.append(i)
    keep = np.asarray(keep, dtype=int)
    return keep[np.argsort(x[keep] * (1 if minimize[0] else -1))] if len(keep) else keep


def pareto_plot(x, y, labels=None, *, xlabel: str = "x", ylabel: str = "y", minimize=(True, True),
                color=None, colorbar_label: str | None = None, title: str | None = None,
                annotate: bool = True, size=(5.5, 4.0)):
    """Scatter of a trade-off (e.g. dark-region detail error vs noise) with its Pareto front.

    Args:
        x, y: one value per configuration.
        labels: optional text per point (e.g. the weight that produced it).
        minimize: whether lower is better on each axis.
        color: optional values to colour the points by (e.g. a loss weight).
    Returns the Figure; ``pareto_front(x, y, minimize)`` gives the front's indices.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    front = pareto_front(x, y, minimize)
    fig, ax = plt.subplots(figsize=size)
    sc = ax.scatter(x, y, c=color if color is not None else "tab:blue", cmap="viridis", s=40, zorder=3)
    if color is not None:
        fig.colorbar(sc, ax=ax, label=colorbar_label)
    if len(front):
        ax.plot(x[front], y[front], "--", color="tab:red", lw=1.5, label="Pareto front", zorder=2)
        ax.scatter(x[front], y[front], facecolors="none", edgecolors="tab:red", s=110, zorder=4)
    if labels is not None and annotate:
        for xi, yi, lab in zip(x, y, labels):
            ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    better = ("lower" if minimize[0] else "higher", "lower" if minimize[1] else "higher")
    ax.set_xlabel(f"{xlabel} ({better[0]} is better)")
    ax.set_ylabel(f"{ylabel} ({better[1]} is better)")
    ax.grid(alpha=0.3)
    if len(front):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _done(fig)


def sweep_explorer(results, *, params: Sequence[str] | None = None, image_keys=None, metric_keys=None,
                   title: str | None = None, size: float = 2.6):
    """An ipywidgets explorer over precomputed sweep results; returns the widget.

    Args:
        results: a sequence of dicts, each with ``"params"`` (``{name: value}``, the sweep
            coordinates), optional ``"images"`` (``{name: (3, H, W) tensor}``) and optional
            ``"metrics"`` (``{name: float}``). A mapping ``value -> {"images": ..., "metrics": ...}``
            is accepted for a one-parameter sweep.
        params: which parameters get a slider (default: all).
        image_keys, metric_keys: subsets to show (default: all).

    One selection slider per parameter; the panel shows that configuration's images and metrics,
    and, for every metric, its curve along the first parameter with the current point marked.
    Headless (papermill, nbval) the widget is created and rendered once, nothing fails.
    """
    import ipywidgets as widgets
    from IPython.display import display

    if isinstance(results, Mapping):
        results = [{"params": {"value": k}, **v} for k, v in results.items()]
    results = list(results)
    if not results:
        raise ValueError("sweep_explorer needs at least one result.")
    for i, r in enumerate(results):
        if not isinstance(r, Mapping) or "params" not in r:
            raise ValueError(f"result {i} must be a dict with a 'params' entry, got {r!r:.80}.")
    names = list(params) if params is not None else list(results[0]["params"])
    axes = {n: sorted({r["params"][n] for r in results}, key=lambda v: (isinstance(v, str), v)) for n in names}
    sliders = {n: widgets.SelectionSlider(options=axes[n], value=axes[n][0], description=str(n),
                                          continuous_update=False,
                                          style={"description_width": "initial"}) for n in names}
    out = widgets.Output()

    def lookup(sel):
        for r in results:
            if all(r["params"].get(n) == v for n, v in sel.items()):
                return r
        return None

    def render(*_):
        sel = {n: s.value for n, s in sliders.items()}
        r = lookup(sel)
        out.clear_output(wait=True)
        with out:
            if r is None:
                print(f"No result for {sel}.")
                return
            imgs = r.get("images") or {}
            keys = list(image_keys) if image_keys is not None else list(imgs)
            if keys:
                display(show_images([imgs[k] for k in keys], keys, size=size,
                                    suptitle=", ".join(f"{n}={v}" for n, v in sel.items())))
            mets = r.get("metrics") or {}
            mkeys = list(metric_keys) if metric_keys is not None else list(mets)
            if mkeys:
                print("  ".join(f"{k}: {float(mets[k]):.4g}" for k in mkeys))
                first = names[0]
                others = {n: v for n, v in sel.items() if n != first}
                line = [x for x in results if all(x["params"].get(n) == v for n, v in others.items())]
                line.sort(key=lambda x: axes[first].index(x["params"][first]))
                if len(line) > 1:
                    fig, axs = plt.subplots(1, len(mkeys), figsize=(3.2 * len(mkeys), 2.6), squeeze=False)
                    for ax, k in zip(axs.flat, mkeys):
                        xs = list(range(len(line)))
                        ax.plot(xs, [float(x.get("metrics", {}).get(k, np.nan)) for x in line], marker="o")
                        cur = axes[first].index(sel[first])
                        ax.plot([cur], [float(mets[k])], "o", color="tab:red", ms=10)
                        ax.set_xticks(xs, [str(x["params"][first]) for x in line], fontsize=7)
                        ax.set_xlabel(str(first))
                        ax.set_title(k, fontsize=9)
                        ax.grid(alpha=0.3)
                    fig.tight_layout()
                    display(_done(fig))

    for s in sliders.values():
        s.observe(render, names="value")
    render()
    children = ([widgets.HTML(f"<b>{title}</b>")] if title else []) + [widgets.HBox(list(sliders.values())), out]
    return widgets.VBox(children)
