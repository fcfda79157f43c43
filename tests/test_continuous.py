"""The continuous-strength mode (plan_schedule(..., continuous=True)), through real sampling loops driving a random-
weight network: every map value gets its own strength at few steps, while value 0, constant maps and the map's
largest value keep the step rule's exact guarantees. The ramp measurement is the one of benchmarks/bench_smooth.py
and the live tests (lib_diffdiff.tools.smoothness)."""

import numpy as np
import pytest
import torch
from sampling_loops import CHURN_LOOPS, FAMILIES, TinyNet, differential, img2img, start_levels

from lib_diffdiff import NEVER, fan_map, pixel_strengths, plan_schedule, to_latent
from lib_diffdiff.tools.smoothness import column_change, ramp_fit, ramp_image_map, step_bands

H, W = 8, 32  # a 256-pixel-wide image's latent
SMOOTH_FAMILIES = [f for f in FAMILIES if f != "flow_euler"]
"""Families whose change grows with strength on this network; the flow toy's does not even with the step rule at
30 steps (Spearman 0.96 in both modes), a property of the random velocity net, not of the schedule."""


@pytest.fixture(scope="module")
def net():
    return TinyNet(seed=0)


def latents(seed: int, batch: int = 1, width: int = W):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, 4, H, width, generator=g)
    noise = torch.randn(batch, 4, H, width, generator=g)
    return x0, noise


def ramp_latent_map() -> np.ndarray:
    return to_latent(ramp_image_map(W * 8, H * 8), H, W)


