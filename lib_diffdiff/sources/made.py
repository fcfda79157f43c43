"""One entry point from a source's name and options to its change map, for the WebUI glue and the preview: the
same call makes the map of a run and of its preview, so the two cannot differ."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ChangeMapError
from .estimated import ESTIMATED, Estimate, estimated_map
from .weight_free import colour_range, edge_distance, luminance, mask_edge_distance, point_distance, saturation

NEEDS_MASK = frozenset({"mask edge"})
"""Sources made from the inpaint mask rather than the image's pixels."""


def parse_colour(value: Any) -> tuple[int, int, int]:
    """``"#rrggbb"``, ``"#rgb"``, ``"r, g, b"`` or three numbers 0-255 as an RGB triple (what a colour picker, an
    infotext and a JSON client send)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("#") and len(text) in (4, 7):
            digits = text[1:] if len(text) == 7 else "".join(c * 2 for c in text[1:])
            try:
                return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
            except ValueError:
                pass
        else:
            value = [v.strip() for v in text.removeprefix("rgb(").removesuffix(")").split(",")]
    if isinstance(value, (list, tuple)) and len(value) == 3:
        try:
            numbers = [float(v) for v in value]
        except (TypeError, ValueError):
            numbers = []
        if numbers and all(math.isfinite(v) and 0 <= v <= 255 for v in numbers):
            return tuple(int(round(v)) for v in numbers)  # type: ignore[return-value]
    raise ChangeMapError(f"the colour must be '#rrggbb' or three numbers 0-255, got {value!r}")


def parse_point(value: Any) -> tuple[float, float]:
    """``"x, y"`` or two numbers, each a share in [0, 1] of the image's width and height."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if isinstance(value, (list, tuple)) and len(value) == 2:
        try:
            numbers = [float(v) if not isinstance(v, bool) else math.nan for v in value]
        except (TypeError, ValueError):
            numbers = []
        if numbers and all(math.isfinite(v) and 0 <= v <= 1 for v in numbers):
            return numbers[0], numbers[1]
    raise ChangeMapError(
        f"the point must be two numbers in [0, 1] (shares of the image's width and height), got {value!r}"
    )


def made_map(
    source: str,
    image: Any,
    *,
    mask: np.ndarray | None = None,
    colour: Any = (128, 128, 128),
    tolerance: float = 0.25,
    reach: float = 64.0,
    point: Any = (0.5, 0.5),
    estimate: Estimate | None = None,
) -> np.ndarray:
    """The change map (float32 HxW in [0, 1] at the image's size, white = change) that ``source`` makes from
    ``image`` (a PIL image or an RGB array); ``mask`` (HxW in [0, 1], 1 = inpainted) for "mask edge";
    ``estimate`` (the host's depth or segmentation estimator, image in, raw output out) for those sources."""
    if source in ESTIMATED:
        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image)[..., :3].astype(np.uint8))
        return estimated_map(source, image.convert("RGB"), estimate, parse_point(point))
    if source == "luminance":
        return luminance(image)
    if source == "saturation":
        return saturation(image)
    if source == "colour":
        return colour_range(image, parse_colour(colour), tolerance)
    if source == "edges":
        return edge_distance(image, reach)
    width, height = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
    if source == "point":
        x, y = parse_point(point)
        return point_distance(width, height, x * (width - 1), y * (height - 1), reach)
    if source == "mask edge":
        if mask is None:
            raise ChangeMapError(
                "map source 'mask edge' needs an inpaint mask: use the Inpaint tab or send 'mask' in the API"
            )
        return mask_edge_distance(mask, reach)
    raise ChangeMapError(f"unknown map source {source!r}")
