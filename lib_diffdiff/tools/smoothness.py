"""How smoothly a run follows a ramp map: the measurement of the continuous-strength mode.

A left-to-right linear ramp (0 to 1) is the change map; the mean change of each latent column is fitted against the
column's map value, over all columns (the overall slope) and within each *band*, the columns that the step rule
starts at the same model call (band slopes). The step rule makes flat bands (a staircase); a smooth mode has a
positive slope in every band. Spearman's rank correlation tells whether the change grows with the value at all.
Used by the fast tests, the live tests and ``benchmarks/bench_smooth.py``, so all three measure the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.schedule import pixel_strengths, plan_schedule


def ramp_image_map(width: int, height: int) -> np.ndarray:
    """The ramp as an image map, float32 HxW: pixel column x has value x / (width - 1)."""
    if width < 2 or height < 1:
        raise ValueError(f"a ramp needs at least 2x1 pixels, got {width}x{height}")
    row = np.linspace(0.0, 1.0, width, dtype=np.float32)
    return np.tile(row, (height, 1))


def column_values(image_map: np.ndarray, block: int = 8) -> np.ndarray:
    """The map value of each latent column: the mean over its ``block`` pixel columns (float64)."""
    m = np.asarray(image_map, dtype=np.float64)
    w = m.shape[-1] // block * block
    return m[..., :w].reshape(*m.shape[:-1], w // block, block).mean(axis=-1).reshape(-1, w // block).mean(axis=0)


def column_change(before: np.ndarray, after: np.ndarray, block: int = 8) -> np.ndarray:
    """Mean absolute change of each ``block``-pixel-wide column between two images (HxW or HxWxC arrays); with
    ``block=1`` on latents ([..., h, w]) the change of each latent column."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the images differ in shape: {a.shape} and {b.shape}")
    d = np.abs(b - a)
    if d.ndim == 3 and block > 1:  # HxWxC image: channels last
        d = d.mean(axis=2)
    w = d.shape[-1] // block * block
    d = d[..., :w].reshape(-1, w // block, block) if block > 1 else d.reshape(-1, d.shape[-1])
    return d.mean(axis=(0, 2)) if block > 1 else d.mean(axis=0)


def step_bands(values: np.ndarray, strength: float, steps: int) -> np.ndarray:
    """The band of each column: the step rule's t_enc for its strength (columns alike start at the same call)."""
    v = pixel_strengths(np.asarray(values, dtype=np.float64)[None], strength)
    return plan_schedule(v, [0.0] * steps, steps).t_enc.reshape(-1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation, ties ranked by their average (no scipy needed)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x), dtype=np.float64)
        r[order] = np.arange(len(x), dtype=np.float64)
        for value in np.unique(x):  # average ranks of ties
            tie = x == value
            if tie.sum() > 1:
                r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against x."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


@dataclass(frozen=True)
class RampFit:
    """The figures of one ramp measurement."""

    overall_slope: float
    band_slopes: tuple[float, ...]
    """One per band of at least two columns with different values, left to right."""
    spearman: float

    @property
    def band_ratio(self) -> float:
        """Mean band slope over the overall slope: 0 for a staircase, about 1 for a straight line."""
        return float(np.mean(self.band_slopes)) / self.overall_slope if self.band_slopes else float("nan")

    def smooth(self, min_ratio: float = 0.5, min_spearman: float = 0.99) -> bool:
        """The issue's bar: a positive slope in every band, the mean band slope at least ``min_ratio`` of the
        overall slope, and Spearman at least ``min_spearman``."""
        return (
            bool(self.band_slopes)
            and min(self.band_slopes) > 0
            and self.band_ratio >= min_ratio
            and self.spearman >= min_spearman
        )

    def line(self) -> str:
        bands = ", ".join(f"{b:.3g}" for b in self.band_slopes)
        return (
            f"overall slope {self.overall_slope:.4g}; band slopes [{bands}] (min {min(self.band_slopes):.3g}, "
            f"mean/overall {self.band_ratio:.2f}); Spearman {self.spearman:.4f}"
        )


def ramp_fit(values: np.ndarray, change: np.ndarray, bands: np.ndarray) -> RampFit:
    """Fit the change of each column against its map value, overall and within each band."""
    values = np.asarray(values, dtype=np.float64)
    change = np.asarray(change, dtype=np.float64)
    bands = np.asarray(bands)
    if not (values.shape == change.shape == bands.shape) or values.ndim != 1:
        shapes = f"{values.shape}, {change.shape}, {bands.shape}"
        raise ValueError(f"values, change and bands must be equal 1-D arrays: {shapes}")
    band_slopes = []
    for band in sorted(set(bands.tolist())):
        inside = bands == band
        if inside.sum() >= 2 and np.ptp(values[inside]) > 0:
            band_slopes.append(slope(values[inside], change[inside]))
    return RampFit(slope(values, change), tuple(band_slopes), spearman(values, change))