def ramp_change(net, family: str, steps: int, continuous: bool, seeds=(0, 1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """(map value per latent column, mean change per latent column averaged over seeds)."""
    m = ramp_latent_map()
    changes = []
    for seed in seeds:
        x0, noise = latents(seed)
        run, _ = differential(family, net, x0, noise, m, 1.0, steps, continuous=continuous, seed=seed)
        changes.append(column_change(x0[0].numpy(), run.latent[0].numpy(), block=1))
    return m.mean(axis=0), np.mean(changes, axis=0)


# ---- the schedule itself ----


def test_continuous_schedule_positions_every_value_on_its_own():
    steps = 4
    levels = start_levels("euler", steps)
    v = pixel_strengths(np.linspace(0.0, 1.0, 33)[None], 1.0)
    exact = plan_schedule(v, levels, steps)
    smooth = plan_schedule(v, levels, steps, continuous=True)
    assert exact.partial_level is None and exact.partial_weight is None
    first = torch.maximum(smooth.free_level, smooth.partial_level)[0, 0, 0].numpy()
    weight = smooth.partial_weight[0, 0, 0].numpy()
    assert first[0] == NEVER and smooth.free_level[0, 0, 0, 0] == NEVER  # value 0: never freed
    assert first[-1] == float(levels[exact.run_t_enc]) and weight[-1] == 0.0  # largest value: free from the start
    assert np.all(np.diff(first) >= 0)  # a larger value is touched no later
    partial = weight > 0
    assert np.all((weight[partial] > 0) & (weight[partial] < 1))
    # within the values that share a partial step, the weight grows with the value
    for level in np.unique(smooth.partial_level[0, 0, 0].numpy()[partial]):
        same = partial & (smooth.partial_level[0, 0, 0].numpy() == level)
        assert np.all(np.diff(weight[same]) > 0)
    # the step rule knows 4 starts at 4 steps; the continuous schedule gives 33 values 32 distinct treatments
    treatments = {(float(a), float(b), float(c)) for a, b, c in zip(first, smooth.free_level[0, 0, 0], weight)}
    assert len(set(exact.free_level[0, 0, 0].tolist())) == 5 and len(treatments) == 33


def test_continuous_schedule_of_a_constant_map_is_the_step_rule():
    steps = 6
    for value in (1.0, 0.62, 0.2):
        v = pixel_strengths(np.full((3, 3), value), 1.0)
        exact = plan_schedule(v, start_levels("euler", steps), steps)
        smooth = plan_schedule(v, start_levels("euler", steps), steps, continuous=True)
        assert torch.equal(exact.free_level, smooth.free_level)
        assert bool((smooth.partial_weight == 0).all())


# ---- guarantees kept, through real sampling loops ----


@pytest.mark.parametrize("family", [*FAMILIES, *CHURN_LOOPS])
@pytest.mark.parametrize("value,strength,steps", [(1.0, 1.0, 4), (0.37, 1.0, 8), (1.0, 0.55, 6), (0.8, 0.9, 4)])
def test_constant_map_is_img2img_bit_for_bit(net, family, value, strength, steps):
    x0, noise = latents(5, batch=2, width=16)
    reference = img2img(family, net, x0, noise, value * strength, steps)
    run, _ = differential(family, net, x0, noise, np.full((H, 16), value), strength, steps, continuous=True)
    assert run.levels == reference.levels
    assert torch.equal(run.latent, reference.latent)


@pytest.mark.parametrize("family", [*FAMILIES, *CHURN_LOOPS])
@pytest.mark.parametrize("steps", [4, 8])
def test_value_zero_stays_exact_and_the_largest_value_is_free_at_every_call(net, family, steps):
    x0, noise = latents(6, batch=2)
    m = ramp_latent_map()
    m[:, :3] = 0.0
    top = torch.from_numpy(m == m.max())
    run, _ = differential(family, net, x0, noise, m, 1.0, steps, continuous=True)
    keep = torch.from_numpy(m == 0.0).expand_as(x0)
    assert torch.equal(run.latent[keep], x0[keep])
    assert any(p is not None for p in run.partial), "a ramp at few steps must have partly free pixels"
    for held, partial in zip(run.held, run.partial):
        assert not bool(held[:, :, top].any())
        assert partial is None or not bool(partial[:, :, top].any())
    for x, x_in, _ in run.inputs:
        if x.shape == x0.shape:  # not a resized call (reForge's Dy/SMEA steps)
            assert torch.equal(x_in[:, :, top], x[:, :, top])  # the sampler's own latent, as in img2img


@pytest.mark.parametrize("family", ["euler", "ddim"])
def test_partly_free_prediction_is_the_weighted_blend_and_makes_an_affine_step_the_weighted_step(net, family):
    """On a sampler whose step is affine in the prediction, a pixel of weight w runs exactly the fraction w of its
    partial step: compare with the two runs where it is held through that step and free from its start."""
    steps = 4
    levels = start_levels(family, steps)
    x0, noise = latents(8, width=16)
    m = np.ones((H, 16))
    m[:, :8] = 0.6  # partly free during one step at 4 steps (position 1.6 of 4 calls, 0.8 of DDIM's 2)
    schedule = plan_schedule(pixel_strengths(m, 1.0), levels, steps, continuous=True)
    w = float(schedule.partial_weight[0, 0, 0, 0])
    assert 0 < w < 1
    run, _ = differential(family, net, x0, noise, m, 1.0, steps, continuous=True)
    calls = [i for i, p in enumerate(run.partial) if p is not None]
    assert len(calls) == 1  # one call per step on these samplers
    call = calls[0]
    # the two step-rule values whose pixels are freed at the partial step's start (early) and at its end (late)
    candidates = np.linspace(0.01, 1.0, 100)
    exact_levels = plan_schedule(pixel_strengths(candidates[None], 1.0), levels, steps).free_level[0, 0, 0]
    runs = {}
    for name, level in (("early", schedule.partial_level[0, 0, 0, 0]), ("late", schedule.free_level[0, 0, 0, 0])):
        mm = m.copy()
        mm[:, :8] = candidates[int(torch.nonzero(exact_levels == level)[0])]
        runs[name], _ = differential(family, net, x0, noise, mm, 1.0, steps)
    # up to the partial call the three runs are the same; the state after it is the w-blend of the other two
    for i in range(call + 1):
        assert torch.allclose(run.inputs[i][0], runs["late"].inputs[i][0], atol=1e-5)
    after = run.inputs[call + 1][0][..., :8]
    blend = runs["late"].inputs[call + 1][0][..., :8] + w * (
        runs["early"].inputs[call + 1][0][..., :8] - runs["late"].inputs[call + 1][0][..., :8]
    )
    assert torch.allclose(after, blend, atol=1e-4)
    assert not torch.allclose(after, runs["late"].inputs[call + 1][0][..., :8], atol=1e-2)


@pytest.mark.parametrize("family", SMOOTH_FAMILIES)
def test_change_is_continuous_across_a_band_edge_where_the_step_rule_jumps(net, family):
    steps = 4
    x0, noise = latents(9, width=16)
    outs = {}
    for continuous in (False, True):
        for side, value in (("below", 0.5 - 1e-7), ("above", 0.5)):
            m = np.ones((H, 16))
            m[:, :8] = value
            run, _ = differential(family, net, x0, noise, m, 1.0, steps, continuous=continuous)
            outs[continuous, side] = run.latent[..., :8]
    jump = (outs[False, "above"] - outs[False, "below"]).abs().mean()
    gap = (outs[True, "above"] - outs[True, "below"]).abs().mean()
    assert jump > 0.05 * outs[False, "above"].abs().mean()  # the staircase's riser
    assert gap < 1e-3 * jump


# ---- the measurement of the issue ----


@pytest.mark.parametrize("family", SMOOTH_FAMILIES)
@pytest.mark.parametrize("steps", [4, 6, 8])
def test_ramp_is_smooth_in_continuous_mode_and_a_staircase_with_the_step_rule(net, family, steps):
    values, smooth = ramp_change(net, family, steps, continuous=True)
    bands = step_bands(values, 1.0, steps)
    fit = ramp_fit(values, smooth, bands)
    assert fit.smooth(), fit.line()
    _, stairs = ramp_change(net, family, steps, continuous=False)
    if steps == 4:  # 8 columns a band: wide enough for the step rule's flat bands to show
        staircase = ramp_fit(values, stairs, bands)
        assert abs(staircase.band_ratio) < 0.25, staircase.line()


@pytest.mark.parametrize("family", SMOOTH_FAMILIES)
def test_at_30_steps_the_two_modes_agree_closely(net, family):
    _, exact = ramp_change(net, family, 30, continuous=False)
    _, smooth = ramp_change(net, family, 30, continuous=True)
    assert np.abs(smooth - exact).mean() <= 0.1 * exact.mean()


@pytest.mark.parametrize("family", ["euler", "euler_a", "dpmpp_2m", "ddim"])
def test_a_fan_of_8_strengths_at_4_steps_gives_8_different_columns(net, family):
    strengths = tuple(np.round(np.linspace(0.125, 1.0, 8), 3))
    m = to_latent(fan_map(strengths, W * 8, H * 8), H, W)
    per_column = []
    for seed in (0, 1, 2):
        x0, noise = latents(seed)
        run, _ = differential(family, net, x0, noise, m, 1.0, 4, continuous=True, seed=seed)
        per_column.append(column_change(x0[0].numpy(), run.latent[0].numpy(), block=1))
    change = np.mean(per_column, axis=0)
    means = np.array([change[i * 4 : (i + 1) * 4].mean() for i in range(8)])  # 4 latent columns each
    assert np.all(np.diff(means) > 0), means
    # the step rule at 4 steps has 4 starts for 8 strengths
    starts = step_bands(np.array(strengths), 1.0, 4)
    assert len(set(starts.tolist())) == 4
