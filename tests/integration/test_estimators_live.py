"""Depth and segmentation map sources against a live WebUI, with its own estimators (sd-webui-controlnet's
preprocessors on A1111, the built-in ones on Forge and Forge Neo): the installed ones are listed, a made map reaches
the run and the pixels it leaves black stay exact, the preview shows the same map, an estimator whose weights are not
on disk is named with what the WebUI would fetch (nothing is downloaded), and a WebUI without estimators says what
to install.

Needs DIFFDIFF_WEBUI_URL and, for the map tests, the names of estimators whose weights are on disk (random weights in
the original layout do: docs/testing.md): DIFFDIFF_DEPTH_ESTIMATOR (e.g. depth_leres), DIFFDIFF_SEG_ESTIMATOR (e.g.
seg_anime_face); DIFFDIFF_ESTIMATOR_WITHOUT_WEIGHTS names one whose weights are not there (default depth_leres++)."""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest

from .checks import generate, infotext
from .test_preview_api import preview_body
from .webui import URL_VARIABLE, b64, block_image, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64
ESTIMATORS = "/diffdiff/v1/estimators"


@pytest.fixture(scope="module")
def listed(webui) -> dict:
    status, out = webui.request("GET", ESTIMATORS)
    assert status == 200, out
    return out


def estimator(listed: dict, kind: str, variable: str) -> str:
    name = os.environ.get(variable)
    if not name:
        pytest.skip(f"{variable} is not set: name a {kind} estimator whose weights are on this WebUI's disk")
    assert name in listed[kind], f"{name} is not among the installed {kind} estimators {listed[kind]}"
    return name


def preview_map(webui, image, settings: dict) -> np.ndarray:
    """The latent-size map the preview makes (8-bit), from the same image the run gets."""
    body = preview_body(settings, steps=6, init_image="data:image/png;base64," + b64(image))
    status, out = webui.request("POST", "/diffdiff/v1/preview", body)
    assert status == 200, out
    return np.frombuffer(base64.b64decode(out["map"]), np.uint8).reshape(out["height"], out["width"])


def blocks_exact(result: np.ndarray, source: np.ndarray) -> np.ndarray:
    return (result == source).all(axis=2).reshape(H // 8, 8, W // 8, 8).all(axis=(1, 3))


def check_made_map_run(webui, vae, settings: dict) -> tuple[np.ndarray, str]:
    image = block_image(W, H, seed=31)
    seen = preview_map(webui, image, settings)
    assert (seen == 0).any() and (seen > 0).any(), f"the made map keeps some blocks and changes others: {seen}"
    args = {"enabled": True, "preserve": False, **settings}
    (out,), response = generate(webui, payload(image, vae, args, denoising_strength=1.0))
    exact = blocks_exact(out, np.asarray(image).astype(np.int16))
    assert exact[seen == 0].all(), "black in the made map: kept byte for byte through the latent path"
    assert not exact[seen >= 64].any(), "blocks the map changes by a quarter or more change"
    return seen, infotext(response)


def test_the_installed_estimators_are_listed_or_the_message_says_what_to_install(webui, vae, listed):
    assert set(listed) == {"depth", "segmentation"}, listed
    if listed["depth"]:
        assert all(isinstance(n, str) and n for n in listed["depth"] + listed["segmentation"])
        return
    body = payload(block_image(W, H, seed=30), vae, {"enabled": True, "source": "depth"})
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 422 and "sd-webui-controlnet" in out["detail"], out


def test_a_depth_map_is_made_reaches_the_run_and_keeps_its_black_exact(webui, vae, listed):
    name = estimator(listed, "depth", "DIFFDIFF_DEPTH_ESTIMATOR")
    # the far half black, the rest in 3 steps: a latent pixel is 0 only where its whole block is (a continuous map's
    # tiny greys would round to 0 in the preview's 8 bits and still change a little)
    settings = {"source": "depth", "source_estimator": name, "black_point": 0.5, "quantize": 4}
    seen, text = check_made_map_run(webui, vae, settings)
    assert len(np.unique(seen)) > 2, "depth makes a continuous map"
    assert "Differential diffusion source: depth" in text
    assert f"Differential diffusion source estimator: {name}" in text
    plain = {"source": "depth", "source_estimator": name}
    far = preview_map(webui, block_image(W, H, seed=31), {**plain, "invert": True})
    near = preview_map(webui, block_image(W, H, seed=31), plain)
    assert np.abs(far.astype(int) + near.astype(int) - 255).max() <= 2, "Invert map: far = change"


def test_a_segment_map_is_made_reaches_the_run_and_keeps_its_black_exact(webui, vae, listed):
    name = estimator(listed, "segmentation", "DIFFDIFF_SEG_ESTIMATOR")
    image = block_image(W, H, seed=31)
    for point in ([0.1, 0.1], [0.9, 0.9], [0.5, 0.5], [0.1, 0.9], [0.9, 0.1]):
        settings = {"source": "segmentation", "source_estimator": name, "source_point": point}
        seen = preview_map(webui, image, settings)
        if (seen == 0).any():  # this point's class is not everywhere
            break
    else:
        pytest.fail(f"{name} put every point of the image in one class: {np.unique(seen)}")
    _, text = check_made_map_run(webui, vae, settings)
    assert "Differential diffusion source: segmentation" in text


def test_missing_weights_are_named_and_not_downloaded(webui, vae, listed):
    name = os.environ.get("DIFFDIFF_ESTIMATOR_WITHOUT_WEIGHTS", "depth_leres++")
    if name not in listed["depth"] + listed["segmentation"]:
        pytest.skip(f"{name} is not installed on this WebUI")
    kind = "depth" if name in listed["depth"] else "segmentation"
    body = payload(block_image(W, H, seed=32), vae, {"enabled": True, "source": kind, "source_estimator": name})
    for _ in range(2):  # the second time too: nothing was fetched in between
        status, out = webui.request("POST", "/sdapi/v1/img2img", body)
        assert status == 422, (status, str(out)[:300])
        assert "which is not on disk, and this extension does not download it" in out["detail"], out
        assert "The WebUI would fetch http" in out["detail"], out
    assert webui.request("GET", "/sdapi/v1/samplers")[0] == 200


def test_an_unknown_estimator_is_a_422_naming_the_installed_ones(webui, vae, listed):
    body = payload(block_image(W, H, seed=33), vae, {"enabled": True, "source": "depth", "source_estimator": "nope"})
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 422, (status, str(out)[:300])
    if listed["depth"]:
        assert "'nope' is not an installed depth estimator; installed: " + ", ".join(listed["depth"]) in out["detail"]
    else:
        assert "sd-webui-controlnet" in out["detail"]
