"""Map sources against a live WebUI: a map made from the init image (``"source"`` in the API) reaches the run,
pixels it leaves black stay exact through the latent path, it gives the same output as the same map painted, the
inpaint mask's source works inside the mask, the infotext names the source, the preview makes the same map, and bad
source fields are a 422 with the field named. Needs DIFFDIFF_WEBUI_URL, like test_webui_api.py."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff.maps.transforms import MapShape, to_latent
from lib_diffdiff.sources import made_map

from .checks import generate, grey, infotext
from .test_preview_api import preview_body
from .webui import URL_VARIABLE, b64, block_image, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64


def dark_left_image() -> Image.Image:
    """8x8 blocks: black on the left half (brightness 0: kept by the Brightness source), random colours on the
    right (brightness > 0: changed)."""
    a = np.asarray(block_image(W, H, seed=11)).copy()
    a[:, : W // 2] = 0
    return Image.fromarray(a, "RGB")


def blocks_exact(result: np.ndarray, source: np.ndarray) -> np.ndarray:
    return (result == source).all(axis=2).reshape(H // 8, 8, W // 8, 8).all(axis=(1, 3))


def test_a_brightness_map_keeps_the_dark_half_exact_and_equals_the_same_map_painted(webui, vae):
    image = dark_left_image()
    source = np.asarray(image).astype(np.int16)
    # the painted copy is 8-bit: the same map once both are shaped to 4 levels (every bright block at 1/3 or more)
    shaping = {"white_point": 0.5, "quantize": 4}
    made_args = {"enabled": True, "source": "luminance", "preserve": False, **shaping}
    (made,), response = generate(webui, payload(image, vae, made_args, denoising_strength=1.0))
    exact = blocks_exact(made, source)
    assert exact[:, : W // 16].all(), "black in the made map: kept byte for byte through the latent path"
    assert not exact[:, W // 16 :].any(), "bright blocks change"
    text = infotext(response)
    assert "Differential diffusion source: luminance" in text and "Differential diffusion quantize: 4" in text
    painted = made_map("luminance", image)
    painted_args = {"enabled": True, "map": grey(np.rint(painted * 255)), "preserve": False, **shaping}
    (same,), _ = generate(webui, payload(image, vae, painted_args, denoising_strength=1.0))
    np.testing.assert_array_equal(made, same)


def test_the_colour_source_changes_only_its_colour_and_writes_its_options(webui, vae):
    a = np.asarray(block_image(W, H, seed=12)).copy()
    a[:, W // 2 :] = (200, 40, 40)  # the right half is the colour to change
    a[:, : W // 2, 0] = 20  # the left half's reds are far from it
    image = Image.fromarray(a, "RGB")
    args = {"enabled": True, "source": "Colour range", "source_colour": [200, 40, 40], "source_tolerance": 0.2}
    (out,), response = generate(webui, payload(image, vae, args, denoising_strength=1.0))
    exact = blocks_exact(out, a.astype(np.int16))
    assert exact[:, : W // 16].all() and not exact[:, W // 16 :].any()
    text = infotext(response)
    assert "Differential diffusion source: colour" in text and "Differential diffusion source colour: #c82828" in text
    assert "Differential diffusion source tolerance: 0.2" in text


def test_the_mask_edge_source_changes_the_masks_middle_and_keeps_the_outside(webui, vae):
    image = block_image(W, H, seed=13)
    source = np.asarray(image).astype(np.int16)
    mask = np.zeros((H, W), np.uint8)
    mask[8:56, 8:56] = 255
    args = {"enabled": True, "source": "mask edge", "source_reach": 16, "preserve": False}
    (out,), _ = generate(
        webui,
        payload(image, vae, args, mask=grey(mask), mask_blur=0, inpainting_fill=1, denoising_strength=1.0),
    )
    exact = blocks_exact(out, source)
    assert exact[0, :].all() and exact[:, 0].all() and exact[-1, :].all() and exact[:, -1].all()
    assert not exact[3:5, 3:5].any(), "the middle of the mask, a reach away from its edge, changes"


def test_the_preview_makes_the_same_map_from_the_image_it_is_sent(webui):
    image = dark_left_image()
    url = "data:image/png;base64," + b64(image)
    settings = {"source": "edges", "source_reach": 12, "gamma": 0.7}
    body = preview_body(settings, init_image=url)
    status, out = webui.request("POST", "/diffdiff/v1/preview", body)
    assert status == 200, out
    expected = to_latent(MapShape(gamma=0.7).apply(made_map("edges", image, reach=12)), H // 8, W // 8)
    seen = np.frombuffer(base64.b64decode(out["map"]), np.uint8).reshape(out["height"], out["width"])
    assert np.abs(seen.astype(float) - np.rint(expected * 255)).max() <= 1
    status, out = webui.request("POST", "/diffdiff/v1/preview", {**body, "init_image": None})
    assert status == 422 and "needs the init image" in out["detail"], out


@pytest.mark.parametrize(
    "args,message",
    [
        ({"source": "depth_anything"}, "unknown Differential Diffusion source 'depth_anything'"),
        ({"source": "colour", "source_colour": "teal"}, "'source_colour'"),
        ({"source": "point", "source_point": [2, 0]}, "'source_point'"),
        ({"source": "mask edge"}, "'mask edge' needs an inpaint mask"),
        ({"source": "luminance", "source_reach": 0}, "'source_reach'"),
    ],
)
def test_bad_source_fields_fail_with_422_and_the_webui_keeps_serving(webui, vae, args, message):
    image = block_image(W, H, seed=14)
    status, out = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, {"enabled": True, **args}))
    assert status == 422, (status, str(out)[:300])
    assert message in out["detail"] and out["detail"].startswith("Differential Diffusion:"), out
    assert webui.request("GET", "/sdapi/v1/samplers")[0] == 200
