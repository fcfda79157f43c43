"""Map sources in the product: the ``source`` setting and its options are parsed, written to the infotext and read
back, make the run's map from the init image (a made map plans exactly as the same map painted), keep its black
pixels exact through a real sampling loop, and give the preview the same map as the run."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_webui import setup_img2img_steps
from PIL import Image
from test_glue import FakeKDiffusionSampler, fake_xyz
from test_webui_preview import Host, Sampler, euler, free_calls, request

from lib_diffdiff import ChangeMapError
from lib_diffdiff.sources import luminance
from lib_diffdiff.webui.adapter import DifferentialSampling, plan_run
from lib_diffdiff.webui.foresee import foresee
from lib_diffdiff.webui.infotext import infotext_params, relevant, ui_value
from lib_diffdiff.webui.script_args import parse_named
from lib_diffdiff.webui.settings import SETTINGS, SOURCE_OPTIONS, SOURCES, DiffDiffArgs
from lib_diffdiff.webui.xyz_axes import add_axes, axis_label


def png_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def split_image(width: int = 64, height: int = 32) -> Image.Image:
    """Black on the left half, a horizontal ramp of reds on the right: luminance 0 on the left, > 0 on the right."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, width // 2 :, 0] = np.linspace(60, 255, width - width // 2).round().astype(np.uint8)
    a[:, width // 2 :, 1] = 40
    return Image.fromarray(a, "RGB")


def processing(image: Image.Image, strength: float = 0.8) -> SimpleNamespace:
    w, h = image.size
    return SimpleNamespace(
        init_images=[image],
        width=w,
        height=h,
        resize_mode=0,
        image_mask=None,
        paste_to=None,
        init_latent=torch.randn(1, 4, h // 8, w // 8, generator=torch.Generator().manual_seed(0)),
        denoising_strength=strength,
        steps=10,
        nmask=None,
        inpainting_mask_invert=0,
    )


def grey_png(values: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.rint(values * 255).astype(np.uint8), "L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def assert_sampling_keeps_black_exact(image: Image.Image, plan) -> None:
    """Through a real sampling loop: latent pixels the plan's map leaves black come out exactly as they went in,
    the others change."""
    p = processing(image)
    p.sampler = FakeKDiffusionSampler()
    DifferentialSampling(p, plan, setup_img2img_steps).install()
    noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(1))
    out = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
    keep = torch.from_numpy(plan.latent_map == 0).expand_as(out[0])
    assert keep.any() and torch.equal(out[0][keep], p.init_latent[0][keep])
    assert not torch.equal(out[0][~keep], p.init_latent[0][~keep])


# ---- parsing ----


def test_every_source_takes_an_array_or_a_picture_alike():
    from lib_diffdiff.sources import made_map

    image = split_image()
    mask = np.zeros((32, 64), np.float32)
    mask[8:24, 8:40] = 1

    def estimate(im: Image.Image) -> np.ndarray:  # an estimator's output: the image's own red plane
        assert isinstance(im, Image.Image) and im.mode == "RGB"
        return np.asarray(im)[..., 0]

    for source in [s for s in SOURCES if s != "painted"]:
        a = made_map(source, np.asarray(image), mask=mask, reach=6, estimate=estimate)
        b = made_map(source, image, mask=mask, reach=6, estimate=estimate)
        assert a.shape == (32, 64) and a.dtype == np.float32, source
        np.testing.assert_array_equal(a, b, err_msg=source)


def test_sources_are_read_by_api_value_or_ui_label_and_options_are_normalised():
    assert parse_named({"enabled": True}).source == "painted"
    for value, label in SOURCES.items():
        assert parse_named({"enabled": True, "source": value}).source == value
        assert parse_named({"enabled": True, "source": label.upper()}).source == value
    args = parse_named({"enabled": True, "source": "colour", "source_colour": [255, 0, 16], "source_point": "0.25,1"})
    assert args.source_colour == "#ff0010" and args.source_point == (0.25, 1.0)
    assert parse_named({"enabled": True, "source_colour": "#F00"}).source_colour == "#ff0000"


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"source": "depth-of-field"}, "unknown Differential Diffusion source 'depth-of-field'"),
        ({"source_colour": "red"}, "'source_colour'.*#rrggbb"),
        ({"source_colour": [300, 0, 0]}, "'source_colour'"),
        ({"source_point": [0.5]}, "'source_point'.*two numbers in \\[0, 1\\]"),
        ({"source_point": "2, 0.5"}, "'source_point'"),
        ({"source_reach": 0}, "'source_reach'.*\\[1, 4096\\]"),
        ({"source_tolerance": 0}, "'source_tolerance'"),
    ],
)
def test_bad_source_fields_are_refused_with_the_field_named(fields, message):
    with pytest.raises(ChangeMapError, match=message):
        parse_named({"enabled": True, **fields})


# ---- infotext and X/Y/Z ----


