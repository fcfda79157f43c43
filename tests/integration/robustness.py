"""Building blocks of the robustness checks on a live WebUI, shared by benchmarks/soak.py and test_robustness.py:
requests of every kind with their own check, hostile requests with the 4xx they must get, interrupting or skipping
a running generation from a second client at a chosen point, and the WebUI process's resident memory."""

from __future__ import annotations

import base64
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .checks import grey, infotext
from .webui import WebUI, b64, block_image, decode, payload

SIZES = (64, 96, 128)
SLOW_SAMPLERS = {"DPM adaptive"}
"""Left out of random choice: it ignores the step count and makes hundreds of model calls on a random model."""
TIMESTEP_SAMPLERS = {"DDIM", "DDIM CFG++", "PLMS", "UniPC"}
"""The WebUI's timestep samplers call the model only from steps x strength >= 2 (fewer is refused, see
adapter.check_model_calls), and UniPC needs more steps than its order (3): they get 5-6 steps."""


@dataclass
class Request:
    """One request to send and what its answer must satisfy."""

    kind: str
    body: dict
    check: Callable[[int, dict], str]
    """(HTTP status, JSON answer) -> "" when right, else what is wrong."""
    notes: dict = field(default_factory=dict)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(4 * width), 9))


def region_map(width: int, height: int, keep: str) -> np.ndarray:
    """Black (keep) on one half, white (change) on the other; the edge falls on the 8-pixel latent grid."""
    m = np.full((height, width), 255, np.uint8)
    if keep == "left":
        m[:, : width // 2] = 0
    elif keep == "right":
        m[:, width // 2 :] = 0
    elif keep == "top":
        m[: height // 2] = 0
    else:
        m[height // 2 :] = 0
    return m


def images_of(answer: dict, width: int, height: int) -> list[np.ndarray]:
    """The generated images of an answer (a grid, if the host added one, has another size and is left out)."""
    out = [decode(text) for text in answer.get("images") or []]
    return [image for image in out if image.shape[:2] == (height, width)]


def held_and_changed(images: list[np.ndarray], source: np.ndarray, keep: np.ndarray, expected: int) -> str:
    """Every image: the kept pixels exact, the others visibly changed."""
    if len(images) != expected:
        return f"{len(images)} images, expected {expected}"
    for n, out in enumerate(images):
        if not np.array_equal(out[keep], source[keep]):
            return f"image {n}: {int((out[keep] != source[keep]).any(axis=-1).sum())} kept pixels differ"
        changed = (np.abs(out[~keep] - source[~keep]) > 2).any(axis=-1).mean()
        if changed < 0.05:
            return f"image {n}: the white part of the map did not change ({changed:.1%} of its pixels did)"
    return ""


class Maker:
    """Random requests of every kind, reproducible from a seed."""

    def __init__(self, webui: WebUI, vae: str, samplers: list[str], schedulers: list[str], seed: int = 0):
        self.webui, self.vae, self.rng = webui, webui.vae_settings(vae), random.Random(seed)
        self.samplers = [s for s in samplers if s not in SLOW_SAMPLERS]
        self.schedulers = schedulers

    def _common(self, width: int, height: int, image: Image.Image, diffdiff, **overrides) -> dict:
        rng = self.rng
        batch, count = rng.choice([1, 1, 1, 2, 2, 3, 4]), rng.choice([1, 1, 1, 2, 2, 3, 4])
        if batch * count > 4:  # a request's images: at most 4 (the soak's pace on a CPU host)
            count = 1
        sampler = rng.choice(self.samplers)
        body = payload(
            image,
            self.vae,
            diffdiff,
            width=width,
            height=height,
            steps=rng.randint(5, 6) if sampler in TIMESTEP_SAMPLERS else rng.randint(2, 4),
            sampler_name=sampler,
            scheduler=rng.choice(self.schedulers) if rng.random() < 0.3 else "Automatic",
            seed=rng.randint(0, 2**31 - 1),
            batch_size=batch,
            n_iter=count,
            denoising_strength=rng.choice([0.6, 0.8, 1.0]),
        )
        body.update(overrides)
        return body

    def size(self) -> tuple[int, int]:
        """Each side 64-128 px, the small sizes twice as often (the soak's pace on a CPU host)."""
        sides = SIZES[:1] + SIZES
        return self.rng.choice(sides), self.rng.choice(sides)

    def map_request(self, keep: str | None = None, size: tuple[int, int] | None = None, **overrides) -> Request:
        """A change map that keeps one half: the kept half comes back exact, the other changes."""
        rng = self.rng
        width, height = size or self.size()
        keep = keep or rng.choice(["left", "right", "top", "bottom"])
        m = region_map(width, height, keep)
        image = block_image(width, height, seed=rng.randint(0, 999))
        args = {"enabled": True, "map": grey(m), "preserve": rng.random() < 0.5, "continuous": rng.random() < 0.3}
        if rng.random() < 0.3:  # shaping that keeps black black and white white
            args.update(gamma=rng.choice([0.5, 2.0]), quantize=rng.choice([0, 4]))
        body = self._common(width, height, image, args, **overrides)
        source, kept = np.asarray(image).astype(np.int16), m == 0
        images = body["batch_size"] * body["n_iter"]

        def check(status: int, answer: dict) -> str:
            if status != 200:
                return f"HTTP {status}: {answer}"
            if "Differential diffusion: True" not in infotext(answer):
                return "no Differential Diffusion infotext"
            return held_and_changed(images_of(answer, width, height), source, kept, images)

        return Request("map", body, check, {"keep": keep, "sampler": body["sampler_name"]})

    def fan_request(self) -> Request:
        """A strength fan "0, 1": the left column is kept exact, the right one changes."""
        width, height = self.size()
        image = block_image(width, height, seed=self.rng.randint(0, 999))
        args = {"enabled": True, "mode": "fan", "fan_strengths": [0, 1], "fan_labels": False}
        body = self._common(width, height, image, args)
        source = np.asarray(image).astype(np.int16)
        kept = np.zeros((height, width), bool)
        kept[:, : width // 2] = True
        images = body["batch_size"] * body["n_iter"]

        def check(status: int, answer: dict) -> str:
            if status != 200:
                return f"HTTP {status}: {answer}"
            return held_and_changed(images_of(answer, width, height), source, kept, images)

        return Request("fan", body, check, {"sampler": body["sampler_name"]})

    def soft_inpaint_request(self) -> Request:
        """Soft inpaint of a centred square: far outside the soft ring exact, inside changed."""
        size = 128
        image = block_image(size, size, seed=self.rng.randint(0, 999))
        mask = np.zeros((size, size), np.uint8)
        mask[48:80, 48:80] = 255
        softness = self.rng.choice([2.0, 4.0])
        body = self._common(
            size,
            size,
            image,
            {"enabled": True, "mode": "soft inpaint", "softness": softness},
            mask=grey(mask),
            inpainting_fill=1,
            inpaint_full_res=False,
        )
        source = np.asarray(image).astype(np.int16)
        reach = int(3 * softness) + 8
        far = np.ones((size, size), bool)
        far[48 - reach : 80 + reach, 48 - reach : 80 + reach] = False
        images = body["batch_size"] * body["n_iter"]

        def check(status: int, answer: dict) -> str:
            if status != 200:
                return f"HTTP {status}: {answer}"
            outs = images_of(answer, size, size)
            inside = np.zeros((size, size), bool)
            inside[52:76, 52:76] = True
            problem = held_and_changed(outs, source, far, images)
            if problem:
                return problem
            if any(np.abs(o[inside] - source[inside]).mean() < 1.0 for o in outs):
                return "the inside of the mask did not change"
            return ""

        return Request("soft inpaint", body, check, {"sampler": body["sampler_name"]})

    def off_request(self) -> Request:
        """The extension off (its args sent disabled, or not sent): plain img2img, no trace of the extension."""
        width, height = self.size()
        image = block_image(width, height, seed=self.rng.randint(0, 999))
        args = {"enabled": False, "map": "not even base64"} if self.rng.random() < 0.5 else None
        body = self._common(width, height, image, args)
        source = np.asarray(image).astype(np.int16)
        images = body["batch_size"] * body["n_iter"]

        def check(status: int, answer: dict) -> str:
            if status != 200:
                return f"HTTP {status}: {answer}"
            if "Differential diffusion" in infotext(answer):
                return "a disabled extension wrote its infotext"
            outs = images_of(answer, width, height)
            if len(outs) != images:
                return f"{len(outs)} images, expected {images}"
            half = np.zeros((height, width), bool)
            half[:, : width // 2] = True
            if any(np.abs(o[half] - source[half]).mean() < 1.0 for o in outs):
                return "plain img2img left a half unchanged"
            return ""

        return Request("off", body, check, {"sampler": body["sampler_name"]})

    def bad_request(self) -> Request:
        """A request the extension must refuse with a 4xx and a message, whatever else is in it."""
        width, height = self.size()
        image = block_image(width, height, seed=1)
        good = grey(region_map(width, height, "left"))
        bad_args, why = self.rng.choice(hostile_args(width, height, good))
        body = self._common(width, height, image, bad_args)
        body["n_iter"] = body["batch_size"] = 1

        def check(status: int, answer) -> str:
            if not 400 <= status < 500:
                return f"{why}: HTTP {status}, expected 4xx"
            detail = answer.get("detail") if isinstance(answer, dict) else str(answer)
            if "Differential Diffusion" not in str(detail):
                return f"{why}: the message does not name the extension: {str(detail)[:200]}"
            return ""

        return Request("bad", body, check, {"why": why})


def hostile_args(width: int, height: int, good_map: str) -> list[tuple[dict, str]]:
    """Script args the extension must refuse, each with what it is."""
    bomb = base64.b64encode(png_claiming(50_000, 50_000)).decode()
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>').decode()
    wrong_aspect = grey(np.zeros((height, width * 2), np.uint8) + 255)
    truncated = b64(block_image(width, height))[:200]
    on = {"enabled": True}
    return [
        ({**on, "map": bomb}, "decompression bomb"),
        ({**on, "map": svg}, "SVG map"),
        ({**on, "map": "http://127.0.0.1:9/map.png"}, "URL map"),
        ({**on, "map": "/etc/passwd"}, "server path map"),
        ({**on, "map": truncated}, "truncated PNG"),
        ({**on, "map": "%%% not base64 %%%"}, "not base64"),
        ({**on, "map": wrong_aspect}, "map of another aspect ratio"),
        ({**on, "map": grey(np.zeros((height, width), np.uint8))}, "black map"),
        ({**on}, "no map"),
        ({**on, "map": good_map, "multiplier": 10**400}, "huge number"),
        ({**on, "map": good_map, "gamma": "NaN"}, "NaN gamma"),
        ({**on, "map": good_map, "mode": "everything"}, "unknown mode"),
        ({**on, "map": good_map, "colour": "red"}, "unknown field"),
        ({**on, "mode": "fan", "fan_strengths": [0.5, 2]}, "fan strength above 1"),
        ({**on, "mode": "soft inpaint"}, "soft inpaint without a mask"),
        ({**on, "map": {"path": "/etc/passwd"}}, "gradio file reference"),
        ({**on, "map": good_map, "white_point": 0.1, "black_point": 0.5}, "white point below black point"),
    ]


# -- a second client -----------------------------------------------------------------------------------------------


def progress(webui: WebUI) -> dict:
    status, answer = webui.request("GET", "/sdapi/v1/progress?skip_current_image=true", timeout=30)
    return answer.get("state", {}) if status == 200 and isinstance(answer, dict) else {}


def stop_when(
    webui: WebUI,
    point: str,
    action: str,
    started: threading.Event,
    deadline: float,
    done: threading.Event | None = None,
) -> dict:
    """From a second client: wait until the running generation reaches ``point`` ("first" model call, "last" one,
    "middle", or "batch": the second image of the count), then POST ``action`` ("interrupt" or "skip"). The host's
    progress counts steps done (``sampling_step`` is set after each step), out of ``sampling_steps``. Between jobs the
    progress still shows the last job's counts, with ``job`` empty: only a running job counts, or a stop sent before
    the job begins would be cleared by its start and stop nothing. Returns what the progress showed when it acted,
    or {} without acting when the generation ended (``done``) or the deadline passed first."""
    started.wait(timeout=30)
    seen: dict = {}
    while time.monotonic() < deadline and not (done is not None and done.is_set()):
        state = progress(webui)
        steps, step, job_no = state.get("sampling_steps", 0), state.get("sampling_step", 0), state.get("job_no", 0)
        if (
            state.get("job")
            and steps
            and (
                (point == "first" and step == 0)
                or (point == "last" and step >= steps - 2)  # step n-2 is done: the last model call is running
                or (point == "middle" and step >= steps // 2)
                or (point == "batch" and job_no >= 1)
            )
        ):
            seen = {"step": step, "steps": steps, "job_no": job_no}
            webui.request("POST", f"/sdapi/v1/{action}", timeout=30)
            break
        time.sleep(0.01)
    return seen


def send_stopped(webui: WebUI, request: Request, point: str, action: str) -> tuple[int, dict, dict]:
    """Send ``request`` and stop it at ``point`` from a second client; (status, answer, where it was stopped)."""
    started, done, seen = threading.Event(), threading.Event(), {}

    def second_client() -> None:
        seen.update(stop_when(webui, point, action, started, time.monotonic() + 120, done))

    thread = threading.Thread(target=second_client, daemon=True)
    thread.start()
    started.set()
    status, answer = webui.request("POST", "/sdapi/v1/img2img", request.body)
    done.set()
    thread.join(timeout=150)
    return status, answer, seen


def send_together(webui: WebUI, requests: list[Request]) -> list[tuple[int, dict]]:
    """Send requests at once from as many clients (the WebUI queues them); their answers in order."""
    answers: list = [None] * len(requests)

    def send(n: int) -> None:
        answers[n] = webui.request("POST", "/sdapi/v1/img2img", requests[n].body)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


# -- the WebUI process ---------------------------------------------------------------------------------------------


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on a loopback TCP port (Linux /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(parts[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def resident_mb(pid: int) -> float:
    """The resident memory of a process, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def allocator(pid: int) -> str:
    """The malloc a process runs on: the WebUI's webui.sh preloads tcmalloc when the system has it."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    for name in ("tcmalloc", "jemalloc", "mimalloc"):
        if name in maps:
            return name
    return "glibc malloc"


def plain_probe(webui: WebUI, vae: str) -> dict:
    """The fixed plain request sent before and after a soak: its images must come back bit-identical."""
    return payload(block_image(64, 64, seed=11), webui.vae_settings(vae), None, steps=4, seed=77)


def map_probe(webui: WebUI, vae: str) -> dict:
    """The fixed request sent after every interrupted or skipped one: it must equal a fresh run bit for bit."""
    m = region_map(64, 64, "left")
    return payload(
        block_image(64, 64, seed=12),
        webui.vae_settings(vae),
        {"enabled": True, "map": grey(m), "preserve": False},
        steps=4,
        seed=78,
        batch_size=2,
    )
