"""The extension's settings: one table that is the single source of truth for defaults, UI labels and help, API
field names, infotext keys and X/Y/Z axes. The UI builds its components from it in this order, the API's
positional form follows the same order, and tests keep the table and :class:`DiffDiffArgs` in sync."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..maps.transforms import MapShape

MODES = {"map": "Change map", "soft inpaint": "Soft inpaint", "fan": "Strength fan"}
"""API value -> UI label of each mode."""

DEFAULT_FAN = (0.2, 0.4, 0.6, 0.8, 1.0)

SOURCES = {
    "painted": "Painted or uploaded",
    "luminance": "Brightness",
    "saturation": "Saturation",
    "colour": "Colour range",
    "edges": "Near edges",
    "point": "Around a point",
    "mask edge": "Inpaint mask, from its edge in",
    "depth": "Depth (near = change)",
    "segmentation": "Segment under the point",
}
"""API value -> UI label of each change-map source (lib_diffdiff.sources makes the map from the init image)."""

SOURCE_OPTIONS = {
    "painted": (),
    "luminance": (),
    "saturation": (),
    "colour": ("source_colour", "source_tolerance"),
    "edges": ("source_reach",),
    "point": ("source_point", "source_reach"),
    "mask edge": ("source_reach",),
    "depth": ("source_estimator",),
    "segmentation": ("source_estimator", "source_point"),
}
"""The settings each source reads (the UI shows them, the infotext writes them, for that source only)."""


@dataclass(frozen=True)
class Setting:
    """How one setting appears everywhere."""

    name: str
    """API field name and DiffDiffArgs attribute."""
    label: str
    """UI label (also the X/Y/Z axis label, prefixed with "DiffDiff ")."""
    info: str
    """UI help text."""
    infotext: str | None
    """Infotext key, or None when the setting is not written (the map itself is summarised instead)."""
    xyz: bool = False
    """Whether an X/Y/Z plot axis exists for it."""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "enabled",
        "Differential Diffusion",
        "Turn per-pixel strength on for this generation.",
        "Differential diffusion",
        xyz=True,
    ),
    Setting(
        "mode",
        "Mode",
        "Change map: your grey map sets each pixel's strength. Soft inpaint: the inpaint mask, "
        "blurred by Softness, becomes the map. Strength fan: columns of different strengths, side by side.",
        "Differential diffusion mode",
        xyz=True,
    ),
    Setting(
        "map",
        "Change map",
        "White = change (the full denoising strength), black = keep, grey in between. Same aspect ratio as the image.",
        "Differential diffusion map",
    ),
    Setting(
        "invert",
        "Invert map",
        "Read the map as black = change (the paper's convention).",
        "Differential diffusion invert",
        xyz=True,
    ),
    Setting(
        "multiplier",
        "Map multiplier",
        "Multiplies the map before it meets the denoising strength; values above 1 clip at white.",
        "Differential diffusion multiplier",
        xyz=True,
        minimum=0.0,
        maximum=4.0,
        step=0.05,
    ),
    Setting(
        "softness",
        "Softness",
        "Soft inpaint: blur radius in pixels (standard deviation, as Mask blur) that "
        "turns the inpaint mask into a change map. Replaces the WebUI's mask blur for this run.",
        "Differential diffusion softness",
        xyz=True,
        minimum=0.0,
        maximum=256.0,
        step=1.0,
    ),
    Setting(
        "fan_strengths",
        "Fan strengths",
        "Strength fan: strengths in [0, 1], left to right, separated by "
        "commas. The denoising strength slider is not used in this mode.",
        "Differential diffusion fan",
        xyz=True,
    ),
    Setting(
        "fan_labels",
        "Write strengths on the result",
        "Strength fan: label each column on the output.",
        "Differential diffusion fan labels",
    ),
    Setting(
        "preserve",
        "Keep unchanged pixels exact",
        "Where the map is black, paste the input pixels back, so they come out byte for byte.",
        "Differential diffusion preserve",
        xyz=True,
    ),
    Setting(
        "equalize",
        "Equalise histogram",
        "Spread the map's values evenly: each grey becomes the share of the map darker than it. "
        "Shaping step 1 of 6 (equalise, levels, gamma, blur, quantise, output range).",
        "Differential diffusion equalize",
        xyz=True,
    ),
    Setting(
        "black_point",
        "Black point",
        "Levels: map values at or below this become black (keep).",
        "Differential diffusion black point",
        xyz=True,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
    ),
    Setting(
        "white_point",
        "White point",
        "Levels: map values at or above this become white (full change). Must be above the black point.",
        "Differential diffusion white point",
        xyz=True,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
    ),
    Setting(
        "gamma",
        "Gamma",
        "Bends the greys: above 1 keeps more (darker), below 1 changes more; black and white stay.",
        "Differential diffusion gamma",
        xyz=True,
        minimum=0.1,
        maximum=10.0,
        step=0.05,
    ),
    Setting(
        "blur",
        "Blur radius",
        "Softens the map's edges: Gaussian blur, standard deviation in image pixels (0 = off).",
        "Differential diffusion blur",
        xyz=True,
        minimum=0.0,
        maximum=256.0,
        step=1.0,
    ),
    Setting(
        "quantize",
        "Quantise to N levels",
        "Round the map to N evenly spaced greys, so regions change in N distinct steps (0 = off; at least 2).",
        "Differential diffusion quantize",
        xyz=True,
        minimum=0,
        maximum=256,
        step=1,
    ),
    Setting(
        "range_low",
        "Output range: black",
        "The strength (share of the denoising strength) that the map's black stands for.",
        "Differential diffusion range low",
        xyz=True,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
    ),
    Setting(
        "range_high",
        "Output range: white",
        "The strength (share of the denoising strength) that the map's white stands for.",
        "Differential diffusion range high",
        xyz=True,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
    ),
    Setting(
        "step_conditioning",
        "Inpainting checkpoints: condition each step",
        "For 9-channel inpainting models: at every step the model is told which pixels are free and shown the "
        "original everywhere else. Off: the WebUI's one conditioning for the whole run. Other models ignore it.",
        "Differential diffusion step conditioning",
        xyz=True,
    ),
    Setting(
        "continuous",
        "Continuous strength (few steps)",
        "For 4-12 steps (LCM, Turbo, Lightning, Hyper, DMD): every grey gets its own strength, where the exact rule "
        "makes N bands at N steps. A pixel between two steps takes part of one step. Off: the paper's exact rule; "
        "at 30+ steps the two barely differ.",
        "Differential diffusion continuous",
        xyz=True,
    ),
    Setting(
        "source",
        "Map source",
        "Make the change map from the init image instead of painting it: bright or saturated pixels, a colour, "
        "the image's edges, a point, the inpaint mask's inside, its depth or a segment (with the WebUI's ControlNet "
        "preprocessors). Invert map swaps change and keep. Made anew for every image; the map shaping applies "
        "after it.",
        "Differential diffusion source",
        xyz=True,
    ),
    Setting(
        "source_colour",
        "Colour to change",
        "Colour range: pixels of this colour change fully, less the further their colour is from it.",
        "Differential diffusion source colour",
    ),
    Setting(
        "source_tolerance",
        "Colour tolerance",
        "Colour range: how far from the colour (a share of black-to-white's distance) the change falls to 0.",
        "Differential diffusion source tolerance",
        xyz=True,
        minimum=0.01,
        maximum=1.0,
        step=0.01,
    ),
    Setting(
        "source_reach",
        "Reach (pixels)",
        "Near edges / around a point / inpaint mask: how many image pixels from the edge, the point or the mask's "
        "edge the change takes to fall from full to none.",
        "Differential diffusion source reach",
        xyz=True,
        minimum=1.0,
        maximum=4096.0,
        step=1.0,
    ),
    Setting(
        "source_point",
        "Point (x, y)",
        "Around a point: where the change is full; segment: the segment there changes. Shares of the image's width "
        "and height (0, 0 = top left).",
        "Differential diffusion source point",
    ),
    Setting(
        "exact_conditioning",
        "Inpainting checkpoints: exact conditioning (slower)",
        "Per-step conditioning encodes the masked image anew whenever pixels are freed (up to one VAE encode a step). "
        "Off: each step blends, per latent pixel, the WebUI's own conditioning with the image's latent (no extra "
        "encode); the cost of a plain run, the conditioning differs slightly near the edge of the freed pixels.",
        "Differential diffusion exact conditioning",
        xyz=True,
    ),
    Setting(
        "source_estimator",
        "Estimator",
        "Depth / segment: which of the WebUI's ControlNet preprocessors makes the estimate (auto: the best one "
        "installed). Run once per image; weights the WebUI has not downloaded yet are named, never fetched.",
        "Differential diffusion source estimator",
        xyz=True,
    ),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class DiffDiffArgs:
    """One generation's settings, validated."""

    enabled: bool = False
    mode: str = "map"
    map: Any = None
    invert: bool = False
    multiplier: float = 1.0
    softness: float = 16.0
    fan_strengths: tuple[float, ...] = field(default=DEFAULT_FAN)
    fan_labels: bool = True
    preserve: bool = True
    # map shaping: the defaults are MapShape's, the identity
    equalize: bool = MapShape.equalize
    black_point: float = MapShape.black_point
    white_point: float = MapShape.white_point
    gamma: float = MapShape.gamma
    blur: float = MapShape.blur
    quantize: int = MapShape.quantize
    range_low: float = MapShape.range_low
    range_high: float = MapShape.range_high
    step_conditioning: bool = True
    continuous: bool = False
    source: str = "painted"
    source_colour: str = "#808080"
    source_tolerance: float = 0.25
    source_reach: float = 64.0
    source_point: tuple[float, float] = (0.5, 0.5)
    exact_conditioning: bool = False
    source_estimator: str = "auto"

    def shape(self) -> MapShape:
        """The map-shaping transforms of these settings (identity at the defaults)."""
        return MapShape(**{f.name: getattr(self, f.name) for f in fields(MapShape)})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
