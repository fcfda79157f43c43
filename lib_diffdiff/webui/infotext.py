"""Infotext: what a generation writes into its PNG parameters, and how "Send to img2img" / PNG Info read it back.
Keys and defaults come from :data:`settings.SETTINGS`; settings at their default are omitted; the map itself is
summarised (a short hash and its range), never embedded. Besides the settings an enabled run can write the
extension's version (:data:`VERSION_KEY`) and, on an inpainting model, :data:`INPAINT_CONDITIONINGS` (and, profiling,
:data:`CONDITIONING_SECONDS`); none is read back (they describe the run, they set nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from dataclasses import fields
from typing import Any

import numpy as np

from ..maps.transforms import MapShape
from ..tools.fan import parse_strengths
from ..version import __version__
from .settings import MODES, SETTINGS, SETTINGS_BY_NAME, SOURCE_OPTIONS, SOURCES, DiffDiffArgs


def map_summary(change_map: np.ndarray) -> str:
    """``<10 hex digits of sha256> <min>-<max>``: enough to tell maps apart and see their range."""
    digest = hashlib.sha256(np.ascontiguousarray(change_map, dtype=np.float32).tobytes()).hexdigest()[:10]
    return f"{digest} {float(change_map.min()):.3g}-{float(change_map.max()):.3g}"


def _format(name: str, value: Any) -> str:
    if name in ("fan_strengths", "source_point"):
        return ", ".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


INPAINT_CONDITIONINGS = "Differential diffusion inpaint conditionings"
"""Infotext key of a run on an inpainting model: how many distinct conditionings the model received (1 = the host's
alone, as in img2img; more = the per-step conditioning changed during the run)."""

CONDITIONING_SECONDS = "Differential diffusion conditioning seconds"
"""Infotext key written only by a WebUI started with ``DIFFDIFF_PROFILE`` set (``webui.inpainting.PROFILE_VARIABLE``):
the seconds the per-step conditioning of an inpainting model took inside the run, for the benchmarks."""

VERSION_KEY = "Differential diffusion version"
"""Infotext key of the extension's version (:data:`lib_diffdiff.version.__version__`), written only when enabled."""

SHAPING = frozenset(f.name for f in fields(MapShape))
"""The map-shaping settings (used by the modes that read a map: change map and soft inpaint)."""


def relevant(args: DiffDiffArgs) -> set[str]:
    """The settings that matter for this mode and map source (others are not written)."""
    names = {"enabled", "mode", "preserve", "step_conditioning", "exact_conditioning", "continuous"}
    if args.mode == "map":
        names |= {"map", "invert", "multiplier", "source", *SOURCE_OPTIONS[args.source]} | SHAPING
    elif args.mode == "soft inpaint":
        names |= {"softness"} | SHAPING
    else:
        names |= {"fan_strengths", "fan_labels"}
    return names


def _mode_dependent() -> tuple[str, ...]:
    per_choice = [relevant(DiffDiffArgs(mode=mode, source=source)) for mode in MODES for source in SOURCES]
    return tuple(
        s.name for s in SETTINGS if any(s.name in r for r in per_choice) and not all(s.name in r for r in per_choice)
    )


MODE_DEPENDENT = _mode_dependent()
"""The settings that only some modes (or map sources) use, in table order: the UI shows them per mode and source."""


def infotext_params(args: DiffDiffArgs, summary: str | None = None) -> dict[str, str]:
    """Infotext entries for an enabled run, with the extension's version (:data:`VERSION_KEY`)."""
    defaults = DiffDiffArgs()
    out: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name not in relevant(args) or setting.infotext is None:
            continue
        if setting.name == "map":
            if summary:
                out[setting.infotext] = summary
            continue
        value = getattr(args, setting.name)
        if setting.name != "enabled" and value == getattr(defaults, setting.name):
            continue
        out[setting.infotext] = _format(setting.name, value)
    if args.enabled:
        out[VERSION_KEY] = __version__
    return out


INFOTEXT_KEYS: tuple[str, ...] = (
    *(s.infotext for s in SETTINGS if s.infotext),
    INPAINT_CONDITIONINGS,
    CONDITIONING_SECONDS,
    VERSION_KEY,
)
"""Every infotext key this extension can write."""


def drop_infotext(params: MutableMapping[str, Any]) -> None:
    """Remove every key of :data:`INFOTEXT_KEYS` from ``params`` (X/Y/Z cells share one ``extra_generation_params``
    dict: a cell must not inherit what an earlier cell's run wrote)."""
    for key in INFOTEXT_KEYS:
        params.pop(key, None)


def ui_value(name: str, params: Mapping[str, str]) -> Any:
    """The UI value of setting ``name`` from parsed infotext ``params`` (None: leave the component as it is).
    A run's infotext without the enabled key means the extension was off."""
    setting = SETTINGS_BY_NAME[name]
    enabled_key = SETTINGS_BY_NAME["enabled"].infotext
    if name == "enabled":
        return str(params.get(enabled_key, "False")).lower() == "true"
    if enabled_key not in params or setting.infotext is None or name == "map":
        return None
    default = getattr(DiffDiffArgs(), name)
    raw = params.get(setting.infotext)
    if raw is None:
        value = default
    elif name == "mode":
        value = raw if raw in MODES else default
    elif name == "fan_strengths":
        value = tuple(parse_strengths(raw))
    elif name == "source":
        value = raw if raw in SOURCES else default
    elif name == "source_point":
        value = tuple(float(v) for v in str(raw).split(","))
    elif isinstance(default, str):
        value = str(raw)
    elif isinstance(default, bool):
        value = str(raw).lower() == "true"
    elif isinstance(default, int):
        value = int(float(raw))
    else:
        value = float(raw)
    if name == "mode":
        return MODES[value]
    if name == "source":
        return SOURCES[value]
    if name in ("fan_strengths", "source_point"):
        return ", ".join(f"{v:g}" for v in value)
    return value
