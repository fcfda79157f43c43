"""The per-pixel step schedule: which pixel is held at which noise level.

The contract: a pixel of strength v = s * c gets what img2img of strength v would give it. It is held (kept on the
original latent noised to the current level) while the level is above the level of the *first model call* that
img2img of strength v makes, and free from that call on. img2img chooses its start with the WebUI's rule
``t_enc = int(min(v, .999) * steps)`` over the full ``steps``-long schedule; v = 0 is never freed.

Skipping comes free: the run itself is img2img at the largest strength, s * max(c), so it starts where its
strongest pixel needs and no model call is spent on levels every pixel would be held at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ChangeMapError

NEVER = -math.inf
"""Free level of a pixel that is never freed (strength 0, or a strength at which img2img makes no model call)."""


def img2img_t_enc(strength: float, steps: int) -> int:
    """The WebUI's number of denoising steps for img2img of ``strength`` over ``steps`` (setup_img2img_steps)."""
    return int(min(strength, 0.999) * steps)


def kdiffusion_start_levels(sigmas: Sequence[float] | torch.Tensor, steps: int) -> list[float | None]:
    """Level of img2img's first model call for each ``t_enc`` on a k-diffusion (or flow) sampler: the WebUI runs
    ``sigmas[steps - t_enc - 1:]`` of the full schedule ``sigmas`` (steps + 1 values, ending at 0)."""
    sigmas = [float(s) for s in sigmas]
    if len(sigmas) < steps + 1:
        raise ValueError(f"a {steps}-step schedule needs {steps + 1} sigmas, got {len(sigmas)}")
    return [sigmas[steps - t_enc - 1] for t_enc in range(steps)]


def timestep_start_levels(timesteps: Sequence[float] | torch.Tensor) -> list[float | None]:
    """Level of img2img's first model call for each ``t_enc`` on A1111's timestep samplers (DDIM, PLMS, UniPC):
    they run ``timesteps[:t_enc]`` and first call the model at ``timesteps[t_enc - 1]``; with t_enc < 2 they make
    no call at all, so such a pixel is never freed."""
    timesteps = [float(t) for t in timesteps]
    return [timesteps[t_enc - 1] if t_enc >= 2 else None for t_enc in range(len(timesteps))]


@dataclass(frozen=True)
class PixelSchedule:
    """When each latent pixel is freed. Shapes: ``strengths`` and ``t_enc`` [N, h, w], ``free_level`` [N, 1, h, w],
    N = 1 (one map for the whole batch) or the batch size."""

    strengths: np.ndarray
    """float64 per-pixel strength v = s * c."""
    t_enc: np.ndarray
    """int64 per-pixel img2img step count; -1 where the pixel is never freed (v = 0)."""
    free_level: torch.Tensor
    """float64: the pixel is free at model calls with level <= this (:data:`NEVER` for never)."""
    effective_strength: float
    """The run's denoising strength, s * max(c): the host runs img2img at this strength (skipping)."""
    steps: int
    run_t_enc: int
    """The run's own t_enc: pixels of the largest strength are free from its first call."""

    @property
    def never_freed(self) -> np.ndarray:
        return self.t_enc < 0


def pixel_strengths(latent_map: np.ndarray, strength: float) -> np.ndarray:
    """v = s * c in float64 (c from :func:`map_transforms.to_latent`), with the checks that make it a valid map."""
    try:
        s = float(strength)
    except (TypeError, ValueError):
        s = math.nan
    if not (math.isfinite(s) and 0.0 <= s <= 1.0):
        raise ChangeMapError(f"the denoising strength must lie in [0, 1], got {strength!r}")
    c = np.asarray(latent_map, dtype=np.float64)
    if c.ndim not in (2, 3) or c.size == 0:
        raise ChangeMapError(f"a latent change map must be [h, w] or [batch, h, w], got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ChangeMapError("the change map has NaN or infinite values")
    if c.min() < 0.0 or c.max() > 1.0:
        raise ChangeMapError(f"change map values must lie in [0, 1], got [{c.min():g}, {c.max():g}]")
    return s * (c if c.ndim == 3 else c[None])


def plan_schedule(
    strengths: np.ndarray,
    start_levels: Sequence[float | None],
    steps: int,
    run_t_enc: int | None = None,
) -> PixelSchedule:
    """Choose every pixel's free level.

    ``strengths``: float64 [h, w] or [N, h, w] from :func:`pixel_strengths`. ``start_levels[t_enc]``: the level of
    img2img's first model call for that t_enc (:func:`kdiffusion_start_levels`, :func:`timestep_start_levels`).
    ``run_t_enc``: the t_enc the host actually runs with (it differs from the rule with the WebUI's
    "img2img_fix_steps" option); by default the rule applied to the effective strength.
    """
    v = np.asarray(strengths, dtype=np.float64)
    v = v if v.ndim == 3 else v[None]
    effective = float(v.max())
    if effective <= 0.0:
        raise ChangeMapError("the change map is black everywhere (or the strength is 0): nothing would change")
    if run_t_enc is None:
        run_t_enc = img2img_t_enc(effective, steps)
    t_enc = np.minimum(np.floor(np.minimum(v, 0.999) * steps), run_t_enc).astype(np.int64)
    t_enc[v >= effective] = run_t_enc
    t_enc[v <= 0.0] = -1
    if t_enc.max() >= len(start_levels):
        raise ValueError(f"start_levels has {len(start_levels)} entries, t_enc goes up to {t_enc.max()}")
    lookup = np.array([NEVER if lv is None else float(lv) for lv in start_levels] + [NEVER], dtype=np.float64)
    free_level = lookup[t_enc]  # index -1 picks the trailing NEVER
    return PixelSchedule(
        strengths=v,
        t_enc=t_enc,
        free_level=torch.from_numpy(free_level[:, None]),
        effective_strength=effective,
        steps=steps,
        run_t_enc=run_t_enc,
    )
