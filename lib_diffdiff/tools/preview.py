"""A picture of the schedule (paper Fig. 2): one tile per model call of a one-call-per-step sampler, held regions
(copied from the noised original) tinted, free regions (left to the sampler) showing the map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..core.injection import held_at
from ..core.noise_schedules import a1111_timesteps, exponential_sigmas, karras_sigmas
from ..core.schedule import (
    img2img_t_enc,
    kdiffusion_start_levels,
    pixel_strengths,
    plan_schedule,
    timestep_start_levels,
)
from .drawing import font

SCHEDULES = ("karras", "exponential", "ddim")
HELD_COLOUR = np.array([40, 70, 160], dtype=np.float32)


@dataclass(frozen=True)
class StepView:
    """The state at one model call: its level and which pixels are held."""

    level: float
    held: np.ndarray  # bool HxW


def call_levels(schedule_name: str, steps: int, run_t_enc: int) -> tuple[list[float], list[float | None]]:
    """(levels of the run's model calls, start level per t_enc) for a one-call-per-step sampler."""
    if schedule_name in ("karras", "exponential"):
        make = karras_sigmas if schedule_name == "karras" else exponential_sigmas
        sigmas = make(steps).tolist()
        return sigmas[steps - run_t_enc - 1 : -1], kdiffusion_start_levels(sigmas, steps)
    if schedule_name == "ddim":
        timesteps = [float(t) for t in a1111_timesteps(steps).tolist()]
        run = timesteps[:run_t_enc]  # A1111 calls the model at run[-1], run[-2], ..., run[1]
        return run[:0:-1], timestep_start_levels(timesteps)
    raise ValueError(f"unknown schedule {schedule_name!r}; choose from {', '.join(SCHEDULES)}")


def step_views(change_map: np.ndarray, strength: float, steps: int, schedule_name: str = "karras") -> list[StepView]:
    """The held/free state of every pixel of ``change_map`` (HxW in [0, 1]) at each model call."""
    strengths = pixel_strengths(change_map, strength)
    levels, start_levels = call_levels(schedule_name, steps, img2img_t_enc(float(strengths.max()), steps))
    free = plan_schedule(strengths, start_levels, steps).free_level[0, 0].numpy()
    return [StepView(level, held_at(free, level)) for level in levels]


def render_preview(
    change_map: np.ndarray,
    strength: float,
    steps: int,
    schedule_name: str = "karras",
    tile: int = 160,
    columns: int = 6,
) -> Image.Image:
    """One tile per model call, labelled with the call number and level."""
    views = step_views(change_map, strength, steps, schedule_name)
    if not views:
        raise ValueError("this map and strength make no model call: nothing to preview")
    height, width = change_map.shape
    scale = tile / max(height, width)
    tw, th = max(1, round(width * scale)), max(1, round(height * scale))
    small_map = np.asarray(
        Image.fromarray(change_map.astype(np.float32), mode="F").resize((tw, th), Image.Resampling.NEAREST)
    )
    grey = np.repeat(small_map[:, :, None] * 255.0, 3, axis=2)
    label_h = 18
    columns = min(columns, len(views))
    rows = -(-len(views) // columns)
    header = 20
    unit = "timestep t" if schedule_name == "ddim" else "sigma"
    sheet = Image.new("RGB", (columns * (tw + 4) + 4, header + rows * (th + label_h + 4) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    typeface = font(12)
    draw.text(
        (4, 4),
        f"model call / calls  {unit};  blue: held at the noised original;  grey: free",
        fill=(0, 0, 0),
        font=typeface,
    )
    for i, view in enumerate(views):
        held = np.asarray(Image.fromarray(view.held).resize((tw, th), Image.Resampling.NEAREST))
        pixels = np.where(held[:, :, None], grey * 0.35 + HELD_COLOUR * 0.65, grey)
        x, y = 4 + (i % columns) * (tw + 4), header + 4 + (i // columns) * (th + label_h + 4)
        sheet.paste(Image.fromarray(np.round(pixels).astype(np.uint8), "RGB"), (x, y + label_h))
        draw.text((x, y + 2), f"{i + 1}/{len(views)}  {view.level:.3g}", fill=(0, 0, 0), font=typeface)
    return sheet
