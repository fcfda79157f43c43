"""Euclidean distance to the nearest marked pixel, exact up to a reach: the geometry behind the distance sources.

A map made from a distance only needs it up to the distance where the map reaches 0 (or 1), so the transform is
exact up to ``reach`` and saturates beyond it. Two separable passes: along each row, the distance to the nearest
marked pixel of that row (two vectorised scans); along each column, the smallest g(i')^2 + (i - i')^2 over the
offsets |i - i'| <= reach (one vectorised step per offset). No per-pixel Python loop.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ChangeMapError


def _row_distance(marked: np.ndarray, cap: float, dtype: type = np.float64) -> np.ndarray:
    """Per row, the distance in pixels to the nearest marked pixel of the same row (``cap`` where there is none
    within ``cap``). Scans the transposed mask so each step reads and writes one contiguous row."""
    columns = np.ascontiguousarray(marked.T)
    width, height = columns.shape
    d = np.empty((width, height), dtype=dtype)
    run = np.full(height, cap, dtype=dtype)
    for j in range(width):  # left to right: distance to the nearest marked pixel at or before j
        run = np.where(columns[j], 0.0, np.minimum(run + 1.0, cap))
        d[j] = run
    run = np.full(height, cap, dtype=dtype)
    for j in range(width - 1, -1, -1):  # right to left
        run = np.where(columns[j], 0.0, np.minimum(run + 1.0, cap))
        np.minimum(d[j], run, out=d[j])
    return np.ascontiguousarray(d.T)


def distance_to(marked: np.ndarray, reach: float) -> np.ndarray:
    """The Euclidean distance (float64, pixels) from each pixel to the nearest True pixel of ``marked``, exact
    where it is at most ``reach`` and ``reach`` (saturated) beyond; ``reach`` everywhere when nothing is marked."""
    if not (isinstance(reach, (int, float)) and math.isfinite(reach) and reach > 0):
        raise ChangeMapError(f"the reach must be a number of pixels > 0, got {reach!r}")
    marked = np.asarray(marked, dtype=bool)
    if marked.ndim != 2:
        raise ChangeMapError(f"a distance needs a 2-D mask, got shape {marked.shape}")
    cap = float(reach) + 1.0
    # every value below is a whole number (cap too, once floored) up to 2 * cap^2: float32 holds those exactly up to
    # 2^24, and is twice as fast; a longer reach computes in float64
    cap = math.floor(cap)
    dtype = np.float32 if 2 * cap * cap < 2**24 else np.float64
    g2 = _row_distance(marked, cap, dtype) ** 2
    height = marked.shape[0]
    best = g2.copy()
    for k in range(1, min(int(math.floor(reach)), height - 1) + 1):
        k2 = dtype(k * k)
        np.minimum(best[k:], g2[:-k] + k2, out=best[k:])  # the nearest one k rows above
        np.minimum(best[:-k], g2[k:] + k2, out=best[:-k])  # k rows below
    return np.minimum(np.sqrt(best.astype(np.float64)), float(reach))
