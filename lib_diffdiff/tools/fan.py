"""Strength fan (paper section 4.2): one run whose map is a row of columns, each a different strength, so the
strengths can be compared side by side on the same image, seed and prompt."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ChangeMapError
from .drawing import centred_text, font

MAX_COLUMNS = 64


def check_strengths(strengths: Sequence[float]) -> list[float]:
    """Validate a list of fan strengths (each in [0, 1], at least one, at most :data:`MAX_COLUMNS`)."""
    if isinstance(strengths, (str, bytes)) or not isinstance(strengths, Sequence):
        raise ChangeMapError(f"fan strengths must be a list of numbers, got {type(strengths).__name__}")
    out = []
    for s in strengths:
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise ChangeMapError(f"fan strengths must be numbers, got {s!r}")
        if not (0.0 <= s <= 1.0 and math.isfinite(s)):  # compared first: isfinite(10**400) would overflow
            raise ChangeMapError(f"fan strengths must lie in [0, 1], got {s!r}")
        out.append(float(s))
    if not out:
        raise ChangeMapError("the strength fan needs at least one strength")
    if len(out) > MAX_COLUMNS:
        raise ChangeMapError(f"the strength fan takes at most {MAX_COLUMNS} strengths, got {len(out)}")
    return out


def parse_strengths(text: str) -> list[float]:
    """Parse "0.2, 0.4 0.6" (commas and/or spaces), as typed in the UI or an X/Y/Z axis."""
    parts = [p for p in re.split(r"[,\s;]+", str(text).strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError as e:
        raise ChangeMapError(f"fan strengths must be numbers separated by commas, got {text!r}") from e
    return check_strengths(values)


def fan_strengths(lo: float, hi: float, count: int) -> list[float]:
    """``count`` evenly spaced strengths from ``lo`` to ``hi`` inclusive, rounded to 4 decimals."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ChangeMapError(f"the fan needs a whole number of columns >= 1, got {count!r}")
    if count == 1:
        return check_strengths([lo])
    return check_strengths([round(lo + (hi - lo) * i / (count - 1), 4) for i in range(count)])


def column_bounds(width: int, count: int, align: int = 8) -> list[int]:
    """Left edges of the ``count`` columns plus the right edge, on multiples of ``align`` pixels (the latent grid:
    a latent pixel covers 8x8 image pixels, so a boundary inside one would blend two strengths)."""
    cells = width // align
    if cells < count:
        raise ChangeMapError(f"{count} fan columns do not fit in {width} pixels ({align}-pixel cells)")
    return [round(i * cells / count) * align for i in range(count)] + [width]


def fan_map(strengths: Sequence[float], width: int, height: int, align: int = 8) -> np.ndarray:
    """The fan's change map, float64 HxW, columns left to right. float64 keeps each strength exact until the step
    is chosen; run it with a denoising strength of 1 so the columns are the strengths themselves."""
    values = check_strengths(strengths)
    bounds = column_bounds(width, len(values), align)
    m = np.empty((height, width), dtype=np.float64)
    for s, left, right in zip(values, bounds, bounds[1:], strict=False):
        m[:, left:right] = s
    return m


def label_fan(image: Image.Image, strengths: Sequence[float], align: int = 8) -> Image.Image:
    """Write each column's strength at its top (paper Fig. 24), on a dark band so it reads on any picture."""
    values = check_strengths(strengths)
    out = image.convert("RGB")
    bounds = column_bounds(out.width, len(values), align)
    size = max(8, min(out.height // 12, min(r - left for left, r in zip(bounds, bounds[1:], strict=False)) // 3))
    typeface = font(size)
    draw = ImageDraw.Draw(out)
    band = int(size * 1.6)
    for s, left, right in zip(values, bounds, bounds[1:], strict=False):
        draw.rectangle((left, 0, right - 1, band), fill=(0, 0, 0), outline=(90, 90, 90))
        text = f"{s:.2f}".rstrip("0").rstrip(".") if s not in (0.0, 1.0) else f"{s:.0f}"
        centred_text(draw, ((left + right) / 2, band / 2), text, typeface, (255, 255, 255))
    return out
