"""A small client for a live WebUI's HTTP API (stdlib only), and the test pictures the integration tests use."""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from PIL import Image

URL_VARIABLE = "DIFFDIFF_WEBUI_URL"
SCRIPT = "differential diffusion"


def webui_url() -> str | None:
    url = os.environ.get(URL_VARIABLE, "").strip()
    return url.rstrip("/") or None


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def decode(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")).astype(np.int16)


def block_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """Random colours in 8x8 blocks: round-trips exactly through the transparent VAE."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((height // 8, width // 8, 3)) * 200 + 28).astype(np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8)), "RGB")


class WebUI:
    def __init__(self, url: str):
        self.url = url

    def request(self, method: str, path: str, payload: Any = None, timeout: float = 900) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, body
        return body

    def is_forge(self) -> bool:
        """Forge chooses VAEs among "modules" (GET /sdapi/v1/sd-modules, absent in A1111)."""
        return self.request("GET", "/sdapi/v1/sd-modules")[0] == 200

    def find_vae(self, variable: str, part: str) -> str | None:
        """The VAE named by the environment ``variable``, else the first whose name contains ``part``."""
        listing = "/sdapi/v1/sd-modules" if self.is_forge() else "/sdapi/v1/sd-vae"
        names = [v["model_name"] for v in self.get(listing)]  # the name the VAE setting takes
        wanted = os.environ.get(variable)
        for name in names:
            if (wanted and name == wanted) or (not wanted and part in name.lower()):
                return name
        return None

    def vae_name(self) -> str | None:
        """The transparent VAE: DIFFDIFF_TEST_VAE, else the first name containing "transparent"."""
        return self.find_vae("DIFFDIFF_TEST_VAE", "transparent")

    def gain_vae_name(self) -> str | None:
        """The transparent VAE with gain 16 (tests/tools/make_transparent_vae.py --gain 16), for measurements where
        a random model must not clip the pixels: DIFFDIFF_TEST_GAIN_VAE, else the first name containing "gain16"."""
        return self.find_vae("DIFFDIFF_TEST_GAIN_VAE", "gain16")

    def vae_settings(self, vae: str) -> dict:
        """The override_settings that select ``vae`` for one request."""
        return {"forge_additional_modules": [vae]} if self.is_forge() else {"sd_vae": vae}

    def vae_used(self, response: dict, vae: str) -> bool:
        """Whether a response's infotext shows ``vae`` was used."""
        stem = os.path.splitext(vae)[0]
        return f'"sd_vae_name": "{vae}"' in response["info"] or f"Module 1: {stem}" in response["info"]


def payload(image: Image.Image, vae: str | dict, diffdiff: Any = None, **overrides: Any) -> dict:
    """An img2img request with every setting the checks rely on set explicitly (the WebUI only restores overridden
    settings it already had a value for). ``vae``: the override_settings that select it (WebUI.vae_settings), or
    an A1111 VAE name."""
    body = {
        "init_images": [b64(image)],
        "prompt": "",
        "negative_prompt": "",
        "steps": 6,
        "width": image.width,
        "height": image.height,
        "denoising_strength": 0.75,
        "sampler_name": "Euler",
        "scheduler": "Automatic",
        "seed": 1234,
        "subseed_strength": 0,
        "cfg_scale": 5,
        "batch_size": 1,
        "n_iter": 1,
        "resize_mode": 0,
        "send_images": True,
        "save_images": False,
        "override_settings": {
            **(vae if isinstance(vae, dict) else {"sd_vae": vae}),
            "img2img_fix_steps": False,
            "img2img_extra_noise": 0.0,
            "initial_noise_multiplier": 1.0,
            "img2img_color_correction": False,
            "overlay_inpaint": True,
            "img2img_background_color": "#ffffff",
            "sd_vae_encode_method": "Full",
            "sd_vae_decode_method": "Full",
            "CLIP_stop_at_last_layers": 1,
        },
        "override_settings_restore_afterwards": True,
    }
    body.update(overrides)
    if diffdiff is not None:
        body.setdefault("alwayson_scripts", {})[SCRIPT] = {
            "args": diffdiff if isinstance(diffdiff, list) else [diffdiff]
        }
    return body
