"""Read the script's arguments, in either form the WebUI delivers: positional (the UI's components, in the order of
:data:`settings.SETTINGS`; the API's ``"args": [...]`` fills them the same way, missing trailing ones keep their
defaults), or one dict of named fields as the first argument (``"args": [{"enabled": true, ...}]``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ChangeMapError
from ..sources import parse_colour, parse_point
from ..tools.fan import check_strengths, parse_strengths
from .settings import MODES, SETTINGS, SETTINGS_BY_NAME, SOURCES, DiffDiffArgs

_LABEL_TO_MODE = {label.lower(): mode for mode, label in MODES.items()}
_LABEL_TO_SOURCE = {label.lower(): source for source, label in SOURCES.items()}


def named_args(args: Sequence[Any]) -> dict[str, Any]:
    """The arguments as a dict of named fields, from either form."""
    if args and isinstance(args[0], Mapping):
        return dict(args[0])  # the rest are the UI defaults the WebUI filled in behind the dict
    return {s.name: value for s, value in zip(SETTINGS, args)}


def parse_script_args(args: Sequence[Any]) -> DiffDiffArgs:
    """Validated settings from the script's arguments (see :func:`parse_named`)."""
    return parse_named(named_args(args))


def parse_named(raw: Mapping[str, Any]) -> DiffDiffArgs:
    """Validated settings; a disabled extension is returned without looking at the rest (it must change nothing).
    Raises :class:`ChangeMapError` naming the field and the problem."""
    if not _as_bool(raw.get("enabled", False), "enabled"):
        return DiffDiffArgs(enabled=False)
    unknown = sorted(map(repr, set(raw) - set(SETTINGS_BY_NAME)))
    if unknown:
        raise ChangeMapError(
            f"unknown Differential Diffusion field(s) {', '.join(unknown)}; known fields: {', '.join(SETTINGS_BY_NAME)}"
        )
    values = {name: raw[name] for name in SETTINGS_BY_NAME if raw.get(name) is not None}
    defaults = DiffDiffArgs()
    parsed: dict[str, Any] = {"enabled": True, "map": values.get("map")}
    for name in DiffDiffArgs.field_names():
        if name in parsed:
            continue
        default = getattr(defaults, name)
        value = values.get(name, default)
        if name == "mode":
            parsed[name] = _as_mode(value)
        elif name == "fan_strengths":
            parsed[name] = _as_strengths(value)
        elif name == "source":
            parsed[name] = _as_source(value)
        elif name == "source_colour":
            parsed[name] = "#{:02x}{:02x}{:02x}".format(*_field(parse_colour, value, name))
        elif name == "source_point":
            parsed[name] = _field(parse_point, value, name)
        elif name == "source_estimator":
            parsed[name] = _as_name(value, name)
        elif isinstance(default, bool):
            parsed[name] = _as_bool(value, name)
        elif isinstance(default, int):
            parsed[name] = _as_int(value, name)
        else:
            parsed[name] = _as_number(value, name)
    settings = DiffDiffArgs(**parsed)
    settings.shape().check()  # values that are fine alone but not together (white point <= black point)
    return settings


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ChangeMapError(f"Differential Diffusion field {name!r} must be true or false, got {value!r}")


def _as_mode(value: Any) -> str:
    if isinstance(value, str):
        key = value.strip().lower()
        if key in MODES:
            return key
        if key in _LABEL_TO_MODE:
            return _LABEL_TO_MODE[key]
    raise ChangeMapError(
        f"unknown Differential Diffusion mode {value!r}; use one of {', '.join(repr(m) for m in MODES)}"
    )


def _as_source(value: Any) -> str:
    if isinstance(value, str):
        key = value.strip().lower()
        if key in SOURCES:
            return key
        if key in _LABEL_TO_SOURCE:
            return _LABEL_TO_SOURCE[key]
    raise ChangeMapError(
        f"unknown Differential Diffusion source {value!r}; use one of {', '.join(repr(s) for s in SOURCES)}"
    )


def _as_name(value: Any, name: str) -> str:
    """A preprocessor's name as the host registers it (checked against the installed ones when the map is made)."""
    if isinstance(value, str) and 0 < len(value.strip()) <= 100 and value.strip().isprintable():
        return value.strip()
    raise ChangeMapError(
        f"Differential Diffusion field {name!r} must be an estimator's name (or 'auto'), got {value!r}"
    )


def _field(parse: Any, value: Any, name: str) -> Any:
    try:
        return parse(value)
    except ChangeMapError as e:
        raise ChangeMapError(f"Differential Diffusion field {name!r}: {e}") from None


def _as_number(value: Any, name: str) -> float:
    setting = SETTINGS_BY_NAME[name]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    lo, hi = setting.minimum, setting.maximum
    if not (math.isfinite(number) and lo <= number <= hi):
        raise ChangeMapError(
            f"Differential Diffusion field {name!r} must be a number in [{lo:g}, {hi:g}], got {value!r}"
        )
    return number


def _as_int(value: Any, name: str) -> int:
    number = _as_number(value, name)
    if number != int(number):
        raise ChangeMapError(f"Differential Diffusion field {name!r} must be a whole number, got {value!r}")
    return int(number)


def _as_strengths(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        return tuple(parse_strengths(value))
    if isinstance(value, (list, tuple)):
        return tuple(check_strengths(list(value)))
    raise ChangeMapError(f"Differential Diffusion field 'fan_strengths' must be a list of numbers, got {value!r}")
