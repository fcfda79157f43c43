"""The WebUI's HTTP API for an evaluation: one client per WebUI, a cache on disk that makes a run resumable, and a
pool that spreads the generations over every WebUI given (one request at a time each: a WebUI queues the rest)."""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image


class RequestFailed(Exception):
    """A request that did not give an image; ``permanent`` when retrying cannot help (a 4xx answer)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class WebUIClient:
    """One WebUI's API (stdlib HTTP, no session state)."""

    def __init__(self, url: str, timeout: float = 1800.0, auth: str | None = None):
        """``auth``: "user:password" for a WebUI started with --api-auth (HTTP basic authentication)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data, self.headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                detail = json.loads(text)
                text = str(detail.get("detail") or detail.get("error") or detail) if isinstance(detail, dict) else text
            except ValueError:
                pass
            raise RequestFailed(f"{self.url}{path}: HTTP {e.code}: {text[:500]}", permanent=400 <= e.code < 500) from e
        except (OSError, ValueError) as e:  # refused, reset, timed out, a broken answer
            raise RequestFailed(f"{self.url}{path}: {e}") from e

    def img2img(self, body: dict) -> Image.Image:
        answer = self.call("POST", "/sdapi/v1/img2img", body)
        images = answer.get("images") if isinstance(answer, dict) else None
        if not images:
            raise RequestFailed(f"{self.url}: the answer has no image")
        try:
            return Image.open(io.BytesIO(base64.b64decode(images[0]))).convert("RGB")
        except (OSError, ValueError) as e:
            raise RequestFailed(f"{self.url}: the answer's image cannot be read: {e}") from e

    def scripts(self) -> set[str]:
        """The img2img scripts the WebUI has, lower case."""
        listing = self.call("GET", "/sdapi/v1/scripts")
        return {str(name).lower() for name in (listing.get("img2img") or [])}

    def checkpoint(self) -> str:
        return str(self.call("GET", "/sdapi/v1/options").get("sd_model_checkpoint") or "")


class Cache:
    """One PNG per finished request, named by its key, written atomically: a run stopped at any point resumes."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.png"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> Image.Image:
        with Image.open(self.path(key)) as im:
            return im.convert("RGB")

    def store(self, key: str, image: Image.Image) -> None:
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        image.save(tmp, format="PNG")
        os.replace(tmp, self.path(key))


@dataclass
class Failure:
    key: str
    url: str
    error: str
    attempts: int


def generate_all(
    bodies: dict[str, Callable[[], dict]],
    clients: Sequence[WebUIClient],
    cache: Cache,
    retries: int = 3,
    backoff: float = 2.0,
    on_done: Callable[[str, bool], None] | None = None,
) -> list[Failure]:
    """Generate every request not yet in the cache, spread over the clients; return those that failed.
    ``bodies``: cache key -> a function building the request (built when sent, not all held at once).

    A failure that may pass (connection, 5xx, timeout) is retried up to ``retries`` times, waiting ``backoff``
    seconds doubling; a 4xx is not. A WebUI that fails a request hands it to the others before it is given up,
    so one dead machine does not lose its share. ``on_done(key, ok)`` is called after each request.
    """
    pending: queue.Queue = queue.Queue()
    todo = [key for key in bodies if not cache.has(key)]
    for key in todo:
        pending.put((key, 0, frozenset()))
    failures: list[Failure] = []
    lock = threading.Lock()
    remaining = [len(todo)]

    def finish(key: str, ok: bool) -> None:
        with lock:
            remaining[0] -= 1
        if on_done:
            on_done(key, ok)

    def worker(client: WebUIClient) -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
            try:
                key, attempts, tried = pending.get(timeout=0.2)
            except queue.Empty:
                continue
            if client.url in tried and len(tried) < len(clients):
                pending.put((key, attempts, tried))  # another WebUI has not tried it yet
                time.sleep(0.05)
                continue
            try:
                image = client.img2img(bodies[key]())
            except RequestFailed as e:
                attempts += 1
                if e.permanent or attempts > retries:
                    with lock:
                        failures.append(Failure(key, client.url, str(e), attempts))
                    finish(key, False)
                else:
                    time.sleep(backoff * 2 ** (attempts - 1))
                    pending.put((key, attempts, tried | {client.url}))
                continue
            cache.store(key, image)
            finish(key, True)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures
