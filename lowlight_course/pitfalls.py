"""The naive losses of the article the course grew from, each named for its defect.

The article trains a low-light enhancer with three losses: plain MSE; MSE plus SSIM; and
``0.3 MSE + 0.3 (1 - SSIM) + 0.4 histogram``, where the histogram term compares 16-bin intensity
histograms. Its code, as written, carries real defects. Each function below re-creates *one*
defect (written for this course, not copied), so a notebook can run it, measure what goes wrong
and compare with the correct version in :mod:`lowlight_course.losses`.

Measured effects (CPU, float32, torch 2.13, 64x64; ``tests/test_pitfalls.py`` asserts each):

============================  ==================================================================
defect                        effect
============================  ==================================================================
gaussian_window_float_exp     ``TypeError`` at the first call: the code does not run at all.
ssim_data_range_255           unrelated uniform-random pair: SSIM 0.9964 instead of 0.0121
                              (L = 1). Gradient of 1 - SSIM w.r.t. pred ~150x smaller than with
                              L = 1 on that pair, ~640x on the astronaut :func:`sample_pair`.
ssim_zero_padding             SSIM shifted by -1.7e-3 on the astronaut pair, but by +2.5e-2 to
                              +7e-2 on coffee / chelsea / rocket pairs and a random pair; the
                              local mean of a flat image drops to 40 % in the corners.
histogram_loss_histc          no autograd path: ``backward()`` raises ``RuntimeError``; in a
                              weighted sum the gradient is bit-identical without the term.
naive_combined_loss           astronaut pair: MSE 2.7e-3, 1 - SSIM(L=255) 1.5e-4, histogram
                              3.4e-4 (the article: 6e-3 / 4e-4 / 3e-4); the 0.4 term is dead.
histogram_blind_to_shuffle    pixel-shuffled photo: histogram loss 0 (histc exactly, soft < 1e-7)
                              while MSE is 0.17 and SSIM -0.007.
============================  ==================================================================

Where our numbers differ from the article's. The article reports a ~58x gradient ratio for
L = 255 and a ~1e-3 shift from zero padding. With the defects re-created faithfully we measure a
*larger* gradient ratio (the ratio is roughly ``C2(255) / (sigma_x^2 + sigma_y^2 + C2(1))``, so it
grows as local variance falls: ~150x for random noise, hundreds to thousands for photographs) and
a padding shift of ~1e-3 only on some pairs (up to 7e-2 on others, since zero padding makes both
images black at the border and so *correlated* there). Both defects are worse than reported.

The exact numbers are in each function's docstring; :data:`PITFALLS` lists them for notebooks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import ImageInputError, check_image, check_pair, check_reduction

__all__ = [
    "PITFALLS", "gaussian_window_float_exp", "ssim_data_range_255", "ssim_zero_padding",
    "naive_ssim", "histogram_loss_histc", "naive_combined_loss", "shuffle_pixels",
    "histogram_blind_to_shuffle", "sample_pair", "ssim_gradient_ratio",
]

#: name -> one-line description of the defect, for notebooks and the exercise checks.
PITFALLS: dict[str, str] = {
    "gaussian_window_float_exp": "torch.exp called on a Python float: TypeError, the code never runs.",
    "ssim_data_range_255": "SSIM with L = 255 on [0, 1] images: C1, C2 swamp the statistics, "
                           "unrelated images score ~0.996 and the gradient is 100x-1000x smaller.",
    "ssim_zero_padding": "SSIM filtered with zero padding ('same'): borders darkened, SSIM shifted "
                         "by 1e-3 to 7e-2 against the reference 'valid' SSIM on 64x64 pairs.",
    "histogram_loss_histc": "torch.histc has no gradient: the histogram term is a constant; alone "
                            "backward() fails, inside a weighted sum it is silently dead.",
    "naive_combined_loss": "0.3 MSE + 0.3 (1 - SSIM, L = 255) + 0.4 histc histogram: the weights "
                           "balance nothing, term magnitudes differ by orders and 0.4 is dead.",
    "histogram_blind_to_shuffle": "a histogram loss ignores where tones are: a pixel-shuffled image "
                                  "has histogram loss 0.",
}


# ---------------------------------------------------------------------------------------------
# 1. The Gaussian window that does not run
# ---------------------------------------------------------------------------------------------
def gaussian_window_float_exp(window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The article's Gaussian window: calls ``torch.exp`` on a Python float. Raises ``TypeError``.

    Each tap is computed as ``torch.exp(-(x - centre)**2 / float(2 * sigma**2))`` where ``x`` is a
    Python ``int`` from ``range``: the argument is a ``float``, and ``torch.exp`` only accepts
    tensors. Measured: ``TypeError: exp(): argument 'input' (position 1) must be Tensor, not
    float`` on the first tap, so nothing that uses this window ever ran. Fix: build the offsets as a
    tensor (``torch.arange``) or use ``math.exp``; see :func:`lowlight_course.losses.gaussian_window`.
    """
    centre = window_size // 2
    taps = [torch.exp(-(x - centre) ** 2 / float(2 * sigma ** 2)) for x in range(window_size)]
    window = torch.stack(taps)  # never reached
    return window / window.sum()


