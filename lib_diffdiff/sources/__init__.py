"""Map sources: change maps made from the init image instead of painted (weight-free ones; no model needed)."""

from .distance import distance_to
from .edges import canny
from .weight_free import colour_range, edge_distance, luminance, mask_edge_distance, point_distance, saturation

__all__ = [
    "canny",
    "colour_range",
    "distance_to",
    "edge_distance",
    "luminance",
    "mask_edge_distance",
    "point_distance",
    "saturation",
]
