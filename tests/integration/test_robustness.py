"""Live robustness: hostile requests, Interrupt and Skip at chosen points, concurrent requests, and the scripts and
extensions people run beside this one (Loopback, SD upscale, Ultimate SD upscale, ADetailer, ControlNet).

Needs DIFFDIFF_WEBUI_URL and the transparent VAE (see test_webui_api.py). A companion that is not installed on the
host is skipped with its name; benchmarks/soak.py runs the same pieces hundreds of times."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .checks import generate, grey, infotext
from .robustness import (
    Maker,
    held_and_changed,
    hostile_args,
    images_of,
    map_probe,
    region_map,
    send_stopped,
    send_together,
)
from .webui import URL_VARIABLE, block_image, decode, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]


@pytest.fixture(scope="module")
def vae_name(webui, vae):
    return webui.vae_name()


@pytest.fixture(scope="module")
def maker(webui, vae_name):
    return Maker(webui, vae_name, ["Euler", "Euler a", "DPM++ 2M", "DDIM"], ["Automatic"], seed=3)


@pytest.fixture(scope="module")
def fresh(webui, vae_name):
    """A fresh run of the probe request: after any interrupted or skipped generation it must come out the same."""
    status, answer = webui.request("POST", "/sdapi/v1/img2img", map_probe(webui, vae_name))
    assert status == 200, answer
    return [decode(text) for text in answer["images"]]


@pytest.fixture(scope="module")
def installed(webui):
    """Lower-case names of the img2img scripts (selectable and always-on) the host has."""
    listing = webui.get("/sdapi/v1/scripts")
    return {name.lower() for name in listing.get("img2img", [])}


CASES = hostile_args(64, 64, grey(region_map(64, 64, "left")))


@pytest.mark.parametrize("args,why", CASES, ids=[why for _, why in CASES])
def test_a_hostile_request_gets_a_4xx_naming_the_extension(webui, vae, args, why):
    body = payload(block_image(64, 64), vae, args, steps=2)
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert 400 <= status < 500, f"{why}: HTTP {status}"
    assert "Differential Diffusion" in str(answer.get("detail")), answer


@pytest.mark.parametrize("sampler", ["DDIM", "PLMS"])
def test_a_timestep_sampler_run_without_a_model_call_is_refused(webui, vae, sampler):
    """At 2 steps the WebUI's own DDIM/PLMS img2img makes no model call (it returns the noised latent): said."""
    body = payload(block_image(64, 64), vae, {"enabled": True, "map": grey(np.full((64, 64), 255))}, steps=2)
    body["sampler_name"] = sampler
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 422 and "makes no model call" in str(answer.get("detail")), answer


@pytest.mark.parametrize("point", ["first", "last", "batch"])
@pytest.mark.parametrize("action", ["interrupt", "skip"])
def test_after_an_interrupt_or_skip_the_next_generation_is_a_fresh_one(webui, vae_name, maker, fresh, point, action):
    request = maker.map_request(
        size=(64, 64), steps=6, batch_size=2, n_iter=3 if point == "batch" else 1, denoising_strength=1.0
    )
    status, answer, seen = send_stopped(webui, request, point, action)
    assert status == 200, answer
    assert seen, f"the generation was never seen at the {point} point"
    if point == "batch":
        assert seen["job_no"] >= 1
    status, again = webui.request("POST", "/sdapi/v1/img2img", map_probe(webui, vae_name))
    assert status == 200, again
    after = [decode(text) for text in again["images"]]
    assert len(after) == len(fresh) and all(np.array_equal(a, b) for a, b in zip(after, fresh, strict=True))


def test_concurrent_requests_each_keep_their_own_map(webui, maker):
    group = [maker.map_request(keep=side, size=(64, 64), batch_size=1, n_iter=1) for side in ("left", "right", "top")]
    for request, (status, answer) in zip(group, send_together(webui, group), strict=True):
        assert request.check(status, answer) == "", request.notes


# -- companions -----------------------------------------------------------------------------------------------------


def keep_left_args(size: int) -> dict:
    return {"enabled": True, "map": grey(region_map(size, size, "left")), "preserve": False}


