"""The run preview against real runs: for every sampler family of tests/sampling_loops.py, the preview's held/free
masks equal the injector's at every model call of a real differential sampling run, and its step counts are the
run's."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch
from sampling_loops import (
    ALPHAS,
    CHURN_LOOPS,
    FAMILIES,
    SIGMA_LOOPS,
    TinyNet,
    differential,
    full_schedule,
    sample_ddim,
    sample_euler,
    start_levels,
)

from lib_diffdiff import img2img_t_enc
from lib_diffdiff.tools.foresee import preview_run, record_call_levels

STEPS = 10
H, W = 10, 12


def graded_map() -> np.ndarray:
    """Grey levels across the columns, black on the left edge, plus a brighter patch: many distinct free calls."""
    m = np.tile(np.round(np.linspace(0, 230, W)) / 255.0, (H, 1))
    m[2:5, 3:7] = 250 / 255.0
    return m


def dry_run_levels(family: str, strength: float, steps: int) -> list[float]:
    """The model-call levels of img2img at ``strength``, with the stand-in model (as the WebUI preview records)."""
    t_enc = img2img_t_enc(strength, steps)
    sched = full_schedule(family, steps)
    x = torch.zeros(1, 4, 2, 2)
    if family == "ddim":
        return record_call_levels(lambda model: sample_ddim(model, x, sched[:t_enc], ALPHAS))
    sigmas = sched[steps - t_enc - 1 :]
    if family == "flow_euler":
        return record_call_levels(lambda model: sample_euler(model, x, sigmas))
    loop = {**SIGMA_LOOPS, **CHURN_LOOPS}[family]
    return record_call_levels(lambda model: loop(model, x, sigmas, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("family", FAMILIES + list(CHURN_LOOPS))
@pytest.mark.parametrize("strength", [1.0, 0.55])
@pytest.mark.parametrize("continuous", [False, True])
def test_preview_masks_equal_the_injectors_at_every_model_call(family, strength, continuous):
    g = torch.Generator().manual_seed(5)
    x0, noise = torch.randn(1, 4, H, W, generator=g), torch.randn(1, 4, H, W, generator=g)
    m = graded_map()
    run, schedule = differential(family, TinyNet(seed=2), x0, noise, m, strength, STEPS, continuous=continuous)
    levels = dry_run_levels(family, schedule.effective_strength, STEPS)
    preview = preview_run(m, strength, STEPS, start_levels(family, STEPS), levels, continuous=continuous)
    assert preview.call_levels == pytest.approx(run.levels, rel=1e-6)
    assert preview.calls == len(run.held) > 0
    for k, held in enumerate(run.held):
        np.testing.assert_array_equal(preview.held(k), held[:, 0].numpy(), err_msg=f"model call {k}")
    assert preview.effective_strength == schedule.effective_strength
    assert preview.run_steps == schedule.run_t_enc
    # the map is graded: pixels are freed at several different calls, and black pixels never
    assert len(np.unique(preview.free_call)) > 3
    assert (preview.free_call[0][:, 0] == preview.calls).all()


def test_skipping_is_counted_against_plain_img2img():
    m = np.full((H, W), 0.5)
    levels, plain = dry_run_levels("euler", 0.5, 30), dry_run_levels("euler", 1.0, 30)
    preview = preview_run(m, 1.0, 30, start_levels("euler", 30), levels, plain_calls=len(plain))
    assert (preview.run_steps, preview.plain_steps) == (15, 29)
    assert (preview.calls, preview.plain_calls) == (16, 30)  # k-diffusion img2img runs t_enc + 1 steps
    assert preview.summary() == "16 of 30 model calls at strength 0.5 (plain img2img at 1): 47% skipped"
    assert "15 of 29 steps" in preview_run(m, 1.0, 30, start_levels("euler", 30), levels).summary()
    assert (preview.free_call == 0).all()  # a constant map is img2img: every pixel free from the first call


def test_two_calls_per_step_are_foreseen_per_call():
    m = graded_map()
    one = preview_run(m, 1.0, STEPS, start_levels("euler", STEPS), dry_run_levels("euler", 1.0, STEPS))
    two = preview_run(m, 1.0, STEPS, start_levels("heun", STEPS), dry_run_levels("heun", 1.0, STEPS))
    assert two.calls == 2 * one.calls - 1  # Heun: two calls per step, one on the last
    assert two.run_steps == one.run_steps


def test_json_form_decodes_to_the_same_masks():
    m = graded_map()
    preview = preview_run(m, 0.8, STEPS, start_levels("euler", STEPS), dry_run_levels("euler", 0.8, STEPS))
    data = preview.to_json()
    free = np.frombuffer(base64.b64decode(data["free_call"]), dtype="<u2").reshape(1, data["height"], data["width"])
    grey = np.frombuffer(base64.b64decode(data["map"]), dtype=np.uint8).reshape(1, H, W)
    np.testing.assert_array_equal(free, preview.free_call)
    np.testing.assert_array_equal(grey, np.rint(m * 255)[None].astype(np.uint8))
    assert data["calls"] == preview.calls and data["summary"] == preview.summary()


def test_recorder_forwards_attribute_reads_to_the_real_denoiser():
    class Real:
        inner_model = "tables"

    seen = []

    def sample(model):
        seen.append(model.inner_model)
        model(torch.zeros(1), torch.tensor([3.0, 3.0]))

    assert record_call_levels(sample, Real()) == [3.0] and seen == ["tables"]


def test_a_loop_that_reads_its_predictions_through_post_cfg_functions_is_foreseen():
    """Forge Neo's CFG++ samplers capture the unconditional prediction with a post-CFG function in the model_options
    they hand the denoiser, and step with it: the stand-in runs those functions, so the loop runs to its end."""
    sigmas = torch.tensor([4.0, 2.0, 1.0, 0.0])

    def euler_cfg_pp(model):
        uncond = None

        def capture(args):
            nonlocal uncond
            uncond = args["uncond_denoised"]
            return args["denoised"]

        x = torch.ones(1, 1, 2, 2) * sigmas[0]
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * x.new_ones(1), model_options={"sampler_post_cfg_function": [capture]})
            x = denoised + sigmas[i + 1] * (x - uncond) / sigmas[i]

    assert record_call_levels(euler_cfg_pp) == [4.0, 2.0, 1.0]
