"""The per-pixel schedule: the WebUI's step rule, float traps, skipping, and its inputs' checks."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lib_diffdiff import (
    NEVER,
    ChangeMapError,
    VPTimesteps,
    img2img_t_enc,
    kdiffusion_start_levels,
    load_change_map,
    pixel_strengths,
    plan_schedule,
    resize_to,
    timestep_start_levels,
    to_latent,
)
from lib_diffdiff.core.noise_schedules import a1111_timesteps, karras_sigmas, sd_alphas_cumprod


def webui_t_enc(strength: float, steps: int) -> int:
    """sd_samplers_common.setup_img2img_steps, as the WebUI writes it."""
    return int(min(strength, 0.999) * steps)


@given(st.integers(1, 255), st.integers(1, 150))
def test_a_grey_level_chooses_the_step_of_the_same_strength_sent_as_a_float(k, steps):
    """Map grey k (PNG -> float32 map -> latent) and an API strength of k/255 (float64) choose the same step."""
    image = Image.fromarray(np.full((16, 16), k, np.uint8), "L")
    m = resize_to(load_change_map(image), 32, 32)
    latent = to_latent(m, 4, 4)
    schedule = plan_schedule(pixel_strengths(latent, 1.0), [1.0] * steps, steps)
    assert schedule.effective_strength == k / 255
    assert np.all(schedule.t_enc == webui_t_enc(k / 255, steps))


@given(st.floats(0.0001, 1.0), st.integers(1, 150))
def test_a_white_map_at_strength_s_is_img2img_at_s(s, steps):
    schedule = plan_schedule(pixel_strengths(np.ones((3, 3)), s), [1.0] * steps, steps)
    assert schedule.effective_strength == s
    assert schedule.run_t_enc == webui_t_enc(s, steps)
    assert np.all(schedule.t_enc == webui_t_enc(s, steps))


def test_free_levels_follow_the_kdiffusion_schedule_tail():
    steps = 10
    sigmas = karras_sigmas(steps)
    m = np.array([[0.0, 0.05, 0.3, 0.55, 1.0]])
    schedule = plan_schedule(pixel_strengths(m, 1.0), kdiffusion_start_levels(sigmas, steps), steps)
    assert schedule.t_enc.tolist() == [[[-1, 0, 3, 5, 9]]]
    free = schedule.free_level[0, 0, 0].tolist()
    assert free[0] == NEVER
    # img2img of t_enc runs sigmas[steps - t_enc - 1:], whose first value is its first model call
    assert free[1:] == [float(sigmas[steps - t - 1]) for t in (0, 3, 5, 9)]
    assert free[4] == float(sigmas[0])


def test_timestep_samplers_never_free_what_img2img_would_not_call_the_model_for():
    steps = 10
    levels = timestep_start_levels(a1111_timesteps(steps))
    assert levels[0] is None and levels[1] is None
    assert levels[5] == float(a1111_timesteps(steps)[4])
    m = np.array([[0.1, 0.15, 0.5]])
    schedule = plan_schedule(pixel_strengths(m, 1.0), levels, steps)
    assert schedule.free_level[0, 0, 0, 0] == NEVER  # t_enc 1: no model call in A1111's DDIM
    assert schedule.free_level[0, 0, 0, 2] == float(a1111_timesteps(steps)[4])


def test_the_runs_own_t_enc_frees_the_strongest_pixels_from_its_first_call():
    """With the WebUI's "img2img_fix_steps" the run's t_enc is not the rule applied to its strength."""
    steps = 66  # int(20 / 0.3)
    m = np.array([[0.3, 0.15, 0.0]])
    schedule = plan_schedule(pixel_strengths(m, 1.0), list(range(steps)), steps, run_t_enc=19)
    assert schedule.run_t_enc == 19
    assert schedule.t_enc[0, 0].tolist() == [19, 9, -1]


def test_per_image_maps_in_a_batch():
    maps = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)])
    schedule = plan_schedule(pixel_strengths(maps, 1.0), list(range(10, 0, -1)), 10)
    assert schedule.free_level.shape == (2, 1, 2, 2)
    assert schedule.effective_strength == 1.0
    assert np.all(schedule.t_enc[0] == 5) and np.all(schedule.t_enc[1] == 9)


@pytest.mark.parametrize(
    "latent,strength,message",
    [
        (np.zeros((4, 4)), 1.0, "black everywhere"),
        (np.ones((4, 4)), 0.0, "black everywhere"),
        (np.ones((4, 4)), 1.5, r"strength must lie in \[0, 1\]"),
        (np.ones((4, 4)), float("nan"), "strength"),
        (np.ones((4, 4)), "0.5x", "strength"),
        (np.full((4, 4), np.nan), 1.0, "NaN"),
        (np.full((4, 4), 2.0), 1.0, r"\[0, 1\]"),
        (np.ones(4), 1.0, "shape"),
    ],
)
def test_bad_schedule_inputs(latent, strength, message):
    with pytest.raises(ChangeMapError, match=message):
        plan_schedule(pixel_strengths(latent, strength), [1.0] * 10, 10)


def test_img2img_t_enc_is_the_webui_rule():
    for s in (0.0, 0.1, 0.29, 0.5, 0.7, 0.999, 1.0):
        for steps in (1, 7, 20, 100):
            assert img2img_t_enc(s, steps) == webui_t_enc(s, steps)


def test_vp_alpha_bar_interpolates_in_log_space():
    table = sd_alphas_cumprod()
    space = VPTimesteps(table)
    for t in (0, 1, 500, 999):
        assert space.alpha_bar(t) == pytest.approx(float(table[t]), rel=1e-12)
    mid = space.alpha_bar(500.5)
    assert mid == pytest.approx(math.sqrt(float(table[500]) * float(table[501])), rel=1e-12)
    values = [space.alpha_bar(t) for t in np.linspace(0, 999, 301)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError):
        VPTimesteps(torch.tensor([0.5, -1.0]))
