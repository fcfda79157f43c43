"""Map transforms: properties (hypothesis) and the WebUI geometry they must reproduce."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lib_diffdiff import ChangeMapError, contrast, crop, gamma, gaussian_blur, invert, remap, resize_to, to_latent
from lib_diffdiff.maps.transforms import ResizeMode, snap_to_levels

unit = st.floats(0.0, 1.0, allow_nan=False, width=32)
maps = arrays(np.float32, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=unit)
settings.register_profile("ci", deadline=None, max_examples=60)
settings.load_profile("ci")


@given(maps)
def test_invert_is_an_involution_within_float_rounding(m):
    np.testing.assert_allclose(invert(invert(m)), m, atol=1e-7)
    assert invert(m).min() >= 0 and invert(m).max() <= 1


@given(maps, st.floats(0.05, 20))
def test_gamma_keeps_ends_and_order(m, g):
    out = gamma(m, g)
    assert out.min() >= 0 and out.max() <= 1
    order = np.argsort(m.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order]) >= 0)
    np.testing.assert_array_equal(gamma(np.array([[0.0, 1.0]], np.float32), g), [[0.0, 1.0]])


@given(maps, st.floats(0, 10))
def test_contrast_stays_in_range_and_one_is_identity(m, amount):
    out = contrast(m, amount)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(contrast(m, 1.0), m, atol=1e-7)


@given(maps, unit, unit)
def test_remap_sends_black_and_white_to_the_ends(m, lo, hi):
    out = remap(m, lo, hi)
    assert out.min() >= min(lo, hi) - 1e-6 and out.max() <= max(lo, hi) + 1e-6
    np.testing.assert_allclose(remap(np.array([[0.0, 1.0]], np.float32), lo, hi), [[lo, hi]], atol=1e-6)


@given(maps, st.floats(0.3, 6))
def test_blur_stays_in_range_and_keeps_constants(m, radius):
    out = gaussian_blur(m, radius)
    assert out.shape == m.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    const = np.full_like(m, m.flat[0])
    np.testing.assert_allclose(gaussian_blur(const, radius), const, atol=2e-6)


@pytest.mark.parametrize("radius", [1.0, 2.5, 6.0])
def test_blur_of_a_mask_is_exact_far_away_and_deep_inside_and_graded_between(radius):
    lo, hi = 40, 120
    m = np.zeros((160, 160), np.float32)
    m[lo:hi, lo:hi] = 1.0
    out = gaussian_blur(m, radius)
    reach = int(np.ceil(3 * radius))
    far = np.ones_like(m, bool)
    far[lo - reach : hi + reach, lo - reach : hi + reach] = False
    assert np.all(out[far] == 0.0), "pixels beyond the kernel must stay exactly 0"
    assert np.all(out[lo + reach : hi - reach, lo + reach : hi - reach] == 1.0), "deep inside must stay exactly 1"
    ring = out[80, lo - reach : lo + reach]
    assert np.all(np.diff(ring) > 0), "the transition rises strictly across the edge"
    assert out[80, lo - 1] == pytest.approx(1.0 - out[80, lo], abs=1e-6)  # symmetric about the edge
    assert abs(out.sum() - m.sum()) / m.sum() < 1e-4  # blur moves mass, it does not make or lose it


def test_blur_zero_radius_is_identity_and_negative_is_an_error():
    m = np.random.default_rng(0).random((5, 7), dtype=np.float32)
    np.testing.assert_array_equal(gaussian_blur(m, 0), m)
    with pytest.raises(ChangeMapError):
        gaussian_blur(m, -1)


def test_blur_radius_wider_than_the_image():
    m = np.zeros((4, 5), np.float32)
    m[1, 2] = 1
    out = gaussian_blur(m, 10)
    assert out.shape == m.shape and 0 < out.min() and out.max() < 1


@given(st.integers(0, 255))
def test_snap_makes_8bit_levels_exact(k):
    assert snap_to_levels(np.float32(k / 255.0)) == k / 255.0


@given(st.integers(0, 65535))
def test_snap_makes_16bit_levels_exact(k):
    assert snap_to_levels(np.float32(k / 65535.0)) == k / 65535.0


@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=unit), st.integers(1, 8))
def test_to_latent_area_average_preserves_the_mean(small, factor):
    m = np.kron(small, np.ones((factor, factor), np.float32))
    noise = np.random.default_rng(1).random(m.shape).astype(np.float32) * 0.01
    m = np.clip(m - noise, 0, 1).astype(np.float32)
    lat = to_latent(m, small.shape[0], small.shape[1])
    assert lat.dtype == np.float64 and lat.shape == small.shape
    assert lat.mean() == pytest.approx(m.astype(np.float64).mean(), abs=2e-6)


@pytest.mark.parametrize("k", [0, 1, 77, 128, 254, 255])
def test_to_latent_of_a_flat_grey_is_exactly_its_level(k):
    m = np.full((64, 48), np.float32(k / 255.0))
    assert np.all(to_latent(m, 8, 6) == k / 255.0)
    assert np.all(to_latent(m, 7, 5) == k / 255.0)  # non-integer factor: adaptive area averaging


def test_to_latent_rejects_growing():
    with pytest.raises(ChangeMapError):
        to_latent(np.zeros((4, 4), np.float32), 8, 8)


def test_crop():
    m = np.arange(20, dtype=np.float32).reshape(4, 5) / 20
    np.testing.assert_array_equal(crop(m, (1, 2, 4, 4)), m[2:4, 1:4])
    with pytest.raises(ChangeMapError):
        crop(m, (0, 0, 6, 4))


def halves(h, w):
    m = np.zeros((h, w), np.float32)
    m[:, w // 2 :] = 1.0
    return m


@pytest.mark.parametrize("mode", list(ResizeMode))
def test_resize_keeps_a_flat_map_flat_and_has_the_target_size(mode):
    m = np.full((30, 50), np.float32(0.4))
    out = resize_to(m, 64, 64, mode)
    assert out.shape == (64, 64)
    if mode != ResizeMode.RESIZE_AND_FILL:
        np.testing.assert_allclose(out, 0.4, atol=1e-6)
    else:  # filled borders repeat the edge rows, also flat
        np.testing.assert_allclose(out, 0.4, atol=1e-6)


def test_bilinear_does_not_ring():
    m = np.zeros((64, 64), np.float32)
    m[20:40, 20:40] = 1.0
    out = resize_to(m, 200, 120)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(out[:50, :55] == 0.0), "black far from the square stays exactly black"


def test_crop_and_resize_cuts_the_sides_of_a_wide_map():
    m = np.zeros((50, 200), np.float32)
    m[:, :50] = 1.0  # the left quarter is white
    out = resize_to(m, 64, 64, ResizeMode.CROP_AND_RESIZE)
    # scaled to 256x64 and centre-cropped to 64 wide: columns 96..160 of the scaled map, all black
    assert np.all(out == 0.0)
    m2 = halves(50, 200)
    out2 = resize_to(m2, 64, 64, ResizeMode.CROP_AND_RESIZE)
    assert np.all(out2[:, :30] == 0.0) and np.all(out2[:, 34:] == 1.0)


def test_resize_and_fill_letterboxes_with_the_edge_rows():
    m = np.zeros((50, 100), np.float32)
    m[0, :] = 1.0  # top row white
    m[-1, :] = 0.5  # bottom row grey
    out = resize_to(m, 100, 100, ResizeMode.RESIZE_AND_FILL)
    # the map fills rows 25..75; the 25 rows above repeat its top row, the 25 below its bottom row
    np.testing.assert_allclose(out[:25], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[75:], 0.5, atol=1e-6)
    assert np.all(out[40:60] == 0.0)


def test_resize_rejects_unknown_mode():
    with pytest.raises(ChangeMapError, match="resize mode"):
        resize_to(np.zeros((4, 4), np.float32), 8, 8, 7)


@pytest.mark.parametrize(
    "fn,args",
    [(gamma, (0,)), (gamma, (float("nan"),)), (contrast, (-1,)), (remap, (0, 2)), (remap, (float("nan"), 1))],
)
def test_bad_parameters_are_change_map_errors(fn, args):
    with pytest.raises(ChangeMapError):
        fn(np.zeros((2, 2), np.float32), *args)