# ---------------------------------------------------------------------------------------------
# 2. SSIM: data range and padding
# ---------------------------------------------------------------------------------------------
def _window2d(window_size: int, sigma: float, channels: int, dtype, device) -> torch.Tensor:
    from .losses.ssim import gaussian_window

    w = gaussian_window(window_size, sigma, dtype=dtype, device=device)
    return (w[:, None] * w[None, :]).expand(channels, 1, window_size, window_size).contiguous()


def naive_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 255.0,
               zero_padding: bool = True, window_size: int = 11, sigma: float = 1.5,
               reduction: str = "mean") -> torch.Tensor:
    """SSIM as the article computes it, with each defect switchable, by plain autograd.

    Same formula as :func:`lowlight_course.losses.ssim` (Wang et al. 2004, equation 13), but:

    * ``data_range`` defaults to 255 (the article's default) although images are in [0, 1];
    * ``zero_padding=True`` filters with ``padding=window_size // 2`` ('same' output size), so
      the local statistics near the border average in zeros.

    With ``data_range=1.0, zero_padding=False`` it equals the reference SSIM.
    ``reduction``: ``"mean"`` (scalar), ``"none"`` ((B,)), ``"map"``.
    """
    check_pair(pred, target, data_range=None)
    check_reduction(reduction, ("mean", "none", "map"))
    c = pred.shape[1]
    win = _window2d(window_size, sigma, c, pred.dtype, pred.device)
    pad = window_size // 2 if zero_padding else 0

    def blur(t):
        return F.conv2d(t, win, padding=pad, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu1, mu2 = blur(pred), blur(target)
    s11 = blur(pred * pred) - mu1 ** 2
    s22 = blur(target * target) - mu2 ** 2
    s12 = blur(pred * target) - mu1 * mu2
    smap = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    if reduction == "mean":
        return smap.mean()
    if reduction == "none":
        return smap.flatten(1).mean(1)
    return smap


def ssim_data_range_255(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM with ``L = 255`` on images in [0, 1] (the article's default data range).

    The stabilising constants are ``C1 = (0.01 L)^2 = 6.5`` and ``C2 = (0.03 L)^2 = 58.5``, while
    means are at most 1 and variances at most 0.25: every ratio becomes ``(small + C) / (small +
    C)``, close to 1 whatever the images. Only this defect is present ('valid' filtering).

    Measured (64x64, seeded, float32):

    * two unrelated uniform-random images (``torch.rand``, seed 0): SSIM 0.9964 (L = 1: 0.0121);
    * astronaut :func:`sample_pair`: SSIM 0.99984 (L = 1: 0.882);
    * gradient norm of ``1 - SSIM`` w.r.t. pred (:func:`ssim_gradient_ratio`) is ~150x smaller
      than with L = 1 on the random pair and ~640x smaller on the astronaut pair (coffee ~940x,
      rocket ~2900x). The article reports ~58x; the ratio is roughly ``C2(255) / (sigma_x^2 +
      sigma_y^2 + C2(1))`` and grows as local variance falls. The term is a plateau.
    """
    check_pair(pred, target, data_range=1.0)
    return naive_ssim(pred, target, data_range=255.0, zero_padding=False)


def ssim_zero_padding(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM (L = 1) filtered with zero padding ``padding = window_size // 2``: 'same' output size.

    Near the border the 11 x 11 window reaches outside the image and averages zeros into the local
    means, variances and covariance: the local means are darkened (a constant 0.5 image has local
    mean 0.25 in a corner), and the SSIM map there measures the padding, not the images. The
    reference SSIM (Wang et al. 2004, scikit-image, pytorch-msssim) filters 'valid' only.

    Measured on 64x64 pairs, where the border band (5 pixels each side) is 29 % of the 'same' map:
    the local mean of a flat image falls to 40 % in a corner and 63 % along an edge; the mean SSIM
    shifts by -1.7e-3 on the astronaut :func:`sample_pair` (0.8807 vs 0.8824), but by +2.5e-2
    (coffee), +2.9e-2 (chelsea), +7.2e-2 (rocket) and +6.1e-2 on a uniform-random pair (0.073 vs
    0.012): zero padding makes *both* images black at the border, which correlates them there.
    On the astronaut pair the shift is 3.4e-3 at 128x128 and 5.6e-3 at 256x256.
    """
    check_pair(pred, target, data_range=1.0)
    return naive_ssim(pred, target, data_range=1.0, zero_padding=True)


def ssim_gradient_ratio(pred: torch.Tensor, target: torch.Tensor) -> float:
    """``|grad (1 - SSIM_L=1)| / |grad (1 - SSIM_L=255)|`` w.r.t. ``pred``: how flat L = 255 is."""
    check_pair(pred, target)
    norms = []
    for fn in (lambda p, t: naive_ssim(p, t, 1.0, False), ssim_data_range_255):
        p = pred.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(1 - fn(p, target), p)
        norms.append(float(g.norm()))
    return norms[0] / norms[1]


# ---------------------------------------------------------------------------------------------
# 3. The histogram term with no gradient
# ---------------------------------------------------------------------------------------------
def _histc_per_image(x: torch.Tensor, bins: int) -> torch.Tensor:
    # torch.histc returns a new tensor with no grad_fn: the autograd graph stops here.
    hists = [torch.histc(img, bins=bins, min=0.0, max=1.0) for img in x]
    h = torch.stack(hists)
    return h / h.sum(dim=1, keepdim=True)


def histogram_loss_histc(pred: torch.Tensor, target: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """The article's "tone-mapping" term: MSE between 16-bin intensity histograms via ``torch.histc``.

    Each image's values (all channels pooled) are counted in ``bins`` bins on [0, 1], normalised to
    sum to 1, and the mean squared difference of the two histograms is the loss.

    ``torch.histc`` counts: a count is a step function of the values, with no derivative, and
    PyTorch returns it with no ``grad_fn``. So the returned loss has ``requires_grad == False``
    even when ``pred`` requires grad. Measured: ``loss.backward()`` on it alone raises
    ``RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn``;
    inside ``0.3 MSE + 0.3 SSIM + 0.4 hist`` the gradient w.r.t. pred is identical (bit for bit)
    with and without the term: 40 % of the "weight" does nothing. Fix: a soft, differentiable
    histogram (:func:`lowlight_course.losses.soft_histogram`).
    """
    check_pair(pred, target)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ImageInputError(f"bins must be a positive integer, got {bins!r}: use 16.")
    return ((_histc_per_image(pred, bins) - _histc_per_image(target, bins)) ** 2).mean()


def naive_combined_loss(pred: torch.Tensor, target: torch.Tensor, *, terms: bool = False):
    """The article's combined loss ``0.3 MSE + 0.3 (1 - SSIM) + 0.4 histogram``, as written.

    SSIM here carries both SSIM defects (L = 255 and zero padding) and the histogram term is
    :func:`histogram_loss_histc`. With ``terms=True`` returns a dict of the *raw* terms
    ``{"mse", "ssim", "hist"}`` and the ``"total"``, else the total.

    Measured on :func:`sample_pair` (64x64 astronaut crop vs a degraded copy): MSE 2.7e-3,
    1 - SSIM (L = 255) 1.5e-4, histogram 3.4e-4, total 9.9e-4 (the article reports 6e-3 / 4e-4 /
    3e-4 on its pair). The weights 0.3 / 0.3 / 0.4 balance nothing: the raw magnitudes differ by
    18x, the SSIM term's gradient is flattened ~600x by L = 255, and the histogram term has no
    gradient at all, so in practice this trains as plain MSE.
    """
    check_pair(pred, target)
    parts = {
        "mse": ((pred - target) ** 2).mean(),
        "ssim": 1 - naive_ssim(pred, target, data_range=255.0, zero_padding=True),
        "hist": histogram_loss_histc(pred, target),
    }
    total = 0.3 * parts["mse"] + 0.3 * parts["ssim"] + 0.4 * parts["hist"]
    if terms:
        return {**parts, "total": total}
    return total


# ---------------------------------------------------------------------------------------------
# 4. Histograms are blind to where tones are
# ---------------------------------------------------------------------------------------------
def shuffle_pixels(image: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Move every pixel (all channels together) to a random position. Same histogram, no image.

    ``image``: (B, C, H, W); each image in the batch gets its own permutation (seeded).
    """
    check_image(image, "image", data_range=None)
    b, c, h, w = image.shape
    gen = torch.Generator().manual_seed(int(seed))
    flat = image.reshape(b, c, h * w)
    out = torch.empty_like(flat)
    for i in range(b):
        perm = torch.randperm(h * w, generator=gen).to(image.device)
        out[i] = flat[i][:, perm]
    return out.reshape(b, c, h, w)


def histogram_blind_to_shuffle(image: torch.Tensor, seed: int = 0, bins: int = 16) -> dict[str, float]:
    """Compare a pixel-shuffled copy of ``image`` with the original: histogram loss vs MSE and SSIM.

    Returns ``{"hist_histc", "hist_soft", "mse", "ssim"}``. Measured on a 64x64 astronaut crop
    (seed 0): histc loss exactly 0, soft-histogram L1 distance 2e-8 (float rounding), while MSE is
    0.165 and SSIM -0.007: a histogram term cannot tell an image from noise with the
    same tones, so it must be paired with a spatial term.
    """
    check_image(image, "image")
    from .losses.ssim import ssim

    shuffled = shuffle_pixels(image, seed)
    out = {"hist_histc": float(histogram_loss_histc(shuffled, image, bins))}
    try:
        from .losses.histogram import soft_histogram
    except ImportError:  # pragma: no cover - the soft histogram ships with the package
        out["hist_soft"] = float("nan")
    else:
        out["hist_soft"] = float((soft_histogram(shuffled, bins) - soft_histogram(image, bins)).abs().mean())
    out["mse"] = float(((shuffled - image) ** 2).mean())
    out["ssim"] = float(ssim(shuffled, image))
    return out


# ---------------------------------------------------------------------------------------------
# The sample pair the numbers above are measured on
# ---------------------------------------------------------------------------------------------
def sample_pair(name: str = "astronaut", size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (pred, target) pair: a photo crop and an imperfect "enhanced" copy of it.

    ``target`` is the bundled photograph ``name`` resized to ``size``; ``pred`` is
    ``clamp(0.9 target + 0.03 + noise)`` with Gaussian noise of std 0.04, a slightly dull, noisy
    enhancement. Both (1, 3, size, size).
    """
    from .data.images import load_image

    target = load_image(name, size)[None]
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(target.shape, generator=gen) * 0.04
    pred = (0.9 * target + 0.03 + noise).clamp(0.0, 1.0)
    return pred, target