def args_by_label(webui, script: str, values: dict) -> list:
    """A selectable script's positional args from the host's script-info (its defaults), the ones whose label
    contains a key of ``values`` set to that value: hosts order and label them differently (A1111's SD upscale
    starts with an info line, Neo's with the tile overlap)."""
    info = next(s for s in webui.get("/sdapi/v1/script-info") if s["name"] == script and s["is_img2img"])
    args = []
    for arg in info["args"]:
        label = (arg.get("label") or "").lower()
        args.append(next((v for k, v in values.items() if k in label), arg.get("value")))
    missing = [k for k in values if not any(k in (a.get("label") or "").lower() for a in info["args"])]
    assert not missing, f"{script} has no argument labelled {missing}: {info['args']}"
    return args


def test_loopback_holds_the_map_in_every_loop(webui, vae, installed):
    if "loopback" not in installed:
        pytest.skip("this host has no Loopback script")
    image = block_image(64, 64, seed=21)
    body = payload(image, vae, keep_left_args(64), script_name="loopback", script_args=[3, 0.8, "Linear", "None"])
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, answer
    source = np.asarray(image).astype(np.int16)
    kept = np.asarray(region_map(64, 64, "left")) == 0
    outs = images_of(answer, 64, 64)
    assert outs, "no image of the loop's size came back"
    assert held_and_changed(outs[-1:], source, kept, 1) == ""
    assert "Differential diffusion: True" in infotext(answer)


def test_sd_upscale_is_refused_with_a_message(webui, vae, installed):
    if "sd upscale" not in installed:
        pytest.skip("this host has no SD upscale script")
    script_args = args_by_label(webui, "sd upscale", {"overlap": 16, "upscaler": 0, "scale factor": 2.0})
    body = payload(block_image(64, 64), vae, keep_left_args(64), script_name="sd upscale", script_args=script_args)
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 422 and "SD upscale samples tiles" in str(answer.get("detail")), answer


def upscaler_index(webui, name: str = "Nearest") -> int:
    names = [u["name"] for u in webui.get("/sdapi/v1/upscalers")]
    return names.index(name)


@pytest.mark.parametrize("padding", [0, 16])
def test_ultimate_sd_upscale_gives_each_tile_its_part_of_the_map(webui, vae, installed, padding):
    """64x64 tiles of a 128x128 canvas (the image upscaled 2x by Nearest), linear redraw, no seam fix: the left
    tiles lie in the map's black, the right ones in its white. A tile's crop is resized for sampling (the script's
    tile masks are one pixel larger than the tile), so held latents do not decode to exact pixels: the kept pixels
    come back exact through "Keep unchanged pixels exact", up to the map's own edge, softened by fitting the 64 px
    map to the 128 px canvas."""
    if "ultimate sd upscale" not in installed:
        pytest.skip("this host has no Ultimate SD upscale (Coyote-A/ultimate-upscale-for-automatic1111)")
    image = block_image(64, 64, seed=22)
    usdu = [None, 64, 64, 0, padding, 64, 0.35, 16, upscaler_index(webui), False, 0, False, 0, 0, 0, 2048, 2048, 2]
    args = {**keep_left_args(64), "preserve": True}
    body = payload(
        image,
        vae,
        args,
        width=128,
        height=128,
        denoising_strength=1.0,
        script_name="ultimate sd upscale",
        script_args=usdu,
    )
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, answer
    canvas = np.kron(np.asarray(image).astype(np.int16), np.ones((2, 2, 1), np.int16))  # Nearest 2x
    outs = images_of(answer, 128, 128)
    assert outs, "no 128x128 image came back"
    kept = np.zeros((128, 128), bool)
    kept[:, :60] = True  # the fitted map is exactly 0 up to a few pixels before its edge at 64
    assert held_and_changed(outs[-1:], canvas, kept, 1) == ""
    assert (np.abs(outs[-1][:, 64:] - canvas[:, 64:]) > 2).any(axis=-1).mean() > 0.5, "the right tiles changed"


