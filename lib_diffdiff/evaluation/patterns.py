"""The three change maps of the paper's Table 1 and Fig. 11, drawn here so anyone can reproduce them.

The paper shows the patterns (Fig. 11) without their geometry; these follow what it shows, in this project's
convention (white = change, values in [0, 1]), resolution-independent:

- ``gradient``: strength grows linearly from 0 at the left edge to 1 at the right edge.
- ``shapes``: on a black (keep) ground, four shapes of four strengths: a disc (1.0, upper left), a square
  (0.75, upper right), a horizontal bar (0.5, lower left) and a diamond (0.25, lower right).
- ``triangles``: the square cut along both diagonals into four triangles of strengths 0.25 (top), 0.5 (right),
  0.75 (bottom) and 1.0 (left).
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("gradient", "shapes", "triangles")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in [0, 1] (x to the right, y down)."""
    c = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(c, c)


def gradient(size: int) -> np.ndarray:
    x, _ = _grid(size)
    return (x - x.min()) / (x.max() - x.min()) if size > 1 else np.ones((1, 1))


def shapes(size: int) -> np.ndarray:
    x, y = _grid(size)
    m = np.zeros((size, size))
    m[(x - 0.27) ** 2 + (y - 0.27) ** 2 <= 0.19**2] = 1.0
    m[(np.abs(x - 0.73) <= 0.17) & (np.abs(y - 0.27) <= 0.17)] = 0.75
    m[(np.abs(x - 0.27) <= 0.2) & (np.abs(y - 0.73) <= 0.09)] = 0.5
    m[np.abs(x - 0.73) + np.abs(y - 0.73) <= 0.2] = 0.25
    return m


def triangles(size: int) -> np.ndarray:
    x, y = _grid(size)
    above_main, above_anti = y < x, y < 1 - x  # the two diagonals
    m = np.empty((size, size))
    m[above_main & above_anti] = 0.25  # top
    m[above_main & ~above_anti] = 0.5  # right
    m[~above_main & ~above_anti] = 0.75  # bottom
    m[~above_main & above_anti] = 1.0  # left
    return m


def pattern(name: str, size: int) -> np.ndarray:
    """The named pattern as a size x size float64 map in [0, 1] (white = change)."""
    makers = {"gradient": gradient, "shapes": shapes, "triangles": triangles}
    if name not in makers:
        raise ValueError(f"unknown pattern {name!r}; the patterns are {', '.join(PATTERNS)}")
    if size < 8:
        raise ValueError(f"a pattern needs at least 8 x 8 pixels, not {size}")
    return makers[name](size)
