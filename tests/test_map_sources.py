"""Weight-free map sources against maps computed by hand, the distance transform against brute force, Canny on
shapes whose edges are known, shaping after a source, and bad options refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff import ChangeMapError
from lib_diffdiff.maps.transforms import MapShape
from lib_diffdiff.sources import (
    canny,
    colour_range,
    distance_to,
    edge_distance,
    luminance,
    mask_edge_distance,
    point_distance,
    saturation,
)


def brute_distance(marked: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(marked)
    gy, gx = np.mgrid[0 : marked.shape[0], 0 : marked.shape[1]]
    return np.sqrt((gy[..., None] - ys) ** 2 + (gx[..., None] - xs) ** 2).min(axis=2)


def test_luminance_is_the_601_weighting_and_inverts():
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [40, 80, 120]]], dtype=np.uint8)
    expected = np.array([[0.299, 0.587], [0.114, (0.299 * 40 + 0.587 * 80 + 0.114 * 120) / 255]])
    np.testing.assert_allclose(luminance(image), expected, atol=1e-6)
    np.testing.assert_allclose(luminance(image, invert=True), 1 - expected, atol=1e-6)
    # a PIL image reads the same, and agrees with Pillow's own "L" within its rounding
    pil = Image.fromarray(image)
    np.testing.assert_array_equal(luminance(pil), luminance(image))
    assert np.abs(luminance(pil) * 255 - np.asarray(pil.convert("L"))).max() <= 0.5 + 1e-6


def test_saturation_is_hsv_saturation():
    image = np.array([[[255, 0, 0], [128, 128, 128], [255, 128, 128], [0, 0, 0]]], dtype=np.uint8)
    np.testing.assert_allclose(saturation(image), [[1.0, 0.0, 127 / 255, 0.0]], atol=1e-6)


def test_colour_range_falls_linearly_to_zero_at_the_tolerance():
    half = round(255 * 0.2 * 0.5 * math.sqrt(3) / math.sqrt(3))  # 0.1 of the grey axis per channel
    image = np.array([[[100, 150, 200], [100 + half, 150 + half, 200 + half], [0, 0, 0]]], dtype=np.uint8)
    m = colour_range(image, (100, 150, 200), tolerance=0.2)
    assert m[0, 0] == 1.0 and m[0, 2] == 0.0
    assert m[0, 1] == pytest.approx(1 - (half / 255) / 0.2, abs=1e-6)  # distance = half/255 (same on each channel)


def test_point_distance_is_a_cone_of_the_radius():
    m = point_distance(9, 5, x=4, y=2, radius=4)
    assert m.shape == (5, 9) and m[2, 4] == 1.0
    assert m[2, 6] == pytest.approx(0.5) and m[2, 0] == 0.0 and m[0, 4] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(4))
def test_distance_is_exact_up_to_the_reach(seed):
    rng = np.random.default_rng(seed)
    marked = rng.random((23, 31)) < 0.02
    marked[rng.integers(23), rng.integers(31)] = True
    exact = brute_distance(marked)
    for reach in (3.0, 7.5, 100.0):
        got = distance_to(marked, reach)
        np.testing.assert_allclose(got, np.minimum(exact, reach), atol=1e-9)


def test_distance_with_nothing_marked_is_the_reach_everywhere():
    assert (distance_to(np.zeros((4, 5), bool), 6.0) == 6.0).all()


def test_mask_edge_distance_grows_inward_from_the_edge():
    mask = np.zeros((21, 21), np.float32)
    mask[3:18, 3:18] = 1
    m = mask_edge_distance(mask, reach=5)
    assert (m[mask == 0] == 0).all()
    assert m[3, 10] == pytest.approx(1 / 5)  # the ring just inside the edge: one pixel from the outside
    assert m[5, 10] == pytest.approx(3 / 5) and m[10, 10] == 1.0
    np.testing.assert_allclose(m[mask > 0], np.minimum(brute_distance(mask == 0)[mask > 0] / 5, 1), atol=1e-6)


def test_canny_finds_a_step_once_and_nothing_on_flat_ground():
    grey = np.zeros((24, 32))
    grey[:, 16:] = 1.0
    edges = canny(grey, 0.1, 0.2)
    cols = np.nonzero(edges.any(axis=0))[0]
    assert set(cols) <= {15, 16} and edges[2:-2].any(axis=1).all(), "one thin vertical ridge on the step"
    assert edges[2:-2].sum(axis=1).max() <= 2
    assert not canny(np.full((16, 16), 0.5), 0.1, 0.2).any()


def test_canny_hysteresis_keeps_weak_ridges_only_when_connected_to_strong_ones():
    grey = np.zeros((40, 40))
    grey[:, 20:] = np.linspace(0.25, 1.0, 40)[:, None]  # a step whose height grows down the image
    lone = np.zeros((40, 40))
    lone[:, 20:] = 0.25
    mixed = canny(grey, 0.05, 0.4)  # after the blur a step of height h scores about h / 2
    assert mixed[2:-2].any(axis=1).all(), "the weak top of the step joins the strong bottom"
    assert not canny(lone, 0.05, 0.4).any(), "a weak step on its own is not an edge"
    assert mixed[-6:].any() and not canny(grey, 0.3, 0.4)[2:10].any(), "without a low threshold the top is lost"


def test_edge_distance_is_one_on_the_edges_and_falls_to_zero_at_the_reach():
    image = np.zeros((24, 48, 3), np.uint8)
    image[:, 24:] = 255
    m = edge_distance(image, reach=8)
    edge_cols = np.nonzero(canny(luminance(image).astype(np.float64), 0.1, 0.2)[12])[0]
    assert m[12, edge_cols].min() == 1.0
    assert m[12, 0] == 0.0 and m[12, 47] == 0.0
    assert 0 < m[12, edge_cols.min() - 4] < 1
    assert (edge_distance(np.full((8, 8, 3), 90, np.uint8), reach=4) == 0).all(), "no edges: a black map"


def test_shaping_applies_after_a_source():
    image = np.tile(np.linspace(0, 255, 64).astype(np.uint8)[None, :, None], (4, 1, 3))
    m = luminance(image)
    shaped = MapShape(black_point=0.25, white_point=0.75, quantize=3).apply(m)
    assert set(np.unique(shaped)) == {0.0, 0.5, 1.0}
    assert (shaped[:, m[0] <= 0.25] == 0).all() and (shaped[:, m[0] >= 0.75] == 1).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: colour_range(np.zeros((2, 2, 3), np.uint8), (0, 0, 0), tolerance=0),
        lambda: colour_range(np.zeros((2, 2, 3), np.uint8), (0, 0, 300), tolerance=0.2),
        lambda: colour_range(np.zeros((2, 2, 3), np.uint8), "red", tolerance=0.2),
        lambda: point_distance(4, 4, 1, 1, radius=0),
        lambda: point_distance(4, 4, float("nan"), 1, radius=2),
        lambda: mask_edge_distance(np.zeros((4, 4)), reach=3),
        lambda: mask_edge_distance(np.ones((4, 4)), reach=-1),
        lambda: edge_distance(np.zeros((4, 4, 3), np.uint8), reach=3, low=0.5, high=0.2),
        lambda: edge_distance(np.zeros((4, 4, 3), np.uint8), reach=True),
        lambda: luminance(np.zeros((4, 4, 2))),
        lambda: luminance(np.full((4, 4, 3), 2.0)),
        lambda: distance_to(np.zeros((2, 2, 2), bool), 3),
    ],
)
def test_bad_options_are_refused_with_a_change_map_error(call):
    with pytest.raises(ChangeMapError):
        call()
