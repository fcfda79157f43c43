"""Change maps made from the init image with no model: brightness, saturation, a colour range, edges, and distance
from a point or from the inpaint mask's edge. Each returns float32 HxW in [0, 1], white = change, at the image's
size, ready for the map shaping (levels, gamma, equalise, quantise, range), which turns one source into many maps
(the paper's Fig. 14)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ChangeMapError
from .distance import distance_to
from .edges import canny

LUMA = np.array([0.299, 0.587, 0.114])
"""ITU-R 601 weights: Pillow's "L" conversion, the one the WebUI's uploaded maps are read with."""


def as_rgb(image: Any) -> np.ndarray:
    """An RGB image as float64 HxWx3 in [0, 1] (a PIL image in any mode, or a uint8 HxWx3 / HxW array)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ChangeMapError(f"a map source needs an RGB image, got an array of shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ChangeMapError("a float image for a map source must have finite values in [0, 1]")
    return a


def _unit(name: str, value: Any) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        raise ChangeMapError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ChangeMapError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def _pixels(name: str, value: Any) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ChangeMapError(f"{name} must be a number of pixels > 0, got {value!r}")
    return float(value)


def _out(m: np.ndarray, invert: bool) -> np.ndarray:
    m = np.clip(m, 0.0, 1.0)
    return (1.0 - m if invert else m).astype(np.float32)


def luminance(image: Any, invert: bool = False) -> np.ndarray:
    """Bright = change (``invert``: dark = change): relight or recolour the highlights, or the shadows."""
    return _out(as_rgb(image) @ LUMA, invert)


def saturation(image: Any, invert: bool = False) -> np.ndarray:
    """Saturated = change (HSV saturation: (max - min) / max, 0 on black): leaves the greys alone."""
    rgb = as_rgb(image)
    top, bottom = rgb.max(axis=2), rgb.min(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(top > 0, (top - bottom) / np.where(top > 0, top, 1.0), 0.0)
    return _out(s, invert)


def colour_range(image: Any, colour: tuple[int, int, int], tolerance: float, invert: bool = False) -> np.ndarray:
    """Pixels near ``colour`` (RGB 0-255) change: 1 at the colour, falling linearly to 0 at RGB distance
    ``tolerance`` (in [0, 1], a share of black-to-white's distance): a soft selection of a sky, a shirt, a wall."""
    tolerance = _unit("the colour tolerance", tolerance)
    if tolerance == 0:
        raise ChangeMapError("the colour tolerance must be above 0")
    try:
        target = np.array([float(c) for c in colour], dtype=np.float64)
    except (TypeError, ValueError):
        raise ChangeMapError(f"the colour must be three numbers 0-255, got {colour!r}") from None
    if target.shape != (3,) or not np.isfinite(target).all() or target.min() < 0 or target.max() > 255:
        raise ChangeMapError(f"the colour must be three numbers 0-255, got {colour!r}")
    distance = np.linalg.norm(as_rgb(image) - target / 255.0, axis=2) / math.sqrt(3.0)
    return _out(1.0 - distance / tolerance, invert)


def point_distance(width: int, height: int, x: float, y: float, radius: float, invert: bool = False) -> np.ndarray:
    """Change around a point: 1 at (``x``, ``y``) (pixel centres at integer coordinates), falling linearly to 0 at
    ``radius`` pixels: a spot edit that fades into its surroundings."""
    radius = _pixels("the radius", radius)
    for name, v in (("x", x), ("y", y)):
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ChangeMapError(f"the point's {name} must be a number, got {v!r}")
    ys, xs = np.mgrid[0:height, 0:width]
    d = np.hypot(xs - float(x), ys - float(y))
    return _out(1.0 - d / radius, invert)


def mask_edge_distance(mask: np.ndarray, reach: float, invert: bool = False) -> np.ndarray:
    """Inside the inpaint mask the change grows from 0 at its edge to 1 at ``reach`` pixels in; 0 outside. The
    mask's middle is redrawn freely while its border blends in (a mask pixel's distance to the nearest unmasked
    pixel: 1 for the mask's outer ring)."""
    reach = _pixels("the reach", reach)
    inside = np.asarray(mask) > 0.5
    if inside.ndim != 2:
        raise ChangeMapError(f"the inpaint mask must be a 2-D map, got shape {inside.shape}")
    if not inside.any():
        raise ChangeMapError("the distance from the mask's edge needs an inpaint mask with something painted on it")
    d = distance_to(~inside, reach) if not inside.all() else np.full(inside.shape, reach)
    return _out(np.where(inside, d / reach, 0.0), invert)


def edge_distance(image: Any, reach: float, low: float = 0.1, high: float = 0.2, invert: bool = False) -> np.ndarray:
    """Near the image's edges = change: 1 on a Canny edge (thresholds ``low``, ``high`` on the gradient, see
    :func:`canny`), falling linearly to 0 at ``reach`` pixels. ``invert``: change the flat areas, keep the
    outlines. An image without edges gives a black map."""
    reach = _pixels("the reach", reach)
    edges = canny(as_rgb(image) @ LUMA, low, high)
    if not edges.any():
        return _out(np.zeros(edges.shape), invert)
    return _out(1.0 - distance_to(edges, reach) / reach, invert)