def test_a_pass_over_only_black_map_keeps_its_crop_without_sampling(webui, vae):
    """An "only masked" pass whose part of the map is black (a tile of Ultimate SD upscale over a kept region) is
    not an error: every pixel is held, so the run ends on the original latent, which decodes exactly."""
    image = block_image(128, 128, seed=26)
    mask = np.zeros((128, 128), np.uint8)
    mask[0:64, 0:64] = 255
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(region_map(128, 128, "left")), "preserve": False},
        mask=grey(mask),
        mask_blur=0,
        inpainting_fill=1,
        inpaint_full_res=True,
        inpaint_full_res_padding=0,
        width=64,
        height=64,
        denoising_strength=1.0,
    )
    (out,), answer = generate(webui, body)
    assert np.array_equal(out, np.asarray(image).astype(np.int16))
    assert "Differential diffusion: True" in infotext(answer)


def test_adetailer_runs_its_detail_pass_beside_the_map(webui, vae, installed):
    if "adetailer" not in installed:
        pytest.skip("this host has no ADetailer (Bing-su/adetailer)")
    models = webui.get("/adetailer/v1/ad_model").get("ad_model", [])
    local = next((m for m in models if m.endswith(".pt") and "random" in m), None)
    if local is None:
        pytest.skip("ADetailer has no local random YOLO model (models/adetailer/random-*.pt)")
    ad = {"ad_model": local, "ad_confidence": 0.0, "ad_mask_k": 1, "ad_denoising_strength": 0.4}
    body = payload(block_image(64, 64, seed=23), vae, keep_left_args(64), steps=4, denoising_strength=1.0)
    body["alwayson_scripts"]["ADetailer"] = {"args": [True, False, ad]}
    (out,), answer = generate(webui, body)
    text = infotext(answer)
    assert "Differential diffusion: True" in text and "ADetailer model" in text, text


def controlnet_unit(webui, model_part: str, module: str) -> dict:
    status, listing = webui.request("GET", "/controlnet/model_list")
    models = listing.get("model_list", []) if status == 200 else []
    model = next((m for m in models if model_part in m), None)
    if model is None:
        pytest.skip(f"no ControlNet model with {model_part!r} in its name (or no ControlNet API)")
    return {
        "enabled": True,
        "module": module,
        "model": model,
        "weight": 1.0,
        "resize_mode": "Crop and Resize",
        "processor_res": 64,
        "guidance_start": 0.0,
        "guidance_end": 1.0,
        "control_mode": "Balanced",
    }


def test_controlnet_beside_the_map_keeps_the_held_pixels(webui, vae, installed):
    if "controlnet" not in installed:
        pytest.skip("this host has no ControlNet")
    module = "None" if webui.is_forge() else "none"
    image = block_image(64, 64, seed=24)
    body = payload(image, vae, keep_left_args(64), steps=4, denoising_strength=1.0)
    (without,), _ = generate(webui, body)
    body["alwayson_scripts"]["controlnet"] = {"args": [controlnet_unit(webui, "canny", module)]}
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, answer
    kept = np.asarray(region_map(64, 64, "left")) == 0
    (out,) = images_of(answer, 64, 64)[:1]
    assert held_and_changed([out], np.asarray(image).astype(np.int16), kept, 1) == ""
    # the random ControlNet's residuals are not zero: if it took part, the free half differs from the run without it
    assert not np.array_equal(out[~kept], without[~kept]), "ControlNet did not act on the run (see the host's console)"


def test_controlnet_inpaint_only_beside_the_map(webui, vae, installed):
    """ControlNet's inpaint mode blends latents itself: with an inpaint mask over the right half and a map that
    keeps its top half, the kept parts (outside the mask, and the map's black inside it) come back exact."""
    if "controlnet" not in installed:
        pytest.skip("this host has no ControlNet")
    image = block_image(64, 64, seed=25)
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 255
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(region_map(64, 64, "top")), "preserve": False},
        mask=grey(mask),
        mask_blur=0,
        inpainting_fill=1,
        inpaint_full_res=False,
        steps=4,
        denoising_strength=1.0,
    )
    body["alwayson_scripts"]["controlnet"] = {"args": [controlnet_unit(webui, "inpaint", "inpaint_only")]}
    status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, answer
    kept = (mask == 0) | (np.asarray(region_map(64, 64, "top")) == 0)
    assert held_and_changed(images_of(answer, 64, 64)[:1], np.asarray(image).astype(np.int16), kept, 1) == ""
    assert json.loads(answer["info"])["infotexts"][0].count("ControlNet") >= 1
