"""The live robustness tests and the soak stop a run from a second client by polling the WebUI's progress: a stop
must act on a running job only (between jobs the progress keeps the last job's counts, and a stop sent then is
cleared when the next job begins), and a failed probe must say how its pixels differ. Checked here against a
scripted progress feed, with no WebUI."""

from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
from PIL import Image

from benchmarks.soak import difference, host_broken_samplers
from tests.integration.robustness import stop_when


class ScriptedWebUI:
    """Answers /progress from a list of states (the last one repeats) and records every POST."""

    def __init__(self, states: list[dict]) -> None:
        self.states, self.posts = list(states), []

    def request(self, method: str, path: str, payload=None, timeout: float = 900):
        if method == "GET":
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return 200, {"state": state}
        self.posts.append(path)
        return 200, {}


STALE = {"job": "", "sampling_steps": 4, "sampling_step": 3, "job_no": 1}
RUNNING_FIRST = {"job": "scripts_img2img", "sampling_steps": 4, "sampling_step": 0, "job_no": 0}
RUNNING_LAST = {"job": "scripts_img2img", "sampling_steps": 4, "sampling_step": 2, "job_no": 0}


def run(states: list[dict], point: str, done: threading.Event | None = None, seconds: float = 5.0):
    webui, started = ScriptedWebUI(states), threading.Event()
    started.set()
    seen = stop_when(webui, point, "interrupt", started, time.monotonic() + seconds, done)
    return seen, webui.posts


def test_the_last_jobs_counts_between_jobs_do_not_trigger_a_stop():
    # the stale state matches "last" and "batch" by its counts; only the running job may be stopped
    seen, posts = run([STALE] * 5 + [RUNNING_LAST], "last")
    assert posts == ["/sdapi/v1/interrupt"] and seen == {"step": 2, "steps": 4, "job_no": 0}
    seen, posts = run([STALE] * 5 + [RUNNING_FIRST], "first")
    assert posts == ["/sdapi/v1/interrupt"] and seen["step"] == 0


def test_no_stop_is_sent_when_the_generation_ended_first():
    done = threading.Event()
    done.set()
    seen, posts = run([STALE], "batch", done)
    assert seen == {} and posts == []
    seen, posts = run([STALE], "batch", seconds=0.1)  # the deadline passes with only stale progress
    assert seen == {} and posts == []


def png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_difference_counts_the_values_that_differ_and_the_largest():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[1, 1, 0], b[5, 2, 2] = 3, 250
    assert difference({"images": [png(a), png(a)]}, {"images": [png(a), png(b)]}) == {
        "values_differing": [0, 2],
        "largest_difference": 250,
    }
    assert difference({"images": [png(a)]}, {"images": [png(a), png(a)]}) == {"images": 1, "expected": 2}
    assert "shapes" in difference({"images": [png(a[:4])]}, {"images": [png(a)]})


def test_samplers_failing_or_blank_without_the_extension_are_left_out_of_the_soak():
    def png(values: np.ndarray) -> str:
        buf = io.BytesIO()
        Image.fromarray(values.astype(np.uint8)).save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    answers = {
        "Euler": (200, {"images": [png(np.random.default_rng(0).integers(0, 255, (8, 8, 3)))]}),
        "RF": (200, {"images": [png(np.zeros((8, 8, 3)))]}),  # a blank image: NaN latents on SD1.5
        "Broken": (500, {"error": "RuntimeError"}),
    }

    class Host:
        def __init__(self):
            self.bodies = []

        def request(self, method, path, payload=None, timeout=900):
            self.bodies.append(payload)
            return answers[payload["sampler_name"]]

        def vae_settings(self, vae):
            return {"sd_vae": vae}

    host = Host()
    broken = host_broken_samplers(host, "transparent-vae.safetensors", list(answers))
    assert broken == {"RF": "blank image", "Broken": "HTTP 500"}
    assert all("alwayson_scripts" not in body for body in host.bodies), "probed without the extension"
