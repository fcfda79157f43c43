"""Maps made from the init image (map sources) for a generation: the one place the WebUI glue turns ``source`` and
its options into a change map, so a run, its preview and the editor's "made map" cannot differ."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..maps.alignment import fit_to_image
from ..maps.reading import load_change_map
from ..sources import ESTIMATED, NEEDS_MASK, made_map
from .estimators import host_estimate
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
