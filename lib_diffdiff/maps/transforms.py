"""Change-map transforms: tone curves, the soft-inpaint blur, and the geometry that keeps a map aligned with the
image the WebUI actually samples (its resize modes, its "only masked" crop, the latent grid).

Every function takes and returns float32 HxW arrays in [0, 1], except :func:`to_latent`, which returns the float64
values the step schedule is chosen from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
from PIL import Image

from ..errors import ChangeMapError

LEVELS = 65535
"""Maps are snapped to multiples of 1/65535 before a step is chosen. The 8-bit levels k/255 are on this grid
(65535 = 255 * 257), so a grey level k and an API strength of k/255 choose the same step."""
_SNAP_TOLERANCE = 5e-7  # float32 rounding of a level and resampling sums stay far inside; the grid spacing is 1.5e-5


class ResizeMode(IntEnum):
    """The WebUI's img2img "Resize mode" values (``p.resize_mode``)."""

    JUST_RESIZE = 0
    CROP_AND_RESIZE = 1
    RESIZE_AND_FILL = 2
    LATENT_UPSCALE = 3  # the WebUI resizes in latent space; for a map this is the same as just resize


def invert(m: np.ndarray) -> np.ndarray:
    """Swap change and keep, for maps painted the other way round (the paper's black = change)."""
    return (1.0 - m).astype(np.float32)


def gamma(m: np.ndarray, g: float) -> np.ndarray:
    """Bend mid-greys: g > 1 keeps more (darker), g < 1 changes more; 0 and 1 stay put."""
    if not (math.isfinite(g) and g > 0):
        raise ChangeMapError(f"gamma must be a positive number, got {g!r}")
    return np.power(m, g, dtype=np.float32)


def contrast(m: np.ndarray, amount: float) -> np.ndarray:
    """Scale distances from mid-grey by ``amount`` (1 = unchanged, 0 = flat grey), clipped to [0, 1]."""
    if not (math.isfinite(amount) and amount >= 0):
        raise ChangeMapError(f"contrast must be a number >= 0, got {amount!r}")
    return np.clip((m - 0.5) * amount + 0.5, 0.0, 1.0).astype(np.float32)


