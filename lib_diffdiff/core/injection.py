"""The per-call injection of Algorithm 1, wrapped around every model call of any sampler.

Before the model: held pixels of the input become the original latent noised to the call's level (the run's own
seeded noise, the same tensor at every call). After the model: held pixels of the prediction become the prediction
that keeps them on that trajectory. Held-ness is derived from the level of each call, not from a step counter, so
samplers that call the model between steps (Heun, DPM2, DPM++ SDE) are handled, and it is taken from the lowest level
seen so far, so a pixel once free stays free even when the level rises again (Restart) or a step is retried
(DPM adaptive). :meth:`finish` then puts never-freed pixels exactly on the original latent.

Two sampler habits are absorbed here rather than in each host: calls above the run's start level (samplers that add
noise before a step, "churn": Euler with s_churn, reForge's Euler Dy/SMEA) count as the start level, so pixels of
the largest strength are free from the first call as in img2img; and calls on a latent of another size (reForge's
Dy/SMEA steps run the model on a nearest-exact resized latent) get the original, the noise and the held mask resized
the same way.

Latents are [B, C, h, w] or, for video-VAE families (Qwen-Image, Anima), [B, C, T, h, w]: the map acts on the last
two dimensions. Those hosts hand img2img one original for the whole batch (batch 1 against the noise's B), which is
broadcast to the batch.

On a continuous schedule (:func:`..schedule.plan_schedule` with ``continuous=True``) a pixel is, for the calls of one
step, *partly free*: its input is the sampler's own, and its prediction is the held one moved the fraction w of the
way to the model's (the derivation is in :mod:`.schedule`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .noise_spaces import NoiseSpace
from .schedule import PixelSchedule

LEVEL_RTOL = 1e-4
"""Relative tolerance when a call's level is compared with a free level: some samplers recompute sigma (DPM fast and
adaptive use exp(-log(sigma))), and neighbouring levels of any schedule differ by far more."""


def held_at(free_level, lowest_level: float):
    """The rule itself: a pixel is held while the lowest level seen so far is above its free level (numpy or torch)."""
    threshold = lowest_level / (1.0 + LEVEL_RTOL) if lowest_level > 0 else lowest_level
    return free_level < threshold


def level_of(level: float | torch.Tensor) -> float:
    """The call's level as a float; a per-sample tensor (k-diffusion's ``sigma * s_in``) has one value repeated."""
    if isinstance(level, torch.Tensor):
        return float(level.reshape(-1)[0])
    return float(level)


class DifferentialInjector:
    """Holds the state of one generation's injection; make a new one per generation (no state is shared)."""

    def __init__(self, x0: torch.Tensor, noise: torch.Tensor, schedule: PixelSchedule, space: NoiseSpace):
        if x0.ndim not in (4, 5) or noise.ndim != x0.ndim:
            raise ValueError(
                f"x0 and noise must both be [B, C, h, w] or [B, C, T, h, w], got {tuple(x0.shape)} and "
                f"{tuple(noise.shape)}"
            )
        if x0.shape[0] == 1 and noise.shape[0] > 1 and x0.shape[1:] == noise.shape[1:]:
            x0 = x0.expand_as(noise)  # one original for the batch (Neo's Qwen-Image and Anima img2img)
        if x0.shape != noise.shape:
            raise ValueError(f"x0 and noise differ: {tuple(x0.shape)} and {tuple(noise.shape)}")
        n, _, h, w = schedule.free_level.shape
        if (h, w) != tuple(x0.shape[-2:]) or n not in (1, x0.shape[0]):
            raise ValueError(
                f"the schedule is for {n} map(s) of {w}x{h} latent pixels, the latent is {tuple(x0.shape)}"
            )
        self.x0 = x0
        self.noise = noise
        self.schedule = schedule
        self.space = space
        self._free_level = schedule.free_level
        self._partial_level = schedule.partial_level
        # a pixel is fully held while above the first of its levels (the partial one, on continuous schedules)
        partial = schedule.partial_level
        self._first_level = schedule.free_level if partial is None else schedule.free_level.maximum(partial)
        freed = self._first_level[torch.isfinite(self._first_level)]
        self.start_level = float(freed.max()) if freed.numel() else math.inf
        """The level of the run's first step; calls above it (churn) count as it."""
        self.lowest_level = math.inf
        self._resized: dict[tuple[int, int], tuple] = {}
        self._held: torch.Tensor | None = None
        self._partial: torch.Tensor | None = None
        self._weight: torch.Tensor | None = None
        self._held_at = math.nan
        self._any_held = True

    def _observe(self, level: float) -> None:
        level = min(level, self.start_level)
        if level < self.lowest_level:
            self.lowest_level = level

    def held_mask(self) -> torch.Tensor:
        """Bool [N, 1, h, w]: pixels fully held at the lowest level seen so far (a partly free pixel is not)."""
        self._update()
        return self._held

    def partial_mask(self) -> torch.Tensor | None:
        """Bool [N, 1, h, w]: pixels partly free at the lowest level seen so far (continuous schedules), or None
        when there are none."""
        self._update()
        return self._partial

    def _update(self) -> None:
        if self._held is not None and self._held_at == self.lowest_level:
            return
        self._held = held_at(self._first_level, self.lowest_level)
        self._held_at = self.lowest_level
        self._any_held = bool(self._held.any())
        self._partial = self._weight = None
        if self._partial_level is not None:
            partial = held_at(self._free_level, self.lowest_level) & ~self._held
            if bool(partial.any()):
                self._partial = partial
                self._weight = torch.where(partial, self.schedule.partial_weight, 0.0)

    def _operands(self, like: torch.Tensor) -> tuple:
        """(original, noise, held mask, partial mask or None, partial weight or None) on ``like``'s grid, device
        and dtype."""
        if like.shape[:2] != self.x0.shape[:2] or like.ndim != self.x0.ndim:
            raise ValueError(f"the sampler's latent is {tuple(like.shape)}, the original is {tuple(self.x0.shape)}")
        if self.x0.device != like.device or self.x0.dtype != like.dtype:
            self.x0, self.noise = self.x0.to(like), self.noise.to(like)
            self._resized.clear()
        self._update()
        held, partial, weight = self._held, self._partial, self._weight
        if held.device != like.device:
            held = self._held = held.to(like.device)
        if partial is not None and (partial.device != like.device or weight.dtype != like.dtype):
            partial, weight = self._partial, self._weight = partial.to(like.device), weight.to(like)
        size = tuple(like.shape[2:])
        if size == tuple(self.x0.shape[2:]):
            if like.ndim == 5:  # masks are [N, 1, h, w]: one more axis for the frames
                held = held.unsqueeze(2)
                partial, weight = (None, None) if partial is None else (partial.unsqueeze(2), weight.unsqueeze(2))
            return self.x0, self.noise, held, partial, weight
        if like.ndim != 4:
            raise ValueError(f"the sampler's latent is {tuple(like.shape)}, the original is {tuple(self.x0.shape)}")
        return self._resized_operands(size, held, partial, weight)

    def _resized_operands(self, size: tuple, held: torch.Tensor, partial, weight) -> tuple:
        """Original, noise and masks for a model call on a resized latent, resized with nearest-exact (the pixels
        the sampler's own resize picks), cached per size and held mask."""
        cached = self._resized.get(size)
        if cached is None or cached[-1] != self._held_at:

            def resize(t: torch.Tensor) -> torch.Tensor:
                return F.interpolate(t, size=size, mode="nearest-exact")

            held_small = resize(held.to(self.x0.dtype)) > 0.5
            partial_small = weight_small = None
            if partial is not None:
                partial_small = resize(partial.to(self.x0.dtype)) > 0.5
                weight_small = resize(weight)
            cached = self._resized[size] = (
                resize(self.x0),
                resize(self.noise),
                held_small,
                partial_small,
                weight_small,
                self._held_at,
            )
        return cached[:5]

    def before_model(self, x: torch.Tensor, level: float | torch.Tensor) -> torch.Tensor:
        """The model input: ``x`` with held pixels replaced by the original noised to ``level``."""
        lv = level_of(level)
        self._observe(lv)
        x0, noise, held, _, _ = self._operands(x)
        if not self._any_held:
            return x
        return torch.where(held, self.space.noised(x0, noise, lv), x)

    def after_model(self, prediction: torch.Tensor, x: torch.Tensor, level: float | torch.Tensor) -> torch.Tensor:
        """The model output: ``prediction`` with held pixels replaced by the one that keeps them on course.

        ``x`` is the sampler's own latent of this call (what it handed the model, before :meth:`before_model`):
        the sampler applies the prediction to that latent, so an eps prediction must be derived from it.
        A partly free pixel (continuous schedules) gets ``held + w * (prediction - held)``."""
        lv = level_of(level)
        self._observe(lv)
        x0, _, held, partial, weight = self._operands(prediction)
        if partial is not None:
            held_prediction = self.space.held_prediction(x0, x, lv)
            blended = held_prediction + weight * (prediction - held_prediction)
            prediction = torch.where(partial, blended, prediction)
            return torch.where(held, held_prediction, prediction) if self._any_held else prediction
        if not self._any_held:
            return prediction
        return torch.where(held, self.space.held_prediction(x0, x, lv), prediction)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The final latent: pixels still held (never freed) set exactly to the original latent. Needed because a
        sampler's last update is float arithmetic, and some samplers stop short of level 0."""
        if x.shape != self.x0.shape:
            raise ValueError(f"the sampler returned {tuple(x.shape)}, the original is {tuple(self.x0.shape)}")
        x0, _, held, _, _ = self._operands(x)
        if not self._any_held:
            return x
        return torch.where(held, x0, x)
