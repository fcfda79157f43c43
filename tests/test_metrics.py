"""CAM, DAM and the edit-strength measurement (paper 5.2 and supplement 10)."""

import math

import numpy as np
import pytest

from lib_diffdiff import cam, dam, dssim_map, edit_strength_map


def circle(n=64, r=20):
    y, x = np.mgrid[:n, :n]
    return (((x - n / 2) ** 2 + (y - n / 2) ** 2) < r * r).astype(np.float64)


def test_cam_and_dam_of_a_map_with_itself_and_affine_copies():
    m = circle()
    assert cam(m, m) == pytest.approx(1.0)
    assert cam(m, 3 * m + 2) == pytest.approx(1.0)
    assert dam(m, m) == pytest.approx(0.0, abs=1e-9)
    assert dam(m, 0.2 * m - 7) == pytest.approx(0.0, abs=1e-9)


def test_supplement_10_inverted_map_is_worst_for_cam_and_best_for_dam():
    m = circle()
    assert cam(m, 1 - m) == pytest.approx(-1.0)
    assert dam(m, 1 - m) == pytest.approx(0.0, abs=1e-9)
    half = m.copy()
    half[:, 32:] = 0
    assert cam(m, half) > cam(m, 1 - m)
    assert dam(m, half) > dam(m, 1 - m)


def test_dam_is_the_least_squares_residual():
    rng = np.random.default_rng(0)
    m, e = rng.random((16, 16)), rng.random((16, 16))
    best = dam(m, e)
    for a, b in [(0.1, 0.2), (-0.3, 0.5), (1.0, 0.0)]:
        assert np.linalg.norm(m - (a * e + b)) >= best - 1e-12
    assert math.isnan(cam(m, np.ones_like(m)))


def test_dssim_is_zero_for_identical_images_and_grows_with_change():
    rng = np.random.default_rng(1)
    a = rng.random((32, 32, 3)).astype(np.float32)
    assert np.all(dssim_map(a, a) < 1e-6)
    slightly = np.clip(a + rng.normal(0, 0.02, a.shape), 0, 1).astype(np.float32)
    very = rng.random(a.shape).astype(np.float32)
    assert dssim_map(a, slightly).mean() < dssim_map(a, very).mean()


def synthetic_edit(m, seed):
    """Output = input blended towards a fresh texture by the map: a method that follows its map."""
    rng = np.random.default_rng(seed)
    src = rng.random(m.shape + (3,)).astype(np.float32)
    new = rng.random(m.shape + (3,)).astype(np.float32)
    out = src * (1 - m[:, :, None]) + new * m[:, :, None]
    return src, out.astype(np.float32), new


def test_edit_strength_follows_a_map_that_was_followed():
    m = np.tile(np.linspace(0, 1, 64), (64, 1))
    pairs = [synthetic_edit(m, s)[:2] for s in range(4)]
    baseline = [(src, new) for src, _, new in (synthetic_edit(m, s + 10) for s in range(4))]
    e = edit_strength_map(pairs)
    assert cam(m, e) > 0.9
    e_debiased = edit_strength_map(pairs, baseline)
    assert cam(m, e_debiased) > 0.9
    assert abs(e_debiased[:, -4:].mean()) < 0.1 * abs(e_debiased[:, :4].mean()), "full change ~ the all-change bias"
    ignored = [(src, new) for src, _, new in (synthetic_edit(m, s) for s in range(4))]
    assert abs(cam(m, edit_strength_map(ignored))) < 0.3, "a method that ignores the map scores low"


def test_edit_strength_map_needs_pairs():
    from lib_diffdiff import ChangeMapError

    with pytest.raises(ChangeMapError):
        edit_strength_map([])
