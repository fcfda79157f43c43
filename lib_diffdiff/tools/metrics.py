"""How well outputs follow their change map (paper section 5.2).

Edit strength (5.2.1): the per-pixel perceptual distance between input and output, averaged over many pairs (the
"biased measurement"), minus the same measurement for an all-change run, which removes the spatial bias of the
distance itself. CAM (5.2.2) is the Pearson correlation of the change map with that edit-strength map; DAM is
min over (a, b) of the Frobenius norm of M - (a E + b).

In this project's convention (white = change) the map and the edit strength grow together, so a good result has a
CAM near +1; the paper's maps (black = change) and its similarity-based measurement give the same number.

The distance: LPIPS needs network weights that no package here ships, so the default is a pixel-space
perceptual distance, DSSIM = (1 - SSIM) / 2 per pixel (Gaussian window, sigma 1.5; the mean over RGB), which like
LPIPS is local, structure-aware and 0 for identical images. Pass ``distance=`` any function of two float32 HxWx3
images in [0, 1] returning an HxW map to use LPIPS (e.g. the ``lpips`` package with your own weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import ChangeMapError

DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """float32 HxWx3 in [0, 1] from a picture or a uint8/float array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ChangeMapError(f"expected an RGB image, got an array of shape {a.shape}")
    a = a[:, :, :3]
    return (a.astype(np.float32) / 255.0) if a.dtype == np.uint8 else a.astype(np.float32)


def _gaussian_window(sigma: float) -> torch.Tensor:
    half = math.ceil(3.5 * sigma)
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


def dssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel structural dissimilarity (1 - SSIM) / 2 of two HxWx3 images in [0, 1], averaged over channels."""
    if a.shape != b.shape:
        raise ChangeMapError(f"images of different sizes: {a.shape} and {b.shape}")
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)).permute(2, 0, 1)[:, None]
    k = _gaussian_window(sigma)
    pad = k.numel() // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if pad < min(t.shape[-2:]) else "replicate"
        t = torch.nn.functional.pad(t, (pad, pad, pad, pad), mode=mode)
        t = torch.nn.functional.conv2d(t, k.view(1, 1, 1, -1))
        return torch.nn.functional.conv2d(t, k.view(1, 1, -1, 1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ((1.0 - ssim) / 2.0).mean(dim=0)[0].clamp(0.0, 1.0).numpy()


def biased_measurement(
    pairs: Sequence[tuple[Image.Image | np.ndarray, Image.Image | np.ndarray]], distance: DistanceFn = dssim_map
) -> np.ndarray:
    """Mean per-pixel distance over (input, output) pairs."""
    if not pairs:
        raise ChangeMapError("at least one (input, output) pair is needed")
    total = None
    for before, after in pairs:
        d = np.asarray(distance(to_rgb_array(before), to_rgb_array(after)), dtype=np.float64)
        if total is not None and d.shape != total.shape:
            raise ChangeMapError("all images must have the same size")
        total = d if total is None else total + d
    return total / len(pairs)


def edit_strength_map(
    pairs: Sequence[tuple[Image.Image | np.ndarray, Image.Image | np.ndarray]],
    baseline_pairs: Sequence[tuple[Image.Image | np.ndarray, Image.Image | np.ndarray]] | None = None,
    distance: DistanceFn = dssim_map,
) -> np.ndarray:
    """E_M of paper 5.2.1: the biased measurement of the map's runs minus that of all-change runs (when given)."""
    measured = biased_measurement(pairs, distance)
    if baseline_pairs:
        baseline = biased_measurement(baseline_pairs, distance)
        if baseline.shape != measured.shape:
            raise ChangeMapError("baseline images must have the size of the measured ones")
        measured = measured - baseline
    return measured


def _aligned(change_map: np.ndarray, edit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(change_map, dtype=np.float64)
    e = np.asarray(edit, dtype=np.float64)
    if m.shape != e.shape:
        resized = Image.fromarray(m.astype(np.float32), mode="F").resize(e.shape[::-1], Image.Resampling.BILINEAR)
        m = np.asarray(resized, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(e).all()):
        raise ChangeMapError("the change map or the edit-strength map has NaN or infinite values")
    return m.ravel(), e.ravel()


def cam(change_map: np.ndarray, edit: np.ndarray) -> float:
    """Correlation Adherence Metric: Pearson correlation of map and edit strength (NaN when either is constant)."""
    m, e = _aligned(change_map, edit)
    m, e = m - m.mean(), e - e.mean()
    denominator = math.sqrt(float(m @ m) * float(e @ e))
    return float(m @ e) / denominator if denominator > 0 else math.nan


def _fit(change_map: np.ndarray, edit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map, a E + b): the least-squares affine fit of the map by the edit strength, both flat."""
    m, e = _aligned(change_map, edit)
    design = np.stack([e, np.ones_like(e)], axis=1)
    coef, *_ = np.linalg.lstsq(design, m, rcond=None)
    return m, design @ coef


def dam(change_map: np.ndarray, edit: np.ndarray) -> float:
    """Distance Adherence Metric: min over (a, b) of ||M - (a E + b)||_F, the residual of the least-squares fit of
    the map by the edit strength (maps in [0, 1]; the value grows with the pixel count)."""
    m, fitted = _fit(change_map, edit)
    return float(np.linalg.norm(m - fitted))


def fitted_map(change_map: np.ndarray, edit: np.ndarray) -> np.ndarray:
    """The edit strength in the map's units, a E + b with the (a, b) of DAM: how a measured map is shown beside
    the map it was made with (paper Fig. 11), on the edit strength's grid."""
    _, fitted = _fit(change_map, edit)
    return fitted.reshape(np.shape(edit))
