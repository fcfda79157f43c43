"""Change maps made from a model's estimate of the init image: a depth map (the paper's MiDaS maps, §4 and Fig. 14)
or a segmentation (its Segment-Anything maps). The estimators belong to the WebUI (ControlNet's preprocessors); this
module only turns what they return into a change map, and keeps one estimate per image so that the preview's polls
and the run that follows do not run the model again."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ChangeMapError
from ..maps.transforms import resize_to

ESTIMATED = ("depth", "segmentation")
"""Sources whose map comes from an estimator of the host (the kinds, as :func:`estimated_map` takes them)."""

Estimate = Callable[[Image.Image], np.ndarray]
"""What the glue hands :func:`estimated_map`: the init image in, the estimator's raw output out."""


def _plane(estimate: Any, what: str) -> np.ndarray:
    a = np.asarray(estimate)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., :3]
    elif a.ndim != 2:
        raise ChangeMapError(f"the {what} estimator returned an array of shape {a.shape}, not an image")
    if a.size == 0:
        raise ChangeMapError(f"the {what} estimator returned an empty image")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ChangeMapError(f"the {what} estimator returned NaN or infinite values")
    return a


def depth_map(estimate: Any, width: int, height: int) -> np.ndarray:
    """A depth estimate (near = bright, as every ControlNet depth preprocessor returns it) as a change map at the
    image's size: near = change, far = keep, stretched so the nearest pixel is 1 and the farthest 0 (Invert map
    swaps them). Unaltered, this is the paper's §12.1.2 map; the shaping makes the others of its Fig. 14."""
    a = _plane(estimate, "depth")
    if a.ndim == 3:
        a = a.mean(axis=2)  # grey preprocessors return three equal planes
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        raise ChangeMapError(
            "the depth estimate of this image is flat (one depth everywhere), so it makes no change map: "
            "pick another estimator or source"
        )
    m = ((a - lo) / (hi - lo)).astype(np.float32)
    if m.shape != (height, width):  # the estimator ran at its own resolution
        m = np.clip(resize_to(m, width, height), 0.0, 1.0).astype(np.float32)
    return m


def segment_map(estimate: Any, width: int, height: int, point: tuple[float, float]) -> np.ndarray:
    """A segmentation (one flat colour per class, as ControlNet's seg preprocessors draw it) as a change map at the
    image's size: the segment under ``point`` (shares of the width and height) changes, everything else is kept.
    Every pixel of that colour counts, connected or not: a class ("all the sky"), as the segmenter labels it."""
    a = _plane(estimate, "segmentation")
    if a.ndim == 2:
        a = a[..., None]
    h, w = a.shape[:2]
    x = min(int(point[0] * w), w - 1)
    y = min(int(point[1] * h), h - 1)
    m = np.all(a == a[y, x], axis=2)
    if (w, h) != (width, height):  # nearest neighbour: a class boundary stays a hard edge (shaping blurs it)
        m = np.asarray(Image.fromarray(m).resize((width, height), Image.NEAREST))
    return m.astype(np.float32)


def estimated_map(
    kind: str, image: Image.Image, estimate: Estimate | None, point: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """The change map a ``kind`` source (depth or segmentation) makes from ``image`` with the host's ``estimate``."""
    if estimate is None:
        raise ChangeMapError(f"map source {kind!r} needs one of the WebUI's {kind} estimators, and none was given")
    width, height = image.size
    raw = estimate(image)
    if kind == "depth":
        return depth_map(raw, width, height)
    if kind == "segmentation":
        return segment_map(raw, width, height, point)
    raise ChangeMapError(f"unknown estimated source {kind!r}; use one of {', '.join(map(repr, ESTIMATED))}")


def image_key(image: Image.Image) -> str:
    """A digest of the image's pixels, size and mode: the same picture sent again (a preview poll, then the run)
    gets the same key, any changed pixel a new one."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    return digest.hexdigest()


class EstimateCache:
    """The last few estimates, by estimator and image: an estimator runs once per image, not once per preview poll
    or per run. Bounded (an estimate is one image), and a pure function's result, so no generation sees another's
    state. Returned arrays are read-only: no caller can change what the next one gets."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, estimator: str, image: Image.Image, compute: Estimate) -> np.ndarray:
        key = (estimator, image_key(image))
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = np.array(compute(image))  # a copy the estimator cannot change later
        value.flags.writeable = False
        self._entries[key] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
