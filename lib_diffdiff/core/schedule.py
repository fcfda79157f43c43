"""The per-pixel step schedule: which pixel is held at which noise level.

The contract: a pixel of strength v = s * c gets what img2img of strength v would give it. It is held (kept on the
original latent noised to the current level) while the level is above the level of the *first model call* that
img2img of strength v makes, and free from that call on. img2img chooses its start with the WebUI's rule
``t_enc = int(min(v, .999) * steps)`` over the full ``steps``-long schedule; v = 0 is never freed.

Skipping comes free: the run itself is img2img at the largest strength, s * max(c), so it starts where its
strongest pixel needs and no model call is spent on levels every pixel would be held at.

**Continuous strength** (opt-in, ``plan_schedule(..., continuous=True)``). With N steps the rule above knows N
strengths: every v in [j/N, (j+1)/N) starts at the same call, so a smooth map comes out in N bands. The continuous
schedule gives every v its own place on the run's model calls. Let the run call the model at levels
lambda_0 > ... > lambda_{M-1} (its M steps) and end at level 0. A pixel of strength v sits at the fractional
position u(v) = M * (1 - v / v_max) on those calls: u = 0 for the run's own strength v_max (free from the first
call, exactly img2img), u = M for v = 0 (never freed), linear between. Write u = i + f (i integer, f in [0, 1)).
The pixel is held at calls above lambda_i, *partly free* during step i (calls at levels in (lambda_{i+1},
lambda_i]) with weight w = 1 - f, and free from lambda_{i+1} on. f = 0 is the rule's own "free from lambda_i".

Partly free means the prediction is blended: D_w = D_held + w * (D_model - D_held), where D_held is the
prediction that keeps the pixel on the noised original (:mod:`.injection`). Where a sampler's step is affine in
the prediction (Euler, Euler a, DDIM, LCM, DPM-Solver first order: x_{i+1} = a x_i + b D (+ fresh noise)), the
step of a partly free pixel is then *exactly* w times the free step plus (1 - w) times the held step: the pixel
runs the fraction w of step i. So the change a pixel gets grows continuously with v (w -> 0 is the held pixel,
w -> 1 the pixel free one call earlier) and, for those samplers, monotonically within the step. It is an
approximation of "freed at a level between two calls" in two ways: the model is evaluated at lambda_i for the
whole image (no per-pixel level exists), and samplers with several calls per step or memory of earlier steps
(Heun, DPM2, DPM++ 2M/SDE, UniPC, PLMS) see the blended prediction as one of several terms, so their step is
not exactly the w-blend (it is still held at w = 0 and free at w = 1, hence continuous). The linear u(v) spreads
the run's M calls evenly over (0, v_max]; at a band's top it agrees with the step rule (for a full-strength run),
lower in the band it gives less change than the rule, at most one step's worth, so at 30+ steps the two modes
agree closely.
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
    partial_level: torch.Tensor | None = None
    """Continuous schedules only, float64 [N, 1, h, w]: the level of the call that opens the step during which the
    pixel is partly free (:data:`NEVER` where it has none); exact schedules have None."""
    partial_weight: torch.Tensor | None = None
    """Continuous schedules only, float64 [N, 1, h, w]: the pixel's weight w in (0, 1) during that step (0 where
    it has none)."""

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
    continuous: bool = False,
) -> PixelSchedule:
    """Choose every pixel's free level.

    ``strengths``: float64 [h, w] or [N, h, w] from :func:`pixel_strengths`. ``start_levels[t_enc]``: the level of
    img2img's first model call for that t_enc (:func:`kdiffusion_start_levels`, :func:`timestep_start_levels`).
    ``run_t_enc``: the t_enc the host actually runs with (it differs from the rule with the WebUI's
    "img2img_fix_steps" option); by default the rule applied to the effective strength. ``continuous``: the
    continuous schedule of the module docs instead of the step rule.
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
    partial_level = partial_weight = None
    if continuous:
        run_levels = [float(lv) for lv in start_levels[run_t_enc::-1] if lv is not None]
        free_level, partial_level, partial_weight = continuous_levels(v, effective, run_levels)
        partial_level = torch.from_numpy(partial_level[:, None])
        partial_weight = torch.from_numpy(partial_weight[:, None])
    return PixelSchedule(
        strengths=v,
        t_enc=t_enc,
        free_level=torch.from_numpy(free_level[:, None]),
        effective_strength=effective,
        steps=steps,
        run_t_enc=run_t_enc,
        partial_level=partial_level,
        partial_weight=partial_weight,
    )


def continuous_levels(
    v: np.ndarray, effective: float, run_levels: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(free level, partial level, partial weight) of each pixel on a run whose model calls are at
    ``run_levels`` (descending), by the continuous rule of the module docs."""
    m = len(run_levels)
    lookup = np.array([*run_levels, NEVER], dtype=np.float64)  # index m: past the last call
    u = m * (1.0 - np.clip(v / effective, 0.0, 1.0))  # exactly 0 at the run's own strength: img2img
    i = np.floor(u).astype(np.int64)
    frac = u - i
    whole = frac == 0.0  # on a call: free from it, as the step rule
    i = np.minimum(i, m)
    free_level = np.where(whole, lookup[i], lookup[np.minimum(i + 1, m)])
    partial_level = np.where(whole, NEVER, lookup[i])
    partial_weight = np.where(whole, 0.0, 1.0 - frac)
    never = v <= 0.0
    free_level[never], partial_level[never], partial_weight[never] = NEVER, NEVER, 0.0
    return free_level, partial_level, partial_weight
