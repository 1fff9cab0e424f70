"""Figures and widgets for the course.

Every plotting function returns a :class:`matplotlib.figure.Figure` and detaches it from pyplot
(``plt.close``), so figures never pile up (no "more than 20 figures" warning, no leaks under the Agg
backend in tests) and a figure is shown exactly once: when it is the cell's last expression, or
with ``display(fig)``. ``fig.savefig(...)`` works as usual.

:func:`sweep_explorer` builds an ipywidgets explorer over *precomputed* results, so moving a slider
never trains anything; it also works headless (papermill, nbval), where it simply renders its first
state.

Colours are colour-blind safe: importing this module sets matplotlib's colour cycle to the
Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), so the notebooks' own plots use it
too; :func:`use_course_style` with ``False`` restores matplotlib's defaults. Every figure function
keeps its text at 8 pt or more and thins or turns tick labels that would overlap
(:func:`declutter_ticks`), so figures stay legible at the width a page shows them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler

from .data.color import REC709_LUMA

__all__ = ["to_numpy_image", "show_images", "compare_row", "plot_history", "plot_histograms",
           "pareto_front", "pareto_plot", "sweep_curves", "sweep_explorer", "declutter_ticks",
           "use_course_style", "OKABE_ITO", "MIN_FONT_PT"]

#: The Okabe-Ito colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish purple,
#: sky blue, yellow, black), in the order the colour cycle uses it.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: The smallest text size (points) a course figure uses.
MIN_FONT_PT = 8.0
_HIGHLIGHT = OKABE_ITO[3]   # vermillion: the current point, the Pareto front
_MAIN = OKABE_ITO[0]        # blue: plain points and curves
_DEFAULT_CYCLE = mpl.rcParams["axes.prop_cycle"]


def use_course_style(enable: bool = True) -> None:
    """Set (or, with ``False``, undo) the colour-blind-safe Okabe-Ito colour cycle in matplotlib's rcParams."""
    if not isinstance(enable, bool):
        raise TypeError(f"use_course_style takes True or False, got {enable!r}.")
    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(OKABE_ITO)) if enable else _DEFAULT_CYCLE


def _overlaps(boxes) -> bool:
    boxes = sorted(boxes, key=lambda b: (b.x0, b.y0))
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _visible_labels(axis, renderer):
    return [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text().strip()
            and t.get_window_extent(renderer).width > 0]


def declutter_ticks(fig):
    """Turn, then thin, the tick labels of ``fig``'s axes until no two on an axis overlap; return ``fig``.

    Labels are first turned upright (x axes, 90 degrees), then only every 2nd, 3rd, ... label is kept.
    Numeric axes that already fit are left alone.
    """
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure(): measure with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = _visible_labels(axis, renderer)
            if not _overlaps([t.get_window_extent(renderer) for t in labels]):
                continue
            if axis is ax.xaxis:
                for t in labels:
                    t.set_rotation(90)
                    t.set_ha("center")
                fig.draw(renderer)
            step = 1
            while _overlaps([t.get_window_extent(renderer) for t in labels if t.get_visible()]) and step < len(labels):
                step += 1
                for i, t in enumerate(labels):
                    t.set_visible(i % step == 0)
    return fig


def _done(fig, *, layout: bool = True):
    """Lay out ``fig``, keep its tick labels apart, detach it from pyplot and return it (shown once)."""
    if layout:
        fig.tight_layout()
    declutter_ticks(fig)
    if layout:
        fig.tight_layout()
    plt.close(fig)
    return fig


use_course_style(True)


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
    sc = ax.scatter(x, y, c=color if color is not None else _MAIN, cmap="viridis", s=40, zorder=3)
    if color is not None:
        fig.colorbar(sc, ax=ax, label=colorbar_label)
    if len(front):
        ax.plot(x[front], y[front], "--", color=_HIGHLIGHT, lw=1.5, label="Pareto front", zorder=2)
        ax.scatter(x[front], y[front], facecolors="none", edgecolors=_HIGHLIGHT, s=110, zorder=4)
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
    return _done(fig)


def sweep_curves(values, metrics, *, current=0, param: str = "setting", size=(3.6, 2.6)):
    """One small chart per metric along a sweep, the current point marked; return the Figure.

    Args:
        values: the sweep's settings in order (numbers or labels such as ``"0.3/0.3/0.4"``), length N.
        metrics: ``{name: N values}`` (NaN for a missing value).
        current: index of the point to mark.
        param: the swept parameter's name (the x label).
    Charts are laid out two per row, so four metrics stay legible at a page's width.
    """
    values = list(values)
    if not values:
        raise ValueError("sweep_curves needs at least one sweep value.")
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueError("metrics must be a non-empty mapping name -> one value per sweep setting.")
    for k, v in metrics.items():
        if len(v) != len(values):
            raise ValueError(f"metric {k!r} has {len(v)} values for {len(values)} sweep settings; give one each.")
    if not (isinstance(current, (int, np.integer)) and 0 <= current < len(values)):
        raise ValueError(f"current must be an index in 0..{len(values) - 1}, got {current!r}.")
    ncols = min(len(metrics), 2)
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axs = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axs.flat[len(metrics):]:
        ax.axis("off")
    xs = list(range(len(values)))
    for ax, (k, ys) in zip(axs.flat, metrics.items()):
        ys = [float(y) for y in ys]
        ax.plot(xs, ys, marker="o", color=_MAIN)
        ax.plot([current], [ys[current]], "o", color=_HIGHLIGHT, ms=10, label="shown")
        ax.set_xticks(xs, [str(v) for v in values], fontsize=MIN_FONT_PT)
        ax.set_xlabel(str(param))
        ax.set_title(str(k), fontsize=9)
        ax.grid(alpha=0.3)
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

    One selection slider per parameter, its current value written in full beside it (a slider's
    own readout cuts long labels such as ``0.3/0.3/0.4``); the panel shows that configuration's
    images and metrics, and :func:`sweep_curves` of every metric along the first parameter with the
    current point marked. Headless (papermill, nbval) the widget is created and rendered once.
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
                                          continuous_update=False, readout=False,
                                          layout=widgets.Layout(width="auto", min_width="360px"),
                                          style={"description_width": "initial"}) for n in names}
    readouts = {n: widgets.HTML(value=f"<b>{axes[n][0]}</b>") for n in names}
    for r in readouts.values():
        r.add_class("lowlight-slider-value")
    out = widgets.Output()

    def lookup(sel):
        for r in results:
            if all(r["params"].get(n) == v for n, v in sel.items()):
                return r
        return None

    def render(*_):
        sel = {n: s.value for n, s in sliders.items()}
        for n, v in sel.items():
            readouts[n].value = f"<b>{v}</b>"
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
                    values = [x["params"][first] for x in line]
                    curves = {k: [float(x.get("metrics", {}).get(k, np.nan)) for x in line] for k in mkeys}
                    display(sweep_curves(values, curves, current=values.index(sel[first]), param=first))

    for s in sliders.values():
        s.observe(render, names="value")
    render()
    rows = [widgets.HBox([sliders[n], readouts[n]]) for n in names]
    children = ([widgets.HTML(f"<b>{title}</b>")] if title else []) + rows + [out]
    return widgets.VBox(children)
