"""Map sources: change maps made from the init image instead of painted: weight-free ones (no model needed) and
ones made from a depth or segmentation estimate by the host's estimators."""

from .distance import distance_to
from .edges import canny
from .estimated import ESTIMATED, EstimateCache, depth_map, estimated_map, image_key, segment_map
from .made import NEEDS_MASK, made_map, parse_colour, parse_point
from .weight_free import colour_range, edge_distance, luminance, mask_edge_distance, point_distance, saturation

__all__ = [
    "ESTIMATED",
    "EstimateCache",
    "NEEDS_MASK",
    "canny",
    "colour_range",
    "depth_map",
    "distance_to",
    "edge_distance",
    "estimated_map",
    "image_key",
    "luminance",
    "made_map",
    "mask_edge_distance",
    "parse_colour",
    "parse_point",
    "point_distance",
    "saturation",
    "segment_map",
]
