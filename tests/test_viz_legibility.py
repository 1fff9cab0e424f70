"""Every figure function in lowlight_course.viz draws legible figures (issue 13, item 4).

Each is called with small seeded inputs and drawn with Agg; then no two tick labels on one axis may
overlap (matplotlib's renderer bounding boxes) and no visible text may be smaller than
``viz.MIN_FONT_PT`` (8 pt) at the figure's own size. A new figure function in ``viz.__all__`` must
get a case here (the inventory test fails until it has one).
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.text  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lowlight_course import viz  # noqa: E402
from lowlight_course.train.history import History  # noqa: E402

NOT_FIGURES = {"to_numpy_image", "pareto_front", "sweep_explorer", "declutter_ticks", "use_course_style",
               "OKABE_ITO", "MIN_FONT_PT"}
# The explorer's sweep in chapter 04 labels its points like this; long labels are the hard case.
WEIGHT_LABELS = ["0.3/0.3/0.4", "1/0/0", "0/1/0", "0/0/1", "0.5/0.5/0", "0.5/0/0.5", "0/0.5/0.5",
                 "0.2/0.2/0.6", "0.6/0.2/0.2", "0.1/0.8/0.1", "0.34/0.33/0.33", "0.8/0.1/0.1"]


def _history(seed):
    g = np.random.default_rng(seed)
    steps = list(range(0, 200, 5))
    h = History(steps=steps, loss=list(np.exp(-np.arange(len(steps)) / 9) + 0.05 * g.random(len(steps))))
    h.terms = {"mse": list(0.5 * np.array(h.loss)), "ssim": list(0.3 * np.array(h.loss)),
               "hist": [0.2] * len(steps)}
    h.grad_norm_steps = steps[::4]
    h.grad_norms = {"mse": list(g.random(len(h.grad_norm_steps)) * 1e-2),
                    "ssim": list(g.random(len(h.grad_norm_steps))), "hist": [0.0] * len(h.grad_norm_steps)}
    return h


def _images(seed, n=3, size=24):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _cases():
    g = np.random.default_rng(0)
    imgs = _images(0)
    return {
        "show_images": lambda: viz.show_images(imgs, ["low input", "output", "target"], suptitle="a sweep point"),
        "show_images (single channel, colour bar)": lambda: viz.show_images([imgs[0].mean(0), imgs[1]],
                                                                            ["error map", "image"]),
        "compare_row": lambda: viz.compare_row(imgs[:1] * 0.2, imgs[1:2], imgs[2:3]),
        "plot_history": lambda: viz.plot_history(_history(1)),
        "plot_history (two runs)": lambda: viz.plot_history({"MSE": _history(2), "L1 + SSIM": _history(3)}),
        "plot_histograms": lambda: viz.plot_histograms([imgs[0] * 0.1, imgs[1]], ["dark", "clean"], log=True),
        "plot_histograms (rgb)": lambda: viz.plot_histograms(imgs, ["batch"], channels="rgb"),
        "pareto_plot": lambda: viz.pareto_plot(g.random(12), g.random(12), labels=WEIGHT_LABELS,
                                               xlabel="detail error", ylabel="noise", color=np.arange(12),
                                               colorbar_label="dark weight", title="trade-off"),
        "sweep_curves": lambda: viz.sweep_curves(WEIGHT_LABELS, {k: g.random(12) for k in
                                                                 ("PSNR", "SSIM", "Delta E", "hist distance")},
                                                 current=3, param="weights mse/ssim/hist"),
        "sweep_curves (numbers)": lambda: viz.sweep_curves(list(np.round(np.logspace(-3, 1, 15), 4)),
                                                           {"PSNR": g.random(15)}, current=0, param="lr"),
    }


CASES = _cases()


def test_every_figure_function_has_a_case():
    covered = {name.split(" (")[0] for name in CASES}
    missing = set(viz.__all__) - NOT_FIGURES - covered
    assert not missing, f"viz figure functions without a legibility case: {sorted(missing)}"


def _renderer(fig):
    """An Agg renderer for ``fig`` (a figure closed by viz keeps no canvas of its own)."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _overlapping_ticks(fig):
    renderer = _renderer(fig)
    fig.draw(renderer)
    bad = []
    for k, ax in enumerate(fig.axes):
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text().strip()]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for i, (ta, a) in enumerate(boxes):
                for tb, b in boxes[i + 1:]:
                    if a.width > 0 and b.width > 0 and a.overlaps(b):
                        bad.append(f"axes {k} {axis_name}: {ta!r} overlaps {tb!r}")
    return bad


def _small_text(fig):
    fig.draw(_renderer(fig))
    return [f"{t.get_text()!r} at {t.get_fontsize():.1f} pt" for t in fig.findobj(matplotlib.text.Text)
            if t.get_visible() and t.get_text().strip() and t.get_fontsize() < viz.MIN_FONT_PT]


@pytest.mark.parametrize("name", list(CASES))
def test_figure_is_legible(name):
    fig = CASES[name]()
    assert isinstance(fig, Figure), f"{name} returned {type(fig).__name__}, not a Figure"
    assert _overlapping_ticks(fig) == []
    assert _small_text(fig) == []
    shown = [t for ax in fig.axes for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    if name == "sweep_curves":  # 12 long labels on a 3.6-inch axis: all stay, turned upright
        assert len(shown) == 4 * len(WEIGHT_LABELS)


def test_the_overlap_check_catches_overlap():
    """The check itself works: 12 long labels at 12 pt on a 2-inch axis, as the explorer drew them before."""
    fig = Figure(figsize=(2.0, 2.0))
    ax = fig.subplots()
    ax.set_xticks(range(12), WEIGHT_LABELS, fontsize=12)
    assert _overlapping_ticks(fig)
    viz.declutter_ticks(fig)
    assert _overlapping_ticks(fig) == []


def test_palette_is_okabe_ito_and_reversible():
    colours = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert colours == list(viz.OKABE_ITO)
    viz.use_course_style(False)
    try:
        assert [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]] != list(viz.OKABE_ITO)
    finally:
        viz.use_course_style(True)
    with pytest.raises(TypeError, match="True or False"):
        viz.use_course_style("yes")


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=[], metrics={"a": []}), "at least one"),
    (dict(values=[1, 2], metrics={}), "non-empty mapping"),
    (dict(values=[1, 2], metrics={"a": [1.0]}), "one each"),
    (dict(values=[1, 2], metrics={"a": [1.0, 2.0]}, current=2), "index in 0..1"),
])
def test_sweep_curves_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.sweep_curves(**kwargs)


def test_explorer_shows_the_slider_value_whole():
    pytest.importorskip("ipywidgets", reason="ipywidgets is a course dependency; the explorer needs it")
    results = [{"params": {"weights": w}, "metrics": {"PSNR": float(i)}} for i, w in enumerate(WEIGHT_LABELS[:4])]
    box = viz.sweep_explorer(results)
    row = box.children[0]
    slider, readout = row.children
    assert slider.readout is False and slider.style.description_width == "initial"
    assert "0.3/0.3/0.4" in readout.value
    slider.value = "0/1/0"
    assert "0/1/0" in readout.value and "lowlight-slider-value" in readout._dom_classes