def remap(m: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map black to ``lo`` and white to ``hi``: limits the range of strengths a map asks for."""
    for name, v in (("low", lo), ("high", hi)):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ChangeMapError(f"remap {name} must lie in [0, 1], got {v!r}")
    return np.clip(lo + (hi - lo) * m, 0.0, 1.0).astype(np.float32)


def gaussian_blur(m: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``radius`` pixels (as the WebUI's "Mask blur"), kernel cut at 3 sigma.

    The cut makes pixels farther than 3 * radius from any non-zero pixel exactly 0, and pixels that deep inside
    a white area exactly 1: soft inpainting leaves the far background untouched, bit for bit.
    """
    if not (math.isfinite(radius) and radius >= 0):
        raise ChangeMapError(f"the blur radius must be a number >= 0, got {radius!r}")
    if radius == 0:
        return m.astype(np.float32, copy=True)
    half = max(1, math.ceil(3.0 * radius))
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / radius) ** 2)
    kernel = (kernel / kernel.sum()).to(torch.float32)
    x = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None]
    height, width = m.shape
    for dim, size in ((3, width), (2, height)):
        pad = (half, half, 0, 0) if dim == 3 else (0, 0, half, half)
        mode = "reflect" if half < size else "replicate"
        x = torch.nn.functional.pad(x, pad, mode=mode)
        weight = kernel.view(1, 1, 1, -1) if dim == 3 else kernel.view(1, 1, -1, 1)
        x = torch.nn.functional.conv2d(x, weight)
    out = x[0, 0].numpy()
    out = np.where(np.abs(out) < 1e-6, 0.0, np.where(np.abs(out - 1.0) < 1e-6, 1.0, out))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def crop(m: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut the map to ``box`` = (x1, y1, x2, y2), the WebUI's crop region for "Inpaint area: Only masked"."""
    x1, y1, x2, y2 = (int(v) for v in box)
    height, width = m.shape
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ChangeMapError(f"crop box {box} does not lie inside the {width}x{height} map")
    return np.ascontiguousarray(m[y1:y2, x1:x2], dtype=np.float32)


def _resample(m: np.ndarray, width: int, height: int) -> np.ndarray:
    # Bilinear on a float image: non-negative weights, so no ringing (LANCZOS would lift black areas above 0),
    # and Pillow antialiases when shrinking.
    if m.shape == (height, width):
        return m.astype(np.float32, copy=True)
    image = Image.fromarray(np.ascontiguousarray(m, dtype=np.float32), mode="F")
    out = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def resize_to(m: np.ndarray, width: int, height: int, mode: int | ResizeMode = ResizeMode.JUST_RESIZE) -> np.ndarray:
    """Resize the map to ``width`` x ``height`` with the geometry of the WebUI's ``images.resize_image`` for
    ``mode``, so the map lands on the same pixels as the image the WebUI resized."""
    if width <= 0 or height <= 0:
        raise ChangeMapError(f"cannot resize a map to {width}x{height}")
    try:
        mode = ResizeMode(int(mode))
    except ValueError as e:
        raise ChangeMapError(f"unknown resize mode {mode!r}; expected 0, 1, 2 or 3") from e
    src_h, src_w = m.shape
    if mode in (ResizeMode.JUST_RESIZE, ResizeMode.LATENT_UPSCALE):
        return _resample(m, width, height)
    ratio = width / height
    src_ratio = src_w / src_h
    cover = ratio > src_ratio if mode == ResizeMode.CROP_AND_RESIZE else ratio < src_ratio
    src_w_scaled = width if cover else src_w * height // src_h
    src_h_scaled = src_h * width // src_w if cover else height
    resized = _resample(m, src_w_scaled, src_h_scaled)
    out = np.zeros((height, width), dtype=np.float32)
    left, top = width // 2 - src_w_scaled // 2, height // 2 - src_h_scaled // 2
    # paste (with a negative offset this is the centre crop of mode 1)
    ys, xs = slice(max(top, 0), min(top + src_h_scaled, height)), slice(max(left, 0), min(left + src_w_scaled, width))
    out[ys, xs] = resized[ys.start - top : ys.stop - top, xs.start - left : xs.stop - left]
    if mode == ResizeMode.RESIZE_AND_FILL:
        # the WebUI fills the borders by stretching the outermost rows/columns of the resized image
        # (the same fill size on both sides, so an odd leftover row/column stays 0, as in the WebUI)
        if ratio < src_ratio and top > 0:
            out[:top] = _resample(resized[:1], width, top)
            bottom = out[top + src_h_scaled : 2 * top + src_h_scaled]
            bottom[:] = _resample(resized[-1:], width, top)[: len(bottom)]
        elif ratio > src_ratio and left > 0:
            out[:, :left] = _resample(resized[:, :1], left, height)
            right = out[:, left + src_w_scaled : 2 * left + src_w_scaled]
            right[:] = _resample(resized[:, -1:], left, height)[:, : right.shape[1]]
    return out


def snap_to_levels(values: np.ndarray) -> np.ndarray:
    """Round values within float32 noise of a multiple of 1/65535 onto it exactly (float64); see :data:`LEVELS`."""
    values = np.asarray(values, dtype=np.float64)
    nearest = np.rint(values * LEVELS) / LEVELS
    return np.clip(np.where(np.abs(values - nearest) <= _SNAP_TOLERANCE, nearest, values), 0.0, 1.0)


def to_latent(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reduce the map to the latent grid by area averaging (each latent pixel takes the mean of the pixels it
    covers), in float64, snapped with :func:`snap_to_levels`: the values the per-pixel steps are chosen from."""
    src_h, src_w = m.shape
    if height <= 0 or width <= 0 or height > src_h or width > src_w:
        raise ChangeMapError(f"cannot reduce a {src_w}x{src_h} map to a {width}x{height} latent")
    # float64 throughout: pooling float32 in float32 drifts by several ulps, enough to move a grey level off its step
    if src_h % height == 0 and src_w % width == 0:
        reduced = m.reshape(height, src_h // height, width, src_w // width).mean(axis=(1, 3), dtype=np.float64)
    else:
        t = torch.from_numpy(np.ascontiguousarray(m)).to(torch.float64)[None, None]
        reduced = torch.nn.functional.adaptive_avg_pool2d(t, (height, width))[0, 0].numpy()
    return snap_to_levels(reduced)


def levels(m: np.ndarray, black: float, white: float) -> np.ndarray:
    """Levels: values at or below ``black`` become 0, at or above ``white`` become 1, linear in between."""
    for name, v in (("black point", black), ("white point", white)):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ChangeMapError(f"the {name} must lie in [0, 1], got {v!r}")
    if white <= black:
        raise ChangeMapError(f"the white point ({white:g}) must be above the black point ({black:g})")
    return np.clip((m - np.float32(black)) / np.float32(white - black), 0.0, 1.0).astype(np.float32)


def quantize(m: np.ndarray, n: int) -> np.ndarray:
    """Round to ``n`` evenly spaced levels (0 and 1 among them): ``n`` distinct strengths, so at most ``n``
    distinct steps at which regions are freed (the paper's stepped maps, Fig. 14)."""
    if int(n) != n or n < 2:
        raise ChangeMapError(f"quantising needs at least 2 levels, got {n!r}")
    k = int(n) - 1
    return (np.rint(m.astype(np.float64) * k) / k).astype(np.float32)


def equalize(m: np.ndarray) -> np.ndarray:
    """Histogram equalisation on the 1/65535 grid: every value becomes the fraction of pixels strictly darker than
    it, stretched so the darkest value stays 0 and the brightest becomes 1. A flat map is returned unchanged
    (there is no spread to equalise). Spreads a depth map's strengths evenly over its area (paper 3.3.2)."""
    codes = np.rint(np.clip(m, 0.0, 1.0).astype(np.float64) * LEVELS).astype(np.int64)
    counts = np.bincount(codes.ravel(), minlength=LEVELS + 1)
    below = np.cumsum(counts) - counts  # pixels strictly darker than each code
    lowest = below[codes.min()]
    spread = below[codes.max()] - lowest
    if spread == 0:
        return m.astype(np.float32, copy=True)
    return ((below[codes] - lowest) / spread).astype(np.float32)


@dataclass(frozen=True)
class MapShape:
    """The tone and shape transforms a user sets on a change map. The WebUI run reads a map as: invert, map
    multiplier, fit to the init image's size, then :meth:`apply`, in this fixed order:

    1. histogram equalisation, 2. levels (black point, white point), 3. gamma, 4. blur (radius in image pixels),
    5. quantise to N levels, 6. output range (the strengths black and white stand for).

    Equalising first works on the map as painted; levels and gamma then shape its curve; the blur softens edges
    the curve left; quantising after the blur gives exactly N strengths; the output range comes last so its ends
    are the strengths the user asked for. The defaults are the identity, and a transform at its default is
    skipped, so a map with default settings is read bit for bit as before.
    """

    equalize: bool = False
    black_point: float = 0.0
    white_point: float = 1.0
    gamma: float = 1.0
    blur: float = 0.0
    quantize: int = 0
    """0 = off, else the number of levels (at least 2)."""
    range_low: float = 0.0
    range_high: float = 1.0

    def check(self) -> None:
        """Raise :class:`ChangeMapError` for settings no map can be shaped with (before any map is read)."""
        probe = np.zeros((1, 1), dtype=np.float32)
        levels(probe, self.black_point, self.white_point)
        gamma(probe, self.gamma)
        gaussian_blur(probe, self.blur)
        if self.quantize != 0:
            quantize(probe, self.quantize)
        remap(probe, self.range_low, self.range_high)

    def apply(self, m: np.ndarray) -> np.ndarray:
        """The shaped map (float32 HxW in [0, 1])."""
        if self.equalize:
            m = equalize(m)
        if (self.black_point, self.white_point) != (0.0, 1.0):
            m = levels(m, self.black_point, self.white_point)
        if self.gamma != 1.0:
            m = gamma(m, self.gamma)
        if self.blur != 0.0:
            m = gaussian_blur(m, self.blur)
        if self.quantize != 0:
            m = quantize(m, self.quantize)
        if (self.range_low, self.range_high) != (0.0, 1.0):
            m = remap(m, self.range_low, self.range_high)
        return m
