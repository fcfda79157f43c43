"""The protocol of paper 5.2 over a WebUI's API: plan every generation (method x pattern x threshold x image x
seed, plus each method's all-change runs), have them made (cached, resumable, spread over WebUIs), then measure
E_M per method and pattern and score it with CAM and DAM."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..tools.metrics import biased_measurement, cam, dam, fitted_map
from .client import Cache, Failure, WebUIClient, generate_all, request_key
from .distance import Distance
from .methods import ALL_CHANGE, METHODS, Settings, body, variants
from .patterns import PATTERNS, pattern


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
    images: list[tuple[str, Image.Image]]
    seeds: list[int]
    settings: Settings = field(default_factory=Settings)
    patterns: Sequence[str] = PATTERNS
    methods: Sequence[str] = METHODS
    thresholds: Sequence[float] = (0.125, 0.375, 0.625, 0.875)
    extra: dict = field(default_factory=dict)
    """Merged into every request (for example override_settings choosing the checkpoint or the VAE)."""

    def jobs(self) -> dict[Job, dict]:
        """Every generation the evaluation needs, with its request body."""
        size = self.settings.size
        maps = {name: pattern(name, size) for name in self.patterns}
        out: dict[Job, dict] = {}
        for n, (_, image) in enumerate(self.images):
            for seed in self.seeds:
                for method in self.methods:
                    out[Job(method, ALL_CHANGE, None, n, seed)] = body(
                        method, None, image, seed, self.settings, extra=self.extra
                    )
                    for name, m in maps.items():
                        for t in variants(method, self.thresholds):
                            out[Job(method, name, t, n, seed)] = body(
                                method, m, image, seed, self.settings, t, extra=self.extra
                            )
        return out


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
    bodies = plan.jobs()
    keys = {job: request_key(b) for job, b in bodies.items()}
    by_key = {keys[job]: b for job, b in bodies.items()}
    failures = generate_all(by_key, clients, cache, retries=retries, backoff=backoff, on_done=on_done)
    return keys, failures


def score(plan: Plan, keys: dict[Job, str], cache: Cache, distance: Distance) -> dict[str, dict[str, Score]]:
    """Score every method on every pattern from the cached outputs (missing ones left out and counted)."""
    inputs = [image for _, image in plan.images]
    size = plan.settings.size
    results: dict[str, dict[str, Score]] = {}

    def pairs_of(method: str, name: str, t: float | None) -> tuple[list, int]:
        pairs, missing = [], 0
        for n in range(len(inputs)):
            for seed in plan.seeds:
                key = keys[Job(method, name, t, n, seed)]
                if cache.has(key):
                    pairs.append((inputs[n], cache.load(key)))
                else:
                    missing += 1
        return pairs, missing

    for method in plan.methods:
        baseline_pairs, baseline_missing = pairs_of(method, ALL_CHANGE, None)
        if not baseline_pairs:
            continue
        baseline = biased_measurement(baseline_pairs, distance)
        results[method] = {}
        for name in plan.patterns:
            m = pattern(name, size)
            candidates = {}
            for t in variants(method, plan.thresholds):
                pairs, missing = pairs_of(method, name, t)
                if not pairs:
                    continue
                edit = biased_measurement(pairs, distance) - baseline
                candidates[t] = (cam(m, edit), dam(m, edit), len(pairs), missing + baseline_missing, edit)
            if not candidates:
                continue
            best_cam = max(candidates, key=lambda t: -math.inf if math.isnan(candidates[t][0]) else candidates[t][0])
            best_dam = min(candidates, key=lambda t: candidates[t][1])
            c, _, n_pairs, missing, edit = candidates[best_cam]
            results[method][name] = Score(
                cam=c,
                dam=candidates[best_dam][1],
                pairs=n_pairs,
                missing=missing,
                threshold=best_cam,
                dam_threshold=best_dam,
                by_threshold={t: {"cam": v[0], "dam": v[1]} for t, v in candidates.items()}
                if len(candidates) > 1
                else {},
                measured=fitted_map(m, edit),
            )
    return results
