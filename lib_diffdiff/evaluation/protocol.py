"""The protocol of paper 5.2 over a WebUI's API: plan every generation (method x pattern x threshold x image x
seed, plus each method's all-change runs), have them made (cached, resumable, spread over WebUIs), then measure
E_M per method and pattern and score it with CAM and DAM.

A real run is thousands of generations of large pictures, so nothing is held for all of them at once: request
bodies are built when sent (a request's cache key hashes the input's pixels, not its PNG), inputs may be loaded
on demand, and the measurement streams over the outputs one input at a time, keeping one running sum per map."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..tools.metrics import cam, dam, fitted_map, to_rgb_array
from .client import Cache, Failure, WebUIClient, generate_all
from .distance import Distance
from .methods import ALL_CHANGE, DEFAULT_THRESHOLDS, METHODS, EncodedMap, Settings, body, variants
from .patterns import PATTERNS, pattern

InputImage = Image.Image | Callable[[], Image.Image]
"""A picture, or a function loading it (inputs from a folder are read when needed)."""


@dataclass(frozen=True)
class Job:
    """One generation: ``pattern`` is ALL_CHANGE for a method's bias-removal runs."""

    method: str
    pattern: str
    threshold: float | None
    image: int
    seed: int


@dataclass
class Plan:
    images: list[tuple[str, InputImage]]
    seeds: list[int]
    settings: Settings = field(default_factory=Settings)
    patterns: Sequence[str] = PATTERNS
    methods: Sequence[str] = METHODS
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    extra: dict = field(default_factory=dict)
    """Merged into every request (for example override_settings choosing the checkpoint or the VAE)."""

    def __post_init__(self) -> None:
        size = self.settings.size
        self.maps = {name: pattern(name, size) for name in self.patterns}
        self._encoded = {name: EncodedMap(m) for name, m in self.maps.items()}
        self._encoded[ALL_CHANGE] = EncodedMap(np.ones((size, size)))
        self._digests: dict[int, str] = {}

    def image(self, n: int) -> Image.Image:
        item = self.images[n][1]
        return item if isinstance(item, Image.Image) else item()

    def jobs(self, image: int | None = None) -> list[Job]:
        """Every generation the evaluation needs (of one input, if given), in a fixed order."""
        out = []
        for n in range(len(self.images)) if image is None else [image]:
            for seed in self.seeds:
                for method in self.methods:
                    out.append(Job(method, ALL_CHANGE, None, n, seed))
                    for name in self.patterns:
                        out.extend(Job(method, name, t, n, seed) for t in variants(method, self.thresholds))
        return out

    def body(self, job: Job, image: Image.Image | None = None) -> dict:
        """The request of a job (``image``: the input, when the caller has it loaded)."""
        picture = image if image is not None else self.image(job.image)
        return self._body(job, picture)

    def _body(self, job: Job, image: Image.Image | str) -> dict:
        encoded = None if job.pattern == ALL_CHANGE else self._encoded[job.pattern]
        return body(job.method, encoded, image, job.seed, self.settings, job.threshold, self.extra)

    def key(self, job: Job) -> str:
        """The cache key: the request with the input's pixels hashed in place of its PNG. The same request gives
        the same image on any WebUI running the same model and settings."""
        if job.image not in self._digests:
            picture = self.image(job.image).convert("RGB")
            self._digests[job.image] = hashlib.sha256(repr(picture.size).encode() + picture.tobytes()).hexdigest()
        described = self._body(job, self._digests[job.image])
        return hashlib.sha256(json.dumps(described, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Score:
    """A method on a pattern: CAM and DAM of its measured map, at its best threshold for inpaint."""

    cam: float
    dam: float
    pairs: int
    missing: int
    threshold: float | None = None
    dam_threshold: float | None = None
    by_threshold: dict = field(default_factory=dict)
    measured: np.ndarray | None = None
    """The measured map at the best-CAM threshold, fitted to the map's units (Fig. 11)."""

    @property
    def dam_per_pixel(self) -> float:
        """DAM / sqrt(pixels): the root-mean-square residual, comparable across sizes."""
        return self.dam / math.sqrt(self.measured.size) if self.measured is not None else math.nan


def run_generations(
    plan: Plan,
    clients: Sequence[WebUIClient],
    cache: Cache,
    retries: int = 3,
    backoff: float = 2.0,
    on_done: Callable[[str, bool], None] | None = None,
) -> tuple[dict[Job, str], list[Failure]]:
    """Make every generation the plan needs that the cache lacks. Returns each job's cache key and the failures."""
    keys = {job: plan.key(job) for job in plan.jobs()}
    factories = {key: (lambda job=job: plan.body(job)) for job, key in keys.items()}
    failures = generate_all(factories, clients, cache, retries=retries, backoff=backoff, on_done=on_done)
    return keys, failures


def score(
    plan: Plan, keys: dict[Job, str], cache: Cache, distance: Distance, notes: list[str] | None = None
) -> dict[str, dict[str, Score]]:
    """Score every method on every pattern from the cached outputs (missing ones left out and counted).

    A method whose all-change runs all came back as the input itself, pixel for pixel, was not applied by the
    WebUI (Forge's Soft Inpainting does this: lllyasviel/stable-diffusion-webui-forge#3024); it gets no score,
    and a line in ``notes`` says why, rather than numbers measured on nothing."""
    sums: dict[tuple, np.ndarray] = {}
    counts: dict[tuple, int] = {}
    missing: dict[tuple, int] = {}
    unchanged: dict[tuple, int] = {}
    for n in range(len(plan.images)):
        source = to_rgb_array(plan.image(n))
        for job in plan.jobs(n):
            group = (job.method, job.pattern, job.threshold)
            key = keys[job]
            if not cache.has(key):
                missing[group] = missing.get(group, 0) + 1
                continue
            output = to_rgb_array(cache.load(key))
            if np.array_equal(output, source):
                unchanged[group] = unchanged.get(group, 0) + 1
            d = np.asarray(distance(source, output), dtype=np.float64)
            sums[group] = sums[group] + d if group in sums else d
            counts[group] = counts.get(group, 0) + 1

    def mean(group: tuple) -> np.ndarray | None:
        return sums[group] / counts[group] if group in sums else None

    results: dict[str, dict[str, Score]] = {}
    for method in plan.methods:
        baseline = mean((method, ALL_CHANGE, None))
        if baseline is None:
            continue
        if unchanged.get((method, ALL_CHANGE, None), 0) == counts[(method, ALL_CHANGE, None)]:
            if notes is not None:
                notes.append(
                    f"{method}: the WebUI returned every input unchanged, even with the all-change map, so it did "
                    "not apply the method; no score (Forge's Soft Inpainting does this: "
                    "lllyasviel/stable-diffusion-webui-forge#3024)"
                )
            continue
        results[method] = {}
        for name in plan.patterns:
            m = plan.maps[name]
            candidates = {}
            for t in variants(method, plan.thresholds):
                measured = mean((method, name, t))
                if measured is None:
                    continue
                edit = measured - baseline
                lost = missing.get((method, name, t), 0) + missing.get((method, ALL_CHANGE, None), 0)
                candidates[t] = (cam(m, edit), dam(m, edit), counts[(method, name, t)], lost, edit)
            if not candidates:
                continue
            best_cam = max(candidates, key=lambda t: -math.inf if math.isnan(candidates[t][0]) else candidates[t][0])
            best_dam = min(candidates, key=lambda t: candidates[t][1])
            c, _, pairs, lost, edit = candidates[best_cam]
            results[method][name] = Score(
                cam=c,
                dam=candidates[best_dam][1],
                pairs=pairs,
                missing=lost,
                threshold=best_cam,
                dam_threshold=best_dam,
                by_threshold={t: {"cam": v[0], "dam": v[1]} for t, v in candidates.items()}
                if len(candidates) > 1
                else {},
                measured=fitted_map(m, edit),
            )
    return results
