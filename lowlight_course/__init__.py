"""lowlight_course: the helper package behind the low-light loss-design course.

Each submodule has one job and imports on its own:

- :mod:`lowlight_course.data`      offline images, low-light simulation, domains, datasets
- :mod:`lowlight_course.losses`    pixel losses, SSIM, soft histogram, Zero-DCE terms, weighting
- :mod:`lowlight_course.pitfalls`  the naive losses, each named for its defect
- :mod:`lowlight_course.metrics`   PSNR, SSIM, Delta E, per-luminance-band errors, noise level
- :mod:`lowlight_course.models`    a small U-Net and a Zero-DCE-style curve network
- :mod:`lowlight_course.train`     one ``fit(...)`` for every notebook
- :mod:`lowlight_course.profiles`  run sizes: smoke / cpu / gpu / auto
- :mod:`lowlight_course.checks`    exercise checks
- :mod:`lowlight_course.audit`     the loss auditor (callable: ``audit(loss_fn)`` -> report; Chapter 8)
- :mod:`lowlight_course.viz`       figures and widgets

:class:`DataRangeWarning` (also in ``losses`` and ``metrics``) is what SSIM and PSNR warn with when
``data_range`` is far above every value: the 0-255-range-on-[0, 1]-images mistake of Chapter 2.
"""
from ._validation import DataRangeWarning

__all__ = ["DataRangeWarning", "__version__"]
__version__ = "0.2.0"


def __getattr__(name):
    """``lowlight_course.audit`` after a plain ``import lowlight_course`` (imported on first use)."""
    if name == "audit":
        import importlib

        return importlib.import_module(".audit", __name__)
    raise AttributeError(f"module 'lowlight_course' has no attribute {name!r}")
