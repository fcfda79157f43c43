"""A fake WebUI API over real HTTP for the evaluation tool's tests: img2img answers are built to follow the
strength each method expresses (the extension's map, the inpaint mask, the denoising strength), or to ignore it,
so the protocol's scores have known answers. It can fail requests, refuse some, or die after a number of them."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

AMPLITUDE = 0.2
"""How far a pixel moves at strength 1 (inputs stay in [0.1, 0.9], so nothing clips)."""


def _grey(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("L"), np.float64) / 255.0


def expressed_strength(body: dict) -> np.ndarray:
    """The per-pixel strength a request asks for, read the way each method means it."""
    image = Image.open(io.BytesIO(base64.b64decode(body["init_images"][0])))
    scripts = body.get("alwayson_scripts") or {}
    if "differential diffusion" in scripts:
        return _grey(scripts["differential diffusion"]["args"][0]["map"]) * body["denoising_strength"]
    if body.get("mask"):
        return _grey(body["mask"]) * body["denoising_strength"]
    return np.full((image.height, image.width), float(body["denoising_strength"]))


class FakeWebUI:
    """``mode``: "follow" (each pixel moves by its strength x AMPLITUDE, in a sign pattern drawn from the seed) or
    "ignore" (a random strength per pixel, whatever was asked). ``fail_once``: every distinct request fails with
    500 the first time. ``refuse``: a predicate on the body; those get 422. ``die_after``: from that many
    served requests on, every img2img gets 503. ``bias``: an HxW array; the blue channel then moves by it in every
    answer, whatever the strength (a spatial bias like LPIPS's own), and only red and green follow the strength.
    ``auth``: "user:password" the requests must carry (a WebUI started with --api-auth). ``identity``: a predicate
    on the body; those come back as the input itself (a method the WebUI does not apply)."""

    def __init__(
        self,
        mode="follow",
        checkpoint="fake.safetensors",
        scripts=None,
        fail_once=False,
        refuse=None,
        die_after=None,
        bias=None,
        auth=None,
        identity=None,
    ):
        self.mode, self.checkpoint = mode, checkpoint
        self.scripts = scripts if scripts is not None else ["differential diffusion", "soft inpainting", "loopback"]
        self.fail_once, self.refuse, self.die_after = fail_once, refuse, die_after
        self.bias = bias
        self.identity = identity
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None
        self.served, self.attempts, self.seen = 0, 0, set()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if owner.auth and self.headers.get("Authorization") != owner.auth:
                    self.reply(401, {"detail": "Not authenticated"})
                elif self.path == "/sdapi/v1/scripts":
                    self.reply(200, {"txt2img": [], "img2img": owner.scripts})
                elif self.path == "/sdapi/v1/options":
                    self.reply(200, {"sd_model_checkpoint": owner.checkpoint})
                else:
                    self.reply(404, {"detail": "Not Found"})

            def do_POST(self):
                if owner.auth and self.headers.get("Authorization") != owner.auth:
                    self.reply(401, {"detail": "Not authenticated"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = owner.img2img(body)
                self.reply(status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def img2img(self, body: dict) -> tuple[int, dict]:
        key = json.dumps(body, sort_keys=True)
        with self.lock:
            self.attempts += 1
            if self.die_after is not None and self.served >= self.die_after:
                return 503, {"detail": "the fake WebUI is down"}
            if self.refuse and self.refuse(body):
                return 422, {"detail": "refused by the fake"}
            if self.fail_once and key not in self.seen:
                self.seen.add(key)
                return 500, {"error": "a passing failure"}
            self.served += 1
        source = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["init_images"][0]))).convert("RGB"))
        source = source.astype(np.float64) / 255.0
        rng = np.random.default_rng(body["seed"])
        sign = rng.choice([-1.0, 1.0], size=source.shape)
        if self.identity and self.identity(body):
            strength = np.zeros(source.shape[:2])
        elif self.mode == "follow":
            strength = expressed_strength(body)
        else:
            strength = np.random.default_rng(abs(hash(key)) % 2**32).random(source.shape[:2])
        out = source + sign * AMPLITUDE * strength[..., None]
        if self.bias is not None:
            out[..., 2] = source[..., 2] + self.bias
        picture = Image.fromarray(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8), "RGB")
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        return 200, {"images": [base64.b64encode(buf.getvalue()).decode()], "info": "{}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