@pytest.mark.parametrize(
    "args",
    [
        DiffDiffArgs(enabled=True, source="colour", source_colour="#12ab40", source_tolerance=0.4),
        DiffDiffArgs(enabled=True, source="point", source_point=(0.2, 0.75), source_reach=20.0),
        DiffDiffArgs(enabled=True, source="mask edge", source_reach=8.0, invert=True),
    ],
)
def test_a_source_and_its_options_go_through_the_infotext_and_back(args):
    params = {k: str(v) for k, v in infotext_params(args, "abc 0-1").items()}
    restored = {s.name: ui_value(s.name, params) for s in SETTINGS}
    reparsed = parse_named({k: v for k, v in restored.items() if v is not None and k != "map"})
    for name in ("source", "invert", *SOURCE_OPTIONS[args.source]):
        assert getattr(reparsed, name) == getattr(args, name), name


def test_only_the_chosen_sources_options_are_written():
    args = DiffDiffArgs(enabled=True, source="luminance", source_reach=9.0, source_colour="#000000")
    params = infotext_params(args)
    assert params["Differential diffusion source"] == "luminance"
    assert not any(key.startswith("Differential diffusion source ") for key in params)
    assert "Differential diffusion source" not in infotext_params(DiffDiffArgs(enabled=True))
    assert "source" not in relevant(DiffDiffArgs(enabled=True, mode="fan", source="luminance"))


def test_the_source_axis_offers_the_sources():
    xyz = fake_xyz()
    add_axes(xyz)
    axis = next(a for a in xyz.axis_options if a.label == axis_label("source"))
    assert axis.choices() == list(SOURCES)


# ---- the run ----


def test_a_made_map_plans_exactly_as_the_same_map_painted_and_keeps_its_black_exact():
    image = split_image()
    made = plan_run(processing(image), DiffDiffArgs(enabled=True, source="luminance", quantize=6))
    expected = luminance(image)
    assert (expected[:, :32] == 0).all() and (expected[:, 32:] > 0).all()
    painted = plan_run(processing(image), DiffDiffArgs(enabled=True, map=grey_png(expected), quantize=6))
    # the painted copy went through 8 bits, the made map did not: equal once shaped into 6 levels
    np.testing.assert_array_equal(made.image_map, painted.image_map)
    np.testing.assert_array_equal(made.latent_map, painted.latent_map)
    assert (made.image_map[:, :32] == 0).all() and (made.latent_map[:, :4] == 0).all()

    assert_sampling_keeps_black_exact(image, made)


def test_invert_and_shaping_apply_to_the_made_map():
    image = split_image()
    plain = plan_run(processing(image), DiffDiffArgs(enabled=True, source="luminance")).image_map
    inverted = plan_run(processing(image), DiffDiffArgs(enabled=True, source="luminance", invert=True)).image_map
    np.testing.assert_allclose(inverted, 1 - plain, atol=1e-6)
    two = plan_run(
        processing(image), DiffDiffArgs(enabled=True, source="luminance", white_point=0.2, quantize=2)
    ).image_map
    assert set(np.unique(two)) <= {0.0, 1.0} and len(np.unique(two)) == 2


def test_the_mask_edge_source_reads_the_inpaint_mask_as_the_webui_takes_it():
    image = split_image()
    mask = np.zeros((32, 64), np.uint8)
    mask[8:24, 16:48] = 255
    p = processing(image)
    p.image_mask = Image.fromarray(mask, "L")
    args = DiffDiffArgs(enabled=True, source="mask edge", source_reach=4.0)
    m = plan_run(p, args).image_map
    assert (m[mask == 0] == 0).all() and m[16, 32] == 1.0 and 0 < m[8, 32] < 1
    p.inpainting_mask_invert = 1  # "Inpaint not masked": the outside is what is inpainted
    m = plan_run(p, args).image_map
    assert (m[mask > 0] == 0).all() and m[0, 0] == 1.0
    with pytest.raises(ChangeMapError, match="'mask edge' needs an inpaint mask"):
        plan_run(processing(image), args)


def test_a_source_that_leaves_everything_black_is_refused_like_a_black_map():
    with pytest.raises(ChangeMapError, match="black everywhere"):
        plan_run(processing(Image.new("RGB", (64, 32))), DiffDiffArgs(enabled=True, source="luminance"))


# ---- the preview ----


def test_the_preview_of_a_source_equals_the_run_and_needs_the_image():
    image = Image.fromarray(np.tile(np.linspace(0, 255, 64).round().astype(np.uint8)[None, :, None], (64, 1, 3)), "RGB")
    settings = {"source": "luminance", "quantize": 5}
    out = foresee(request(settings, init_image=png_url(image)), Host(euler))
    p = processing(image)
    p.steps, p.init_latent = 12, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    p.sampler = Sampler(euler)
    plan = plan_run(p, parse_named({"enabled": True, **settings}))
    sampling = DifferentialSampling(p, plan, setup_img2img_steps)
    masks: list[np.ndarray] = []
    p.sampler.model_wrap_cfg.on_call = lambda: masks.append(sampling.last_injector.held_mask()[:, 0].numpy().copy())
    sampling.install()
    g = torch.Generator().manual_seed(0)
    p.sampler.sample_img2img(p, torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g))
    free = free_calls(out)
    assert out["calls"] == len(masks) > 0
    for k, held in enumerate(masks):
        np.testing.assert_array_equal(free > k, held, err_msg=f"model call {k}")
    with pytest.raises(ChangeMapError, match="needs the init image"):
        foresee(request(settings), Host(euler))
    with pytest.raises(ChangeMapError, match="init_image' is 64x64 but"):
        foresee(request(settings, init_image=png_url(image), init_width=32), Host(euler))
