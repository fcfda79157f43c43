"""Other scripts that run a generation in pieces, and how the change map follows them (duck-typed like the adapter).

The map is drawn for the image the user gave. A script that replaces the init image between model runs decides
what "aligned" means:

=====================  ==============================================================================================
Ultimate SD upscale    each tile is an "only masked" inpaint of the whole upscaled canvas (a stretch of the image),
                       so the map, fitted to the canvas and cut to the crop box, is the tile's part of it: the
                       default rule (fit to the current init image) already does that, seam passes included.
Loopback               from the second loop on, the init image is the last output (the processing frame): the map is
                       fitted from the user's image, recorded in ``setup``, so every loop samples the same frame map.
SD upscale             tiles of an upscaled copy come in as new init images with nothing that says where they lie:
                       refused with a message (a tile would get the whole map squeezed onto it).
ADetailer              its detail passes are new generations on the output; by default it runs only the scripts on
                       its list, so this one is not in them. If a user adds it, the pass runs without the map (the
                       detail pass has its own mask and strength) and says so in the console.
img2img Batch          the same map for every image of the folder; an image of another aspect ratio is refused.
=====================  ==============================================================================================
"""

from __future__ import annotations

from typing import Any

SOURCE_ATTRIBUTE = "diffdiff_source_size"
"""Where ``setup`` keeps the size of the user's init image on the processing object (None in the Batch tab)."""

FED_BACK = frozenset({"loopback"})
"""Selectable scripts that feed the output back as the next init image: the map is fitted from the user's image."""

REFUSED = {
    "sd upscale": (
        "SD upscale samples tiles of an upscaled copy, and nothing tells which tile is which, so a map cannot be "
        "cut for each; use Ultimate SD upscale (each tile gets its part of the map), or run Differential "
        "Diffusion first and SD upscale on its result"
    ),
}
"""Selectable scripts (lower-case titles) with which the map cannot be aligned, and what to do instead."""


def selected_script_title(p: Any) -> str | None:
    """The lower-case title of the selectable script chosen for this generation (the script dropdown; the API's
    ``script_name``), or None. The WebUI keeps its index + 1 in ``p.script_args[0]`` (0: none)."""
    runner, args = getattr(p, "scripts", None), getattr(p, "script_args", None)
    selectable = getattr(runner, "selectable_scripts", None) or []
    if not args or isinstance(args[0], bool) or not isinstance(args[0], int) or not 0 < args[0] <= len(selectable):
        return None
    try:
        return str(selectable[args[0] - 1].title()).strip().lower()
    except Exception:  # noqa: BLE001 (a third-party title() must not break a generation)
        return None


def record_source(p: Any) -> None:
    """Called from ``setup``, before any selectable script runs: remember the size of the user's init image."""
    images = getattr(p, "init_images", None)
    first = images[0] if images else None
    setattr(p, SOURCE_ATTRIBUTE, tuple(first.size) if hasattr(first, "size") else None)


def map_source_size(p: Any) -> tuple[int, int] | None:
    """The size the map is fitted to before the processing frame: the user's image for scripts that feed outputs
    back, else None (the current init image)."""
    if selected_script_title(p) in FED_BACK and not is_detail_pass(p):
        return getattr(p, SOURCE_ATTRIBUTE, None)
    return None


def refusal(p: Any) -> str | None:
    """Why the map cannot be aligned with the selected script, or None."""
    if is_detail_pass(p):
        return None
    return REFUSED.get(selected_script_title(p) or "")


def is_detail_pass(p: Any) -> bool:
    """ADetailer's inner inpaint pass (it marks its processing objects ``_ad_inner``)."""
    return bool(getattr(p, "_ad_inner", False))
