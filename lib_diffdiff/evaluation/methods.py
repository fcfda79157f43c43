"""What each compared method sends to the WebUI's img2img API for a change map, and for the all-change map whose
measurement removes the distance's own spatial bias (paper 5.2.1).

- ``diffdiff``: this extension with the map, denoising strength 1 (the map is the strength).
- ``inpaint``: the WebUI's inpaint with the map binarised at a threshold (white where the map >= it), original
  content under the mask, no blur, whole picture, strength 1; the evaluation sweeps the thresholds and reports
  the best, as the paper does for the methods that take two strengths only.
- ``soft-inpainting``: the built-in Soft Inpainting (its defaults) with the grey map as the inpaint mask, no blur,
  strength 1.
- ``img2img``: plain img2img at the map's mean strength, the reference that ignores the map (CAM near 0).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

METHODS = ("diffdiff", "inpaint", "soft-inpainting", "img2img")
LABELS = {
    "diffdiff": "Differential Diffusion",
    "inpaint": "Inpaint (best threshold)",
    "soft-inpainting": "Soft Inpainting",
    "img2img": "img2img (reference)",
}
SCRIPTS = {"diffdiff": "differential diffusion", "soft-inpainting": "soft inpainting"}
"""The always-on script a method needs, as the WebUI lists it (GET /sdapi/v1/scripts, lower case)."""
SOFT_INPAINTING_DEFAULTS = [True, 1, 0.5, 4, 0, 0.5, 2]
"""Soft Inpainting's args: enabled, mask blend power, scale, detail preservation, mask influence, difference
threshold, difference contrast (the WebUI's defaults)."""
DEFAULT_THRESHOLDS = (0.125, 0.375, 0.625, 0.875)
"""Midway between the shapes' and triangles' levels, so each threshold cuts them differently."""
ALL_CHANGE = "all-change"


@dataclass(frozen=True)
class Settings:
    """What every request shares (the rest is the WebUI's own settings)."""

    size: int = 512
    steps: int = 20
    sampler: str = "Euler"
    cfg_scale: float = 7.0
    prompt: str = ""
    negative_prompt: str = ""


def png64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def grey(values: np.ndarray) -> Image.Image:
    """A map in [0, 1] as an 8-bit grey picture (white = 1)."""
    return Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8), "L")


def binarise(change_map: np.ndarray, threshold: float) -> np.ndarray:
    return (change_map >= threshold).astype(np.float64)


class EncodedMap:
    """A change map with the pictures the methods send, encoded once (a run sends each thousands of times)."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.mean = round(float(values.mean()), 4)
        self.grey = png64(grey(values))
        self._binary: dict[float, str] = {}

    def binary(self, threshold: float) -> str:
        if threshold not in self._binary:
            self._binary[threshold] = png64(grey(binarise(self.values, threshold)))
        return self._binary[threshold]


def body(
    method: str,
    change_map: np.ndarray | EncodedMap | None,
    image: Image.Image | str,
    seed: int,
    settings: Settings,
    threshold: float | None = None,
    extra: dict | None = None,
) -> dict:
    """The img2img request of ``method`` for ``change_map`` (None: the all-change map) on ``image`` (a picture or
    its base64 PNG)."""
    size = settings.size
    full = change_map is None
    if not isinstance(change_map, EncodedMap):
        change_map = EncodedMap(np.ones((size, size)) if full else change_map)
    out = {
        "init_images": [image if isinstance(image, str) else png64(image)],
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "steps": settings.steps,
        "sampler_name": settings.sampler,
        "cfg_scale": settings.cfg_scale,
        "seed": seed,
        "subseed_strength": 0,
        "width": size,
        "height": size,
        "batch_size": 1,
        "n_iter": 1,
        "resize_mode": 0,
        "denoising_strength": 1.0,
        "send_images": True,
        "save_images": False,
    }
    if method == "diffdiff":
        out["alwayson_scripts"] = {SCRIPTS[method]: {"args": [{"enabled": True, "map": change_map.grey}]}}
    elif method in ("inpaint", "soft-inpainting"):
        binary = not full and method == "inpaint"
        mask = change_map.binary(threshold if threshold is not None else 0.5) if binary else change_map.grey
        out.update(mask=mask, mask_blur=0, inpainting_fill=1, inpaint_full_res=False, inpainting_mask_invert=0)
        if method == "soft-inpainting":
            out["alwayson_scripts"] = {SCRIPTS[method]: {"args": list(SOFT_INPAINTING_DEFAULTS)}}
    elif method == "img2img":
        out["denoising_strength"] = change_map.mean
    else:
        raise ValueError(f"unknown method {method!r}; the methods are {', '.join(METHODS)}")
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def variants(method: str, thresholds: Sequence[float]) -> list[float | None]:
    """The thresholds a method is run at (None: it takes the map as it is)."""
    return list(thresholds) if method == "inpaint" else [None]
