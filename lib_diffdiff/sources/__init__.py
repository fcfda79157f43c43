"""Map sources: change maps made from the init image instead of painted (weight-free ones; no model needed)."""

from .distance import distance_to
from .edges import canny
from .made import NEEDS_MASK, made_map, parse_colour, parse_point
from .weight_free import colour_range, edge_distance, luminance, mask_edge_distance, point_distance, saturation

__all__ = [
    "NEEDS_MASK",
    "canny",
    "colour_range",
    "distance_to",
    "edge_distance",
    "luminance",
    "made_map",
    "mask_edge_distance",
    "parse_colour",
    "parse_point",
    "point_distance",
    "saturation",
]
