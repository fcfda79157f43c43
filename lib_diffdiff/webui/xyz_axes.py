"""X/Y/Z plot axes, built from :data:`settings.SETTINGS`. Duck-typed: handed the WebUI's loaded ``xyz_grid`` module.

Each grid cell runs on a shallow copy of ``p``; an axis sets ``p.diffdiff_xyz_<name>`` on that copy, and the script's
``process`` reads it back with :func:`xyz_overrides`, so a value never leaks from one cell or generation to another.
"""

from __future__ import annotations

from typing import Any

from .settings import MODES, SETTINGS, SOURCES, DiffDiffArgs

XYZ_ATTRIBUTE_PREFIX = "diffdiff_xyz_"
AXIS_PREFIX = "DiffDiff "


def axis_label(name: str) -> str:
    return AXIS_PREFIX + next(s.label for s in SETTINGS if s.name == name)


def _apply(name: str, prefix: str):
    def apply(p: Any, value: Any, values: Any) -> None:
        setattr(p, prefix + name, value)

    return apply


def add_axes(xyz_module: Any, prefix: str = XYZ_ATTRIBUTE_PREFIX) -> int:
    """Append the axes not already there (the UI can be built more than once); returns how many were added."""
    existing = {option.label for option in xyz_module.axis_options}
    option_class = getattr(xyz_module, "AxisOptionImg2Img", xyz_module.AxisOption)
    defaults = DiffDiffArgs()
    added = 0
    for setting in SETTINGS:
        label = AXIS_PREFIX + setting.label
        if not setting.xyz or label in existing:
            continue
        default = getattr(defaults, setting.name)
        if isinstance(default, bool):
            kind, choices = str, (lambda: ["True", "False"])
        elif setting.name == "mode":
            kind, choices = str, (lambda: list(MODES))
        elif setting.name == "source":
            kind, choices = str, (lambda: list(SOURCES))
        elif isinstance(default, (int, float)):
            kind, choices = type(default), None
        else:
            kind, choices = str, None
        xyz_module.axis_options.append(option_class(label, kind, _apply(setting.name, prefix), choices=choices))
        added += 1
    return added


def xyz_overrides(p: Any, prefix: str = XYZ_ATTRIBUTE_PREFIX) -> dict[str, Any]:
    """The values X/Y/Z axes set on this (copy of) ``p``."""
    return {s.name: getattr(p, prefix + s.name) for s in SETTINGS if s.xyz and hasattr(p, prefix + s.name)}
