"""Clean images that need no download: photographs bundled in scikit-image, and procedural scenes.

scikit-image ships a handful of colour photographs *inside its wheel* (``skimage/data/*.png``,
``*.jpg``); the rest of ``skimage.data`` is fetched from the internet on first use. This module
reads only the bundled files, straight from disk with Pillow, so it works offline and never
triggers a download.

All images are ``torch.float32`` tensors of shape (3, H, W), sRGB, values in [0, 1].
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "BUNDLED_IMAGES", "DEFAULT_SOURCES", "PROCEDURAL_KINDS",
    "list_images", "load_image", "procedural_scene", "random_crops", "resize_image",
]

#: name -> (file inside skimage/data, what it shows). Every file ships in the scikit-image wheel.
BUNDLED_IMAGES: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut.png", "portrait of astronaut Eileen Collins, NASA (public domain)"),
    "chelsea": ("chelsea.png", "Chelsea the cat, indoors"),
    "coffee": ("coffee.png", "a cup of coffee on a saucer, warm tones"),
    "rocket": ("rocket.jpg", "a rocket on the launch pad, sky and structure (NASA)"),
    "motorcycle_left": ("motorcycle_left.png", "motorcycle in a room, left view of a stereo pair"),
    "motorcycle_right": ("motorcycle_right.png", "motorcycle in a room, right view of a stereo pair"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "Hubble deep field: galaxies on black (NASA)"),
}

#: Photos used by default to build training pairs: everyday scenes (the Hubble field is already
#: almost black, so it is left out of the default mix; name it in ``sources`` to use it).
DEFAULT_SOURCES: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
)

#: Kinds accepted by :func:`procedural_scene`.
PROCEDURAL_KINDS: tuple[str, ...] = ("shapes", "texture", "night")


def _data_dir() -> str:
    import skimage.data  # imported lazily: only the file location is needed

    return os.path.dirname(skimage.data.__file__)


def list_images() -> list[str]:
    """Names of the bundled photographs that :func:`load_image` accepts (all load offline)."""
    return list(BUNDLED_IMAGES)


@functools.lru_cache(maxsize=None)
def _read_bundled(name: str) -> torch.Tensor:
    from PIL import Image

    path = os.path.join(_data_dir(), BUNDLED_IMAGES[name][0])
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"The bundled image {name!r} should be at {path} but is missing. Reinstall scikit-image "
            f"(pip install --force-reinstall scikit-image) or use another name from list_images()."
        )
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, bool):
        raise TypeError(f"size must be None, an int or an (height, width) pair, got {size!r}.")
    if isinstance(size, int):
        h = w = size
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) for s in size):
        h, w = size
    else:
        raise TypeError(f"size must be None, an int or an (height, width) pair of ints, got {size!r}.")
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}.")
    return int(h), int(w)


def resize_image(image: torch.Tensor, size) -> torch.Tensor:
    """Centre-crop ``image`` (C, H, W) to the aspect ratio of ``size`` and resize it to ``size``.

    ``size`` is an int (a square) or ``(height, width)``. Downscaling is antialiased (bilinear with
    ``antialias=True``), so small versions do not alias. Deterministic.
    """
    hw = _parse_size(size)
    if hw is None:
        return image
    th, tw = hw
    _, h, w = image.shape
    # largest centred crop with the target aspect ratio
    if h * tw > w * th:      # too tall
        ch, cw = max(1, round(w * th / tw)), w
    else:                    # too wide (or exact)
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[:, top:top + ch, left:left + cw]
    if (ch, cw) == (th, tw):
        return crop.clone()
    out = F.interpolate(crop[None], size=(th, tw), mode="bilinear", align_corners=False,
                        antialias=(th < ch or tw < cw))
    return out[0].clamp_(0.0, 1.0)


def load_image(name: str, size=None) -> torch.Tensor:
    """Load a bundled photograph as a float32 tensor (3, H, W) in [0, 1] (sRGB). Offline.

    Args:
        name: one of :func:`list_images` (``"astronaut"``, ``"coffee"``, ...).
        size: ``None`` for the full image; an int ``s`` to centre-crop to a square and resize to
            ``s x s``; or ``(height, width)`` to centre-crop to that aspect ratio and resize.

    Example:
        >>> load_image("coffee", size=64).shape
        torch.Size([3, 64, 64])
    """
    if not isinstance(name, str) or name not in BUNDLED_IMAGES:
        raise ValueError(f"Unknown image {name!r}. Choose one of: {', '.join(BUNDLED_IMAGES)} "
                         f"(or make one with procedural_scene(kind, size, seed)).")
    return resize_image(_read_bundled(name), size).clone()


# ---------------------------------------------------------------------------------------------
# Procedural scenes
# ---------------------------------------------------------------------------------------------

def _smooth_noise(gen: torch.Generator, h: int, w: int, cells: int, channels: int = 1) -> torch.Tensor:
    """Band-limited noise: a coarse random grid upsampled bicubically, roughly in [0, 1]."""
    grid = torch.rand(1, channels, cells + 3, cells + 3, generator=gen)
    up = F.interpolate(grid, size=(h + 2 * (h // cells + 1), w + 2 * (w // cells + 1)),
                       mode="bicubic", align_corners=False)
    oy, ox = h // cells + 1, w // cells + 1
    return up[0, :, oy:oy + h, ox:ox + w].clamp(0.0, 1.0)


def _coords(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    return torch.meshgrid(ys, xs, indexing="ij")


def _rand(gen, lo=0.0, hi=1.0, n=None):
    if n is None:
        return lo + (hi - lo) * float(torch.rand((), generator=gen))
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _scene_shapes(gen, h, w):
    yy, xx = _coords(h, w)
    c0, c1 = _rand(gen, 0.15, 0.95, 3), _rand(gen, 0.15, 0.95, 3)
    ang = _rand(gen, 0, 2 * math.pi)
    t = (math.cos(ang) * (xx - 0.5) + math.sin(ang) * (yy - 0.5)) / 1.42 + 0.5
    img = c0.view(3, 1, 1) * (1 - t) + c1.view(3, 1, 1) * t
    n_shapes = int(torch.randint(4, 9, (), generator=gen))
    for _ in range(n_shapes):
        colour = _rand(gen, 0.0, 1.0, 3).view(3, 1, 1)
        cy, cx, r = _rand(gen, 0.1, 0.9), _rand(gen, 0.1, 0.9), _rand(gen, 0.06, 0.22)
        if float(torch.rand((), generator=gen)) < 0.5:
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2
        else:
            mask = ((yy - cy).abs() < r * _rand(gen, 0.4, 1.0)) & ((xx - cx).abs() < r)
        img = torch.where(mask, colour.expand_as(img), img)
    # fine texture and a soft shading field, so the scene has detail at every scale
    texture = _smooth_noise(gen, h, w, cells=max(2, w // 4)) - 0.5
    shade = 0.75 + 0.5 * _smooth_noise(gen, h, w, cells=3)
    return (img * shade + 0.12 * texture).clamp(0.0, 1.0)


def _scene_texture(gen, h, w):
    yy, xx = _coords(h, w)
    img = torch.zeros(3, h, w)
    for cells, amp in ((2, 0.5), (6, 0.3), (max(2, w // 6), 0.2)):
        img += amp * _smooth_noise(gen, h, w, cells=cells, channels=3)
    freq, ang = _rand(gen, 3, 10), _rand(gen, 0, math.pi)
    grating = torch.sin(2 * math.pi * freq * (math.cos(ang) * xx + math.sin(ang) * yy))
    img = img + 0.15 * grating
    return ((img - img.amin()) / (img.amax() - img.amin() + 1e-8) * 0.9 + 0.05).clamp(0.0, 1.0)


def _scene_night(gen, h, w):
    """Dark sky and buildings with a few lit windows and bright lamps (clipped at 1)."""
    yy, xx = _coords(h, w)
    sky = torch.tensor([0.02, 0.03, 0.08]).view(3, 1, 1) * (1.3 - yy)
    img = sky.expand(3, h, w).clone()
    # buildings: dim rectangles rising from the bottom, with a few lit windows
    n_build = int(torch.randint(3, 7, (), generator=gen))
    for _ in range(n_build):
        x0, bw, top = _rand(gen, -0.1, 0.9), _rand(gen, 0.1, 0.35), _rand(gen, 0.3, 0.7)
        mask = (xx >= x0) & (xx < x0 + bw) & (yy >= top)
        base = _rand(gen, 0.03, 0.10) * torch.tensor([1.0, 0.95, 0.9]).view(3, 1, 1)
        img = torch.where(mask, base.expand_as(img), img)
        wx = torch.floor((xx - x0) * 14 / max(bw, 1e-3) * bw * 3)
        wy = torch.floor((yy - top) * 20)
        lit = ((torch.sin(wx * 12.9898 + wy * 78.233 + 10 * _rand(gen)) * 43758.5453) % 1.0) > 0.8
        win = mask & lit & (((xx - x0) * 40 % 1.0) < 0.6) & (((yy - top) * 20 % 1.0) < 0.6)
        img = torch.where(win, torch.tensor([0.9, 0.7, 0.35]).view(3, 1, 1).expand_as(img), img)
    img = img + 0.02 * (_smooth_noise(gen, h, w, cells=max(2, w // 4)) - 0.5)
    # lamps: very bright cores with a glow; values above 1 clip, as in a real photo
    n_lamps = int(torch.randint(2, 5, (), generator=gen))
    for _ in range(n_lamps):
        cy, cx, s = _rand(gen, 0.15, 0.8), _rand(gen, 0.05, 0.95), _rand(gen, 0.01, 0.03)
        colour = torch.tensor([1.0, _rand(gen, 0.6, 0.95), _rand(gen, 0.3, 0.8)]).view(3, 1, 1)
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        img = img + colour * (8.0 * torch.exp(-r2 / (2 * s * s)) + 0.3 * torch.exp(-r2 / (2 * (6 * s) ** 2)))
    return img.clamp(0.0, 1.0)


_SCENES = {"shapes": _scene_shapes, "texture": _scene_texture, "night": _scene_night}


def procedural_scene(kind: str = "shapes", size=64, seed: int = 0) -> torch.Tensor:
    """A synthetic clean scene (3, H, W) in [0, 1] (sRGB), deterministic for a given seed.

    Kinds:
        ``"shapes"``: a smooth colour gradient, discs and rectangles with sharp edges, soft shading
        and fine texture (edges, flat regions and detail in one image).
        ``"texture"``: multi-scale band-limited colour noise plus a sinusoidal grating.
        ``"night"``: dark sky and buildings, lit windows and a few lamps whose cores saturate
        (a high-dynamic-range scene: most pixels very dark, a few clipped at 1).

    Example:
        >>> procedural_scene("night", 64, seed=1).shape
        torch.Size([3, 64, 64])
    """
    if kind not in _SCENES:
        raise ValueError(f"Unknown procedural scene kind {kind!r}. Choose one of: {', '.join(_SCENES)}.")
    h, w = _parse_size(size)
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    gen = torch.Generator().manual_seed(seed)
    return _SCENES[kind](gen, h, w).float().contiguous()


def random_crops(image: torch.Tensor, n: int, size, seed: int = 0, *, flip: bool = False) -> torch.Tensor:
    """``n`` random crops of ``image`` (3, H, W) -> (n, 3, h, w), deterministic for a given seed.

    ``size`` is an int (square) or ``(h, w)``; it must fit inside the image. With ``flip=True``
    each crop is mirrored left-right with probability 1/2.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(f"image must be a tensor of shape (C, H, W), got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}.")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    ch, cw = _parse_size(size)
    _, h, w = image.shape
    if ch > h or cw > w:
        raise ValueError(f"Crop size {ch}x{cw} does not fit in the {h}x{w} image: use a smaller crop "
                         f"or a larger image (load_image(name) without size gives the full photo).")
    gen = torch.Generator().manual_seed(int(seed))
    tops = torch.randint(0, h - ch + 1, (n,), generator=gen)
    lefts = torch.randint(0, w - cw + 1, (n,), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty(n, image.shape[0], ch, cw, dtype=image.dtype)
    for i in range(n):
        crop = image[:, int(tops[i]):int(tops[i]) + ch, int(lefts[i]):int(lefts[i]) + cw]
        out[i] = crop.flip(-1) if (flip and bool(flips[i])) else crop
    return out
