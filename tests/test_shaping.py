"""Map shaping (equalise, levels, gamma, blur, quantise, output range): each transform's defining property, the
documented order, identity at the defaults, and the same settings through the API's parser and a WebUI run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lib_diffdiff import ChangeMapError
from lib_diffdiff.maps.transforms import MapShape, equalize, levels, quantize
from lib_diffdiff.webui.adapter import plan_run
from lib_diffdiff.webui.infotext import infotext_params, ui_value
from lib_diffdiff.webui.script_args import parse_script_args
from lib_diffdiff.webui.settings import SETTINGS, DiffDiffArgs

maps = arrays(np.float32, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.floats(0, 1, width=32))


def ramp(n: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0, 1, n, dtype=np.float32), (4, 1))


@settings(max_examples=60, deadline=None)
@given(maps)
def test_default_shape_is_bit_identical(m):
    out = MapShape().apply(m)
    assert out.dtype == np.float32 and np.array_equal(out, m)


def test_defaults_of_the_table_are_the_identity_shape():
    assert DiffDiffArgs().shape() == MapShape()


def test_levels_clip_below_black_and_above_white_linear_between():
    out = levels(ramp(), 0.25, 0.75)
    x = ramp()
    assert (out[x <= 0.25] == 0).all() and (out[x >= 0.75] == 1).all()
    mid = (x > 0.3) & (x < 0.7)
    np.testing.assert_allclose(out[mid], (x[mid] - 0.25) / 0.5, atol=1e-6)


@pytest.mark.parametrize("black,white", [(0.5, 0.5), (0.6, 0.4)])
def test_levels_refuse_white_at_or_below_black(black, white):
    with pytest.raises(ChangeMapError, match="white point .* above the black point"):
        levels(ramp(), black, white)


@settings(max_examples=60, deadline=None)
@given(maps, st.integers(2, 20))
def test_quantize_gives_at_most_n_values_on_an_even_grid_and_moves_each_by_at_most_half_a_step(m, n):
    out = quantize(m, n)
    values = np.unique(out)
    assert len(values) <= n
    np.testing.assert_allclose(values * (n - 1), np.rint(values * (n - 1)), atol=1e-5)
    assert np.abs(out - m).max() <= 0.5 / (n - 1) + 1e-6


def test_quantize_a_full_ramp_uses_every_level_including_black_and_white():
    out = quantize(ramp(), 5)
    np.testing.assert_array_equal(np.unique(out), np.array([0, 0.25, 0.5, 0.75, 1], dtype=np.float32))


@pytest.mark.parametrize("n", [1, 0, -3, 2.5])
def test_quantize_refuses_fewer_than_two_levels(n):
    with pytest.raises(ChangeMapError, match="at least 2 levels"):
        quantize(ramp(), n)


def test_equalize_spreads_a_skewed_map_evenly_and_keeps_the_order():
    rng = np.random.default_rng(0)
    skewed = (rng.random((64, 64)) ** 4).astype(np.float32)  # most pixels near black
    out = equalize(skewed)
    assert out.min() == 0 and out.max() == 1
    order = np.argsort(skewed.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order]) >= 0).all()  # monotone: a darker pixel never ends brighter
    assert abs(np.median(out) - 0.5) < 0.02  # half the area below mid-grey, as in a uniform histogram
    assert np.median(skewed) < 0.1


def test_equalize_leaves_a_flat_map_alone():
    flat = np.full((8, 8), 0.3, dtype=np.float32)
    assert np.array_equal(equalize(flat), flat)


def test_order_quantise_after_blur_and_output_range_last():
    step = np.zeros((32, 32), dtype=np.float32)
    step[:, 16:] = 1.0
    shaped = MapShape(blur=3.0, quantize=3, range_low=0.2, range_high=0.8).apply(step)
    # the blur made a ramp, quantising after it leaves exactly three strengths, which the range maps onto [.2, .8]
    np.testing.assert_allclose(np.unique(shaped), [0.2, 0.5, 0.8], atol=1e-6)


def test_order_levels_before_gamma():
    x = np.array([[0.5]], dtype=np.float32)
    # levels first: (0.5 - 0.25) / 0.5 = 0.5, then gamma 2 -> 0.25 (the other way round would give 0)
    np.testing.assert_allclose(MapShape(black_point=0.25, white_point=0.75, gamma=2.0).apply(x), [[0.25]])


def test_gamma_above_one_keeps_more():
    x = ramp()
    out = MapShape(gamma=2.0).apply(x)
    assert (out <= x + 1e-7).all() and out[0, 0] == 0 and out[0, -1] == 1


# ---- through the API parser, the infotext and a run ----


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"black_point": 0.6, "white_point": 0.4}, "white point"),
        ({"gamma": 0}, "gamma"),
        ({"gamma": -1}, "gamma"),
        ({"quantize": 1}, "at least 2 levels"),
        ({"quantize": 2.5}, "whole number"),
        ({"range_high": 1.5}, "range_high"),
        ({"blur": -1}, "blur"),
        ({"equalize": "yes"}, "equalize"),
    ],
)
def test_impossible_shaping_is_refused_with_a_message(fields, message):
    with pytest.raises(ChangeMapError, match=message):
        parse_script_args([{"enabled": True, **fields}])


def test_shaping_settings_round_trip_through_infotext():
    args = DiffDiffArgs(
        enabled=True,
        equalize=True,
        black_point=0.1,
        white_point=0.9,
        gamma=2.2,
        blur=4.0,
        quantize=5,
        range_low=0.25,
        range_high=0.75,
    )
    params = {k: str(v) for k, v in infotext_params(args, "abc 0-1").items()}
    restored = {s.name: ui_value(s.name, params) for s in SETTINGS}
    reparsed = parse_script_args([{k: v for k, v in restored.items() if v is not None}])
    assert reparsed.shape() == args.shape()
    assert isinstance(reparsed.quantize, int)


def run_p(change_map: np.ndarray):
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    from PIL import Image

    return SimpleNamespace(
        init_images=[Image.fromarray(image)],
        width=64,
        height=64,
        resize_mode=0,
        image_mask=None,
        nmask=None,
        paste_to=None,
        init_latent=torch.zeros(1, 4, 8, 8),
        denoising_strength=1.0,
    )


def test_a_run_reads_the_map_through_the_shape():
    gradient = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    plain = plan_run(run_p(gradient), DiffDiffArgs(enabled=True, map=gradient))
    shaped_args = DiffDiffArgs(enabled=True, map=gradient, quantize=2, range_low=0.5)
    shaped = plan_run(run_p(gradient), shaped_args)
    np.testing.assert_array_equal(shaped.image_map, shaped_args.shape().apply(plain.image_map))
    assert set(np.unique(shaped.latent_map)) == {0.5, 1.0}
    assert shaped.summary != plain.summary


def test_soft_inpaint_map_is_shaped_too():
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    from PIL import Image

    p = run_p(mask)
    p.image_mask = Image.fromarray(mask)
    p.nmask = None
    plain = plan_run(p, DiffDiffArgs(enabled=True, mode="soft inpaint", softness=4))
    stepped = plan_run(p, DiffDiffArgs(enabled=True, mode="soft inpaint", softness=4, quantize=3))
    assert len(np.unique(plain.image_map)) > 3 and len(np.unique(stepped.image_map)) == 3
