"""The run preview (POST /diffdiff/v1/preview) and the map-shaping settings against a live WebUI: the preview answers
for every sampler the host lists, its never-freed pixels are exactly the pixels a real run keeps, bad input is a
422 with a message, and shaping settings sent through the API change which pixels are kept. Needs
DIFFDIFF_WEBUI_URL, like test_webui_api.py."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

from .webui import URL_VARIABLE, b64, block_image, decode, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64
PREVIEW = "/diffdiff/v1/preview"


def grey_url(values: np.ndarray) -> str:
    return "data:image/png;base64," + b64(Image.fromarray(values.astype(np.uint8), "L"))


def columns_map() -> np.ndarray:
    """Eight latent columns of grey 0, 36, ..., 252: never freed on the left, freed ever earlier to the right."""
    levels = np.round(np.linspace(0, 252, 8)).astype(np.uint8)
    return np.repeat(np.tile(levels, (H, 1)), 8, axis=1)


def preview_body(settings: dict, **overrides) -> dict:
    body = {
        "settings": settings,
        "init_width": W,
        "init_height": H,
        "width": W,
        "height": H,
        "steps": 8,
        "denoising_strength": 1.0,
        "sampler_name": "Euler",
        "scheduler": "Automatic",
    }
    body.update(overrides)
    return body


def free_calls(out: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(out["free_call"]), dtype="<u2")
    return raw.reshape(out["maps"], out["height"], out["width"])[0]


def test_the_preview_answers_for_every_sampler_the_host_lists(webui):
    failures = []
    for sampler in [s["name"] for s in webui.get("/sdapi/v1/samplers")]:
        status, out = webui.request(
            "POST", PREVIEW, preview_body({"map": grey_url(columns_map())}, sampler_name=sampler)
        )
        if status != 200 or not out["calls"] or len(np.unique(free_calls(out))) < 3:
            failures.append(f"{sampler}: {status} {str(out)[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M", "DDIM"])
def test_never_freed_pixels_of_the_preview_are_exactly_the_pixels_a_real_run_keeps(webui, vae, sampler):
    m = columns_map()
    m[:, 8:16] = 4  # a column so faint that img2img at its strength makes no model call: kept as well
    status, out = webui.request("POST", PREVIEW, preview_body({"map": grey_url(m)}, sampler_name=sampler))
    assert status == 200, out
    never = free_calls(out) == out["calls"]
    image = block_image(W, H, seed=5)
    status, response = webui.request(
        "POST",
        "/sdapi/v1/img2img",
        payload(
            image,
            vae,
            {"enabled": True, "map": b64(Image.fromarray(m, "L")), "preserve": False},
            sampler_name=sampler,
            steps=8,
            denoising_strength=1.0,
        ),
    )
    assert status == 200, response
    result, source = decode(response["images"][0]), np.asarray(image).astype(np.int16)
    exact = (result == source).all(axis=2).reshape(H // 8, 8, W // 8, 8).all(axis=(1, 3))
    assert never.any() and not never.all()
    np.testing.assert_array_equal(exact[never], True)  # every pixel the preview keeps is kept, byte for byte
    assert not exact[free_calls(out) == 0].any(), "pixels free from the first call are generated"


@pytest.mark.parametrize(
    "body,message",
    [
        (preview_body({"map": grey_url(columns_map()), "black_point": 0.8, "white_point": 0.2}), "white point"),
        (preview_body({"map": grey_url(columns_map())}, sampler_name="No such sampler"), "unknown sampler"),
        (preview_body({"map": "not an image"}), "change map"),
        (preview_body({"map": grey_url(columns_map())}, steps=-1), "steps"),
        (preview_body({}), "needs a change map"),
    ],
)
def test_bad_preview_requests_are_422_with_a_message(webui, body, message):
    status, out = webui.request("POST", PREVIEW, body)
    assert status == 422 and message in out["detail"] and out["detail"].startswith("Differential Diffusion:"), out
    assert webui.request("GET", "/sdapi/v1/samplers")[0] == 200


def test_shaping_sent_through_the_api_changes_which_pixels_are_kept(webui, vae):
    ramp = np.repeat(np.tile(np.round(np.linspace(0, 255, 8)).astype(np.uint8), (H, 1)), 8, axis=1)
    image = block_image(W, H, seed=6)
    source = np.asarray(image).astype(np.int16)

    def kept_columns(**shaping) -> np.ndarray:
        args = {"enabled": True, "map": b64(Image.fromarray(ramp, "L")), **shaping}
        status, response = webui.request(
            "POST", "/sdapi/v1/img2img", payload(image, vae, args, steps=6, denoising_strength=1.0)
        )
        assert status == 200, response
        out = decode(response["images"][0])
        return (out == source).all(axis=2).all(axis=0).reshape(8, 8).all(axis=1)

    plain = kept_columns()
    levelled = kept_columns(black_point=0.5)
    assert plain.tolist() == [True] + [False] * 7  # only the black column
    assert levelled.tolist() == [True] * 4 + [False] * 4  # greys up to mid-grey became black: kept exactly
    assert kept_columns(range_low=0.3).tolist() == [False] * 8  # black now stands for a strength of 0.3
