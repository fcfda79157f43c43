"""Maps made from the init image (map sources) for a generation: the one place the WebUI glue turns ``source`` and
its options into a change map, so a run, its preview and the editor's "made map" cannot differ."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ChangeMapError
from ..maps.alignment import fit_to_image
from ..maps.reading import load_change_map, load_rgba
from ..sources import ESTIMATED, NEEDS_MASK, made_map
from .estimators import host_estimate
from .script_args import parse_named
from .settings import DiffDiffArgs


def source_map(p: Any, args: DiffDiffArgs) -> np.ndarray:
    """The change map ``args.source`` makes from this generation's init image (at that image's size); "mask edge"
    reads the inpaint mask, as the WebUI takes it ("Inpaint not masked" inverts it); depth and segmentation run
    the WebUI's estimator (:mod:`.estimators`)."""
    image = p.init_images[0]
    mask = None
    if args.source in NEEDS_MASK and getattr(p, "image_mask", None) is not None:
        mask = fit_to_image(load_change_map(p.image_mask, what="inpaint mask"), *image.size, "inpaint mask")
        mask = (mask > 0.5).astype(np.float32)
        if getattr(p, "inpainting_mask_invert", 0):
            mask = 1.0 - mask
    return made_map(
        args.source,
        image,
        mask=mask,
        colour=args.source_colour,
        tolerance=args.source_tolerance,
        reach=args.source_reach,
        point=args.source_point,
        estimate=host_estimate(args.source, args.source_estimator) if args.source in ESTIMATED else None,
    )


def made_map_picture(body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /diffdiff/v1/made_map``: the map the chosen source makes from ``init_image`` (``mask`` for "mask edge"),
    at the image's size, as an 8-bit PNG data URL, before Invert map and the shaping: what the editor opens to be
    touched up. Painted, it then goes through Invert and the shaping like any painted map, so it plans as the source
    did (to 8 bits)."""
    settings = body.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ChangeMapError(f"field 'settings' must be an object of the extension's fields, got {settings!r}")
    args = parse_named({**settings, "enabled": True})
    if args.source == "painted":
        raise ChangeMapError("no map source is chosen, so there is no made map: pick a Map source first")
    mask = body.get("mask") or None
    if args.source in NEEDS_MASK:
        if mask is None:
            raise ChangeMapError(f"map source {args.source!r} needs an inpaint mask: send it as 'mask'")
        grey = load_change_map(mask, what="inpaint mask")
        image = Image.new("RGB", grey.shape[::-1])
    else:
        if not body.get("init_image"):
            raise ChangeMapError(f"map source {args.source!r} is made from the init image: send it as 'init_image'")
        image = load_rgba(body["init_image"], "init image").convert("RGB")
    p = SimpleNamespace(init_images=[image], image_mask=mask, inpainting_mask_invert=int(bool(body.get("mask_invert"))))
    m = source_map(p, args)
    buffer = io.BytesIO()
    Image.fromarray(np.rint(np.clip(m, 0, 1) * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"map": url, "width": image.width, "height": image.height, "source": args.source}
