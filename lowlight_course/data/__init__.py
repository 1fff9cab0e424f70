"""Offline data for the course: clean images, low-light simulation, illumination domains, datasets.

- :func:`list_images`, :func:`load_image`: colour photographs bundled in scikit-image (no download).
- :func:`procedural_scene`, :func:`random_crops`: synthetic scenes and seeded crops.
- :func:`srgb_to_linear`, :func:`linear_to_srgb`, :func:`luminance`: the sRGB curve (IEC 61966-2-1).
- :func:`simulate_low_light` and its steps: exposure, illuminant, Poisson-Gaussian noise
  (Brooks et al. 2019), clipping, 8-bit quantisation.
- :class:`Domain`, :data:`DOMAINS`, :func:`get_domain`: outdoor daylight, indoor tungsten, indoor
  fluorescent, night with point lights (HDR), and a randomised domain for augmentation.
- :func:`make_pairs`, :class:`PairedLowLightDataset`: seeded simulated training pairs.
- :class:`LOLFolder`: real paired photos in the LOL layout (``low/``, ``high/``).
"""
from .color import REC709_LUMA, linear_to_srgb, luminance, srgb_to_linear
from .datasets import IMAGE_EXTENSIONS, LOLFolder, PairedLowLightDataset, make_pairs
from .domains import (BROOKS_SHOT_RANGE, DOMAINS, Domain, get_domain, illuminant_from_cct, normalize_gains,
                      read_noise_from_shot)
from .images import (BUNDLED_IMAGES, DEFAULT_SOURCES, PROCEDURAL_KINDS, list_images, load_image,
                     procedural_scene, random_crops, resize_image)
from .simulate import (add_sensor_noise, apply_illuminant, derive_seed, quantize, render_point_lights,
                       sample_params, simulate_low_light)

__all__ = [
    "srgb_to_linear", "linear_to_srgb", "luminance", "REC709_LUMA",
    "list_images", "load_image", "procedural_scene", "random_crops", "resize_image",
    "BUNDLED_IMAGES", "DEFAULT_SOURCES", "PROCEDURAL_KINDS",
    "Domain", "DOMAINS", "get_domain", "illuminant_from_cct", "normalize_gains", "read_noise_from_shot",
    "BROOKS_SHOT_RANGE",
    "simulate_low_light", "sample_params", "add_sensor_noise", "apply_illuminant", "render_point_lights",
    "quantize", "derive_seed",
    "make_pairs", "PairedLowLightDataset", "LOLFolder", "IMAGE_EXTENSIONS",
]
