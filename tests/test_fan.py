"""Strength fan: the map's columns, their alignment to the latent grid, parsing, and the labels."""

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff import ChangeMapError, column_bounds, fan_map, fan_strengths, label_fan, parse_strengths, to_latent


def test_columns_left_to_right_hold_their_strengths_exactly():
    strengths = [0.1, 0.3, 0.55, 0.8, 1.0]
    m = fan_map(strengths, 512, 64)
    bounds = column_bounds(512, 5)
    assert bounds[0] == 0 and bounds[-1] == 512
    for s, left, right in zip(strengths, bounds, bounds[1:]):
        assert np.all(m[:, left:right] == s)
    assert [m[0, x] for x in (0, 511)] == [0.1, 1.0]


@pytest.mark.parametrize("width,count", [(512, 3), (512, 7), (640, 10), (72, 9)])
def test_column_edges_lie_on_the_latent_grid(width, count):
    bounds = column_bounds(width, count)
    assert all(b % 8 == 0 for b in bounds[:-1])
    assert all(r > left for left, r in zip(bounds, bounds[1:]))
    lat = to_latent(fan_map(fan_strengths(0.1, 0.9, count), width, 16), 2, width // 8)
    assert len(np.unique(lat)) == count, "each latent column holds exactly one strength"


def test_too_many_columns_for_the_width():
    with pytest.raises(ChangeMapError, match="do not fit"):
        fan_map([0.5] * 9, 64, 64)


def test_fan_strengths_evenly_spaced():
    assert fan_strengths(0.2, 1.0, 5) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert fan_strengths(0.5, 0.5, 1) == [0.5]
    with pytest.raises(ChangeMapError):
        fan_strengths(0.2, 1.0, 0)


@pytest.mark.parametrize(
    "text,expected", [("0.2, 0.4,0.6", [0.2, 0.4, 0.6]), ("0.1 0.9", [0.1, 0.9]), ("1", [1.0]), ("0;.5", [0.0, 0.5])]
)
def test_parse_strengths(text, expected):
    assert parse_strengths(text) == expected


@pytest.mark.parametrize("text", ["", "0.2, abc", "1.2", "-0.1", "nan", ",".join(["0.5"] * 65)])
def test_parse_strengths_rejects(text):
    with pytest.raises(ChangeMapError):
        parse_strengths(text)


def test_labels_are_written_in_a_band_at_the_top_and_nowhere_else():
    image = Image.new("RGB", (320, 160), (120, 30, 200))
    out = label_fan(image, [0.25, 0.5, 1.0])
    a = np.asarray(out)
    band = a[:20]
    assert (band > 200).all(axis=2).sum() > 20, "white text in the band"
    assert (band == 0).all(axis=2).sum() > 100, "dark band behind the text"
    np.testing.assert_array_equal(a[40:], np.asarray(image)[40:])
    assert out.size == image.size
    # each column gets its own label: white pixels in each third
    for left, right in [(0, 104), (112, 208), (216, 320)]:
        assert (band[:, left:right] > 200).all(axis=2).any()


def test_labels_with_an_old_pillow_whose_default_font_has_no_size(monkeypatch):
    """A1111 1.10 ships Pillow 9.5: load_default() takes no size and bitmap fonts refuse anchor=."""
    from PIL import ImageFont

    original = ImageFont.load_default

    def old_load_default(**kwargs):
        if kwargs:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return original()

    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    out = np.asarray(label_fan(Image.new("RGB", (96, 64), (120, 30, 200)), [0.5, 1.0]))
    assert (out[:12] > 200).all(axis=2).any() and (out[:12] == 0).all(axis=2).any()
