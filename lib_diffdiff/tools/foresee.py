"""Foresee a run before it is made (no model call): which latent pixels are held and which are free at every model
call of the chosen sampler, the effective strength, and what skipping saves against plain img2img.

The held/free state is not re-derived here: the run's own :class:`DifferentialInjector` is driven through the
sampler's model-call levels, so the preview and the run cannot disagree. The levels come from running the sampler's
own loop with a stand-in model (:func:`record_call_levels`): samplers that call the model twice per step (Heun,
DPM2, DPM++ SDE) or go back up (Restart) are foreseen as they run. Samplers whose steps depend on the model's output
(DPM adaptive) are foreseen with a model that predicts zeros: an estimate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.injection import DifferentialInjector, level_of
from ..core.noise_spaces import SigmaSpace
from ..core.schedule import img2img_t_enc, pixel_strengths, plan_schedule

POST_CFG = "sampler_post_cfg_function"
"""Where a ComfyUI-style sampler puts, in the ``model_options`` it hands the denoiser, the functions that read the
cond and uncond predictions."""


class _LevelRecorder:
    """A stand-in for the sampler's denoiser: records each call's level and predicts zeros (finite everywhere, so
    no sampler stops early). Attribute reads go to ``wrapped`` (some hosts' samplers read ``model.inner_model``
    tables, such as ``alphas_cumprod``)."""

    def __init__(self, wrapped: Any = None):
        self.levels: list[float] = []
        self._wrapped = wrapped

    def __call__(self, x: torch.Tensor, level: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.levels.append(level_of(level))
        prediction = torch.zeros_like(x)
        # samplers that read the predictions through post-CFG functions (the ComfyUI convention: Forge Neo's CFG++
        # samplers) get them from the stand-in too, or their loop could not run
        options = kwargs.get("model_options")
        for post_cfg in options.get(POST_CFG, []) if isinstance(options, dict) else []:
            predictions = {"denoised": prediction, "cond_denoised": prediction, "uncond_denoised": prediction}
            prediction = post_cfg(
                {**predictions, "input": x, "sigma": level, "cond_scale": 1.0, "model_options": options}
            )
        return prediction

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self._wrapped is None:
            raise AttributeError(name)
        return getattr(self._wrapped, name)


def record_call_levels(sample: Callable[[Any], Any], wrapped: Any = None) -> list[float]:
    """The level of every model call ``sample(model)`` makes, in order, with a stand-in model that costs nothing."""
    recorder = _LevelRecorder(wrapped)
    with torch.no_grad():
        sample(recorder)
    return recorder.levels


@dataclass(frozen=True)
class RunPreview:
    """What a run will do, per latent pixel and model call."""

    latent_map: np.ndarray
    """float64 [N, h, w]: the map the sampler sees (after shaping, crop, resize and the inpaint mask)."""
    free_call: np.ndarray
    """int32 [N, h, w]: index of the first model call at which the pixel is free; ``calls`` when never."""
    call_levels: tuple[float, ...]
    effective_strength: float
    """The strength the run samples at: the denoising strength times the map's brightest value (skipping)."""
    strength: float
    steps: int
    run_steps: int
    """Sampler steps the run makes (img2img's t_enc at the effective strength)."""
    plain_steps: int
    """Sampler steps plain img2img at ``strength`` makes."""
    plain_calls: int | None
    """Model calls plain img2img at ``strength`` makes, when known."""

    @property
    def calls(self) -> int:
        return len(self.call_levels)

    def held(self, call: int) -> np.ndarray:
        """Bool [N, h, w]: pixels held (on the noised original) at model call ``call`` (0-based)."""
        if not 0 <= call < self.calls:
            raise IndexError(f"model call {call} of a run with {self.calls} calls")
        return self.free_call > call

    def summary(self) -> str:
        """One line for the UI, e.g. "16 of 31 model calls at strength 0.5 (plain img2img at 1): 48% skipped".
        Counted in model calls, the cost, when the plain run's are known; else in img2img's steps (t_enc)."""
        done, plain, unit = self.calls, self.plain_calls, "model calls"
        if plain is None:
            done, plain, unit = self.run_steps, self.plain_steps, "steps"
        saved = max(1.0 - done / plain, 0.0) if plain else 0.0
        return (
            f"{done} of {plain} {unit} at strength {self.effective_strength:.3g} "
            f"(plain img2img at {self.strength:.3g}): {saved:.0%} skipped"
        )

    def to_json(self) -> dict[str, Any]:
        """A compact form for the browser: the map as 8-bit greys and the free call per pixel as little-endian
        uint16, both base64, row-major [N, h, w]."""
        n, h, w = self.free_call.shape
        grey = np.rint(np.clip(self.latent_map, 0.0, 1.0) * 255.0).astype(np.uint8)
        return {
            "maps": n,
            "width": w,
            "height": h,
            "map": base64.b64encode(grey.tobytes()).decode(),
            "free_call": base64.b64encode(self.free_call.astype("<u2").tobytes()).decode(),
            "calls": self.calls,
            "call_levels": list(self.call_levels),
            "strength": self.strength,
            "effective_strength": self.effective_strength,
            "steps": self.steps,
            "run_steps": self.run_steps,
            "plain_steps": self.plain_steps,
            "plain_calls": self.plain_calls,
            "summary": self.summary(),
        }


def preview_run(
    latent_map: np.ndarray,
    strength: float,
    steps: int,
    start_levels: Sequence[float | None],
    call_levels: Sequence[float],
    run_t_enc: int | None = None,
    plain_calls: int | None = None,
    plain_steps: int | None = None,
    continuous: bool = False,
) -> RunPreview:
    """Foresee a run. ``latent_map``, ``strength``, ``steps``, ``start_levels``, ``run_t_enc`` and ``continuous``
    are what the run plans its schedule with (:func:`plan_schedule`); ``call_levels`` the levels of its model calls,
    in order. A pixel's free call is the first call at which it is not held (partly free counts as free)."""
    schedule = plan_schedule(pixel_strengths(latent_map, strength), start_levels, steps, run_t_enc, continuous)
    n, _, h, w = schedule.free_level.shape
    # the run's own injector, on a one-channel stand-in latent: only its held masks are read
    zeros = torch.zeros(n, 1, h, w, dtype=torch.float32)
    injector = DifferentialInjector(zeros, zeros, schedule, SigmaSpace())
    calls = len(call_levels)
    free_call = np.full((n, h, w), calls, dtype=np.int32)
    for k, level in enumerate(call_levels):
        injector.before_model(zeros, level)
        newly_free = ~injector.held_mask()[:, 0].numpy() & (free_call == calls)
        free_call[newly_free] = k
    return RunPreview(
        latent_map=np.asarray(latent_map, dtype=np.float64).reshape(schedule.strengths.shape),
        free_call=free_call,
        call_levels=tuple(float(v) for v in call_levels),
        effective_strength=schedule.effective_strength,
        strength=float(strength),
        steps=steps,
        run_steps=schedule.run_t_enc,
        plain_steps=img2img_t_enc(strength, steps) if plain_steps is None else plain_steps,
        plain_calls=plain_calls,
    )
