"""Checks shared by the live suites (SD1.5 in test_webui_api.py, the other families in test_model_families.py):
request helpers and the inpaint-tab checks, each parametrised by how a request is made."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
from PIL import Image

from .webui import WebUI, b64, block_image, decode

Payload = Callable[..., dict]
"""webui.payload or a wrapper of it: (image, vae, diffdiff args, **overrides) -> request body."""


def grey(values: np.ndarray) -> str:
    return b64(Image.fromarray(values.astype(np.uint8), "L"))


def half_map(width: int, height: int, keep_left: bool = True) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    if keep_left:
        m[:, width // 2 :] = 255
    else:
        m[:, : width // 2] = 255
    return m


def infotext(response: dict) -> str:
    return json.loads(response["info"])["infotexts"][0]


def generate(webui: WebUI, body: dict) -> tuple[list[np.ndarray], dict]:
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, out
    return [decode(i) for i in out["images"]], out


def check_only_masked_keeps_the_map_aligned(webui: WebUI, vae: dict | str, payload: Payload) -> None:
    """A half map over a 128x128 image, inpainted with "Only masked" in a 64x64 crop around the centre."""
    size = 128
    image = block_image(size, size, seed=7)
    src = np.asarray(image).astype(np.int16)
    mask = np.zeros((size, size), np.uint8)
    mask[32:96, 32:96] = 255
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(half_map(size, size)), "preserve": False},  # keep x < 64
        mask=grey(mask),
        mask_blur=0,
        inpainting_fill=1,
        inpaint_full_res=True,
        inpaint_full_res_padding=0,
        width=64,
        height=64,
        denoising_strength=1.0,
    )
    (out,), _ = generate(webui, body)
    assert out.shape == src.shape
    assert np.array_equal(out[:, :64], src[:, :64]), "left of the map's edge nothing changes, inside the crop too"
    assert np.abs(out[32:96, 64:96] - src[32:96, 64:96]).mean() > 1.0, "right of it, inside the mask, it changes"
    assert np.array_equal(out[:, 96:], src[:, 96:]), "outside the mask nothing changes"


def soft_inpaint(
    webui: WebUI,
    vae: dict | str,
    payload: Payload,
    size: int,
    box: tuple[int, int],
    softness: float,
    block: int = 8,
    **overrides,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Soft inpaint of the square box[0]:box[1] (both axes); checks that pixels beyond the soft ring (3 sigma and
    a latent block of ``block`` pixels) come back exact and the inside changes. Returns (per-pixel change, output,
    infotext)."""
    image = block_image(size, size, seed=5)
    src = np.asarray(image).astype(np.int16)
    a, b = box
    mask = np.zeros((size, size), np.uint8)
    mask[a:b, a:b] = 255
    body = payload(
        image,
        vae,
        {"enabled": True, "mode": "soft inpaint", "softness": softness},
        mask=grey(mask),
        inpainting_fill=1,
        inpaint_full_res=False,
        denoising_strength=1.0,
        **overrides,
    )
    (out,), info = generate(webui, body)
    diff = np.abs(out - src).mean(axis=2)
    reach = int(3 * softness) + block
    far = np.ones((size, size), bool)
    far[a - reach : b + reach, a - reach : b + reach] = False
    assert np.array_equal(out[far], src[far]), "pixels beyond the soft ring come back exact"
    assert diff[a + 4 : b - 4, a + 4 : b - 4].mean() > 1.0, "inside the mask it changes"
    assert "Differential diffusion mode: soft inpaint" in infotext(info)
    return diff, out, infotext(info)


def held_half(webui: WebUI, vae: dict | str, payload: Payload, image: Image.Image, sampler: str) -> tuple[int, str]:
    """A half map (left kept, preserve off, strength 1) on ``sampler``: (HTTP status, the problem or "")."""
    width = image.width
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(half_map(width, image.height)), "preserve": False},
        sampler_name=sampler,
        denoising_strength=1.0,
    )
    status, response = webui.request("POST", "/sdapi/v1/img2img", body)
    if status != 200:
        return status, f"{sampler}: {status} {response}"
    out, source = decode(response["images"][0]), np.asarray(image).astype(np.int16)
    left, right = (slice(None), slice(None, width // 2)), (slice(None), slice(width // 2, None))
    if not np.array_equal(out[left], source[left]):
        return status, f"{sampler}: {int((out[left] != source[left]).any(axis=2).sum())} px differ"
    if np.abs(out[right] - source[right]).mean() < 1.0:
        return status, f"{sampler}: the white half did not change"
    return status, ""
