"""Canny edges in numpy (blur, Sobel gradient, thinning to the ridge, two thresholds with hysteresis), so the edge
source needs no OpenCV: the library stays torch/numpy/pillow and gives the same edges on every host."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ChangeMapError
from ..maps.transforms import gaussian_blur


def _neighbours(a: np.ndarray):
    """``at(dy, dx)`` gives ``a`` moved by (dy, dx) with its border repeated: out[y, x] = a[y - dy, x - dx],
    clamped; views of one padded copy, so the many shifts of a filter cost no copies."""
    padded = np.pad(a, 1, mode="edge")
    height, width = a.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return padded[1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]

    return at


def _dilate(a: np.ndarray) -> np.ndarray:
    at = _neighbours(a)
    out = a.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                out |= at(dy, dx)
    return out


def canny(grey: np.ndarray, low: float, high: float, sigma: float = 1.4) -> np.ndarray:
    """Edges of a grey image with values in [0, 1]: True on one-pixel-wide ridges of the gradient whose strength
    is at least ``high``, or at least ``low`` and connected to such a ridge. Strengths are Sobel magnitudes of the
    image blurred with std ``sigma`` pixels, divided by 4 (a sharp step from 0 to 1 scores 1 unblurred, about 0.5
    after the default blur)."""
    for name, v in (("low", low), ("high", high)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ChangeMapError(f"the edge threshold {name} must lie in [0, 1], got {v!r}")
    if low > high:
        raise ChangeMapError(f"the low edge threshold ({low:g}) must not be above the high one ({high:g})")
    g = gaussian_blur(np.asarray(grey, dtype=np.float32), sigma).astype(np.float32)
    at = _neighbours(g)
    gx = (at(0, -1) - at(0, 1)) * 2 + at(1, -1) - at(1, 1) + at(-1, -1) - at(-1, 1)
    gy = (at(-1, 0) - at(1, 0)) * 2 + at(-1, 1) - at(1, 1) + at(-1, -1) - at(1, -1)
    magnitude = np.hypot(gx, gy) / np.float32(4.0)
    # thin to the ridge: keep a pixel that is at least its two neighbours across the edge (the gradient's direction
    # rounded to 0, 45, 90 or 135 degrees, from the ratio |gy| / |gx| against tan 22.5 and tan 67.5: no arctan)
    ax, ay = np.abs(gx), np.abs(gy)
    horizontal = ay <= ax * np.float32(math.tan(math.radians(22.5)))
    vertical = ay > ax * np.float32(math.tan(math.radians(67.5)))
    diagonal = ~(horizontal | vertical)
    rising = (gx > 0) == (gy > 0)  # 45 degrees (both the same sign) rather than 135
    sectors = (horizontal, diagonal & rising, vertical, diagonal & ~rising)
    ridge = np.zeros(g.shape, dtype=bool)
    near = _neighbours(magnitude)
    for sector, (dy, dx) in zip(sectors, ((0, 1), (1, 1), (1, 0), (1, -1))):
        # the neighbour at (y - dy, x - dx) and the opposite one
        keep = (magnitude >= near(dy, dx)) & (magnitude >= near(-dy, -dx))
        ridge |= sector & keep
    ridge &= magnitude > 0
    strong = ridge & (magnitude >= high)
    weak = ridge & (magnitude >= low)
    edges = strong
    while True:  # hysteresis: grow the strong ridges along the weak ones until nothing changes
        grown = _dilate(edges) & weak
        if np.array_equal(grown, edges):
            return edges
        edges = grown
