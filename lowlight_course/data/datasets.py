"""Paired (low, high) data: simulated pairs from the bundled photos, and real folders (LOL layout)."""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from .color import linear_to_srgb, srgb_to_linear
from .domains import get_domain
from .images import (BUNDLED_IMAGES, DEFAULT_SOURCES, PROCEDURAL_KINDS, _read_bundled, procedural_scene,
                     resize_image)
from .simulate import derive_seed, render_point_lights, simulate_low_light

__all__ = ["make_pairs", "PairedLowLightDataset", "LOLFolder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_SCALES = (2, 3, 4, 6)  # crop from the photo resized to short side = scale * crop size


@functools.lru_cache(maxsize=64)
def _scaled_source(name: str, short_side: int) -> torch.Tensor:
    img = _read_bundled(name)
    _, h, w = img.shape
    if short_side >= min(h, w):
        return img
    if h <= w:
        size = (short_side, max(short_side, round(w * short_side / h)))
    else:
        size = (max(short_side, round(h * short_side / w)), short_side)
    return resize_image(img, size)


def _check_sources(sources) -> tuple[str, ...]:
    if sources is None:
        return DEFAULT_SOURCES
    if isinstance(sources, str):
        sources = (sources,)
    sources = tuple(sources)
    if not sources:
        raise ValueError("sources is empty: pass None (all default photos) or names from list_images().")
    valid = list(BUNDLED_IMAGES) + [f"procedural:{k}" for k in PROCEDURAL_KINDS]
    for s in sources:
        if s not in valid:
            raise ValueError(f"Unknown source {s!r}. Valid sources: {', '.join(valid)}.")
    return sources


def _clean_crop(source: str, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if source.startswith("procedural:"):
        return procedural_scene(source.split(":", 1)[1], size, seed=seed)
    scale = _SCALES[int(torch.randint(len(_SCALES), (), generator=gen))]
    img = _scaled_source(source, scale * size)
    _, h, w = img.shape
    top = int(torch.randint(0, h - size + 1, (), generator=gen))
    left = int(torch.randint(0, w - size + 1, (), generator=gen))
    crop = img[:, top:top + size, left:left + size]
    if bool(torch.rand((), generator=gen) < 0.5):
        crop = crop.flip(-1)
    return crop


def make_pairs(n: int, size: int = 64, domain="outdoor_daylight", seed: int = 0, sources=None):
    """Build ``n`` seeded (low, high) training pairs, each of shape (n, 3, size, size).

    ``high`` are random crops (random scale, position and mirror) of the bundled photos, or
    procedural scenes (sources ``"procedural:shapes"``, ``"procedural:texture"``,
    ``"procedural:night"``); ``low`` is :func:`simulate_low_light` of each crop under ``domain``.
    For domains with point lights, the same lamps (same place, size and peak) are added to the
    linear ``high`` image and clipped, so both images show the same saturated lamp cores; the target
    is what a reference photo with highlight compression shows, not the blooming a 1/exposure
    times longer shot would give.

    Pair ``i`` depends only on ``(seed, i)``: ``make_pairs(10, ...)[k][:5]`` equals
    ``make_pairs(5, ...)[k]``.

    Example:
        >>> low, high = make_pairs(4, 32, "indoor_tungsten", seed=0)
        >>> low.shape, high.shape
        (torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32]))
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    d = get_domain(domain)
    sources = _check_sources(sources)
    high = torch.empty(n, 3, size, size)
    for i in range(n):
        s = derive_seed(seed, i)
        high[i] = _clean_crop(sources[s % len(sources)], size, s)
    low, params = simulate_low_light(high, d, seed=derive_seed(seed, -1), return_params=True)
    if d.has_lights:
        for i, lights in enumerate(params["lights"]):
            if lights:
                radiance = srgb_to_linear(high[i]) + render_point_lights(size, size, lights, d.light_rgb)
                high[i] = linear_to_srgb(radiance.clamp(0.0, 1.0))
    return low, high


class PairedLowLightDataset(Dataset):
    """A ``torch.utils.data.Dataset`` of simulated (low, high) pairs, each (3, size, size).

    ``PairedLowLightDataset(n, size, domain, seed, sources)`` calls :func:`make_pairs` once and
    keeps the tensors (``.low``, ``.high``). ``PairedLowLightDataset.from_tensors(low, high)`` wraps
    existing tensors. ``tensors()`` returns the ``(low, high)`` tuple that ``fit`` also accepts.
    """

    def __init__(self, n: int = 64, size: int = 64, domain="outdoor_daylight", seed: int = 0, sources=None):
        self.domain = get_domain(domain)
        self.low, self.high = make_pairs(n, size, self.domain, seed=seed, sources=sources)

    @classmethod
    def from_tensors(cls, low: torch.Tensor, high: torch.Tensor, domain=None) -> "PairedLowLightDataset":
        if not (isinstance(low, torch.Tensor) and isinstance(high, torch.Tensor)):
            raise TypeError("low and high must be tensors of shape (N, 3, H, W).")
        if low.shape != high.shape or low.dim() != 4:
            raise ValueError(f"low and high must have the same shape (N, 3, H, W), got "
                             f"{tuple(low.shape)} and {tuple(high.shape)}.")
        self = cls.__new__(cls)
        self.domain = get_domain(domain) if domain is not None else None
        self.low, self.high = low, high
        return self

    def __len__(self) -> int:
        return self.low.shape[0]

    def __getitem__(self, index):
        return self.low[index], self.high[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.low, self.high


_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _pil_to_float(im) -> np.ndarray:
    """A Pillow image as an (H, W, 3) float32 array in [0, 1], at the file's own precision."""
    if im.mode in _SIXTEEN_BIT_GREY:
        grey = np.asarray(im).astype(np.float64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise ValueError(f"a {im.mode} image with values in [{grey.min():g}, {grey.max():g}] is not a "
                             f"16-bit photo")
        grey = (grey / 65535.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "F":
        raise ValueError("32-bit float images have no defined white level")
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" and "transparency" in im.info else "RGB")
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr[..., :3].astype(np.float32) / np.float32(255.0)


class LOLFolder(Dataset):
    """Real paired photos in the LOL layout: ``root/low/NAME`` and ``root/high/NAME``.

    The LOL data set (Wei, Wang, Yang & Liu, "Deep Retinex Decomposition for Low-Light
    Enhancement", BMVC 2018) stores each low-light photo and its normal-light partner under the
    same file name in ``low/`` and ``high/``. Files are matched by name without extension (so
    ``low/1.png`` pairs with ``high/1.jpg``); .png, .jpg, .jpeg and .bmp are read with Pillow.

    Args:
        root: folder holding ``low/`` and ``high/`` (case-insensitive: ``Low/``, ``HIGH/`` work).
        size: ``None`` keeps each photo's size; an int or ``(h, w)`` centre-crops and resizes both,
            so items stack into batches.
        strict: ``True`` (default) raises if a file has no partner, naming every such file;
            ``False`` warns and skips them.

    Yields ``(low, high)``, float32 tensors (3, H, W) in [0, 1].
    """

    def __init__(self, root, size=None, strict: bool = True):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"LOL folder {root!r} does not exist. Pass the folder that holds "
                                    f"low/ and high/ (for LOL: .../LOLdataset/our485).")
        self.root, self.size = root, size
        low_dir, high_dir = self._subdir("low"), self._subdir("high")
        low, high = self._list(low_dir), self._list(high_dir)
        only_low = sorted(set(low) - set(high))
        only_high = sorted(set(high) - set(low))
        if only_low or only_high:
            lines = []
            if only_low:
                lines.append(f"in {low_dir} without a partner in high/: " + ", ".join(low[k] for k in only_low))
            if only_high:
                lines.append(f"in {high_dir} without a partner in low/: " + ", ".join(high[k] for k in only_high))
            msg = ("Unpaired files " + "; ".join(lines) +
                   ". Each low/NAME needs a high/NAME with the same name: add the partner or remove the file.")
            if strict:
                raise ValueError(msg)
            warnings.warn(msg + " They are skipped (strict=False).", stacklevel=2)
        keys = sorted(set(low) & set(high))
        if not keys:
            raise ValueError(f"No image pairs found in {root!r} (extensions: {', '.join(IMAGE_EXTENSIONS)}).")
        self.pairs = [(os.path.join(low_dir, low[k]), os.path.join(high_dir, high[k])) for k in keys]
        self.names = keys

    def _subdir(self, want: str) -> str:
        for entry in sorted(os.listdir(self.root)):
            if entry.lower() == want and os.path.isdir(os.path.join(self.root, entry)):
                return os.path.join(self.root, entry)
        raise FileNotFoundError(f"{self.root!r} has no {want}/ folder. The LOL layout is root/low/ and "
                                f"root/high/ holding photos with the same file names.")

    @staticmethod
    def _list(folder: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for f in sorted(os.listdir(folder)):
            stem, ext = os.path.splitext(f)
            if ext.lower() not in IMAGE_EXTENSIONS or f.startswith("."):
                continue
            if stem in found:
                raise ValueError(f"{folder!r} holds two images named {stem!r} ({found[stem]} and {f}): "
                                 f"keep one of them so each photo has exactly one partner.")
            found[stem] = f
        return found

    def __len__(self) -> int:
        return len(self.pairs)

    @staticmethod
    def read(path: str) -> torch.Tensor:
        """Read one image file as (3, H, W) float32 in [0, 1]; a clear error if it cannot be read.

        8-bit files (grey, grey + alpha, RGB, RGBA, palette, 1-bit) are scaled by 255; 16-bit
        greyscale PNGs (Pillow modes ``I;16``, ``I;16B``, ``I``) keep their full precision and are
        scaled by 65535. Pillow itself decodes 16-bit *colour* PNGs to 8 bits per channel, so those
        arrive with 8-bit precision (the scale is right). Grey is repeated to three channels;
        alpha is dropped (the colour values are kept as stored, not composited).
        """
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
                arr = _pil_to_float(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise OSError(f"Cannot read image {path!r} ({type(err).__name__}: {err}). The file is damaged or "
                          f"not an image: re-download or re-export it (e.g. as PNG), or remove it together "
                          f"with its partner.") from None
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def __getitem__(self, index):
        low_path, high_path = self.pairs[index]
        low, high = self.read(low_path), self.read(high_path)
        if self.size is not None:
            low, high = resize_image(low, self.size), resize_image(high, self.size)
        elif low.shape != high.shape:
            raise ValueError(f"{low_path!r} is {tuple(low.shape[1:])} but its partner {high_path!r} is "
                             f"{tuple(high.shape[1:])}: pass size=... to resize both, or fix the files.")
        return low, high
