"""The contract of the library, checked through real sampling loops driving a real (random-weight) network, with the
injection on every model call: see tests/sampling_loops.py for the loops."""

import numpy as np
import pytest
import torch
from sampling_loops import CHURN_LOOPS, FAMILIES, TinyNet, differential, img2img, noise_space

from lib_diffdiff import img2img_t_enc

STEPS = 12
H = W = 12


@pytest.fixture(scope="module")
def net():
    return TinyNet(seed=3)


@pytest.fixture(scope="module")
def latents():
    g = torch.Generator().manual_seed(11)
    x0 = torch.randn(2, 4, H, W, generator=g) * 0.8
    noise = torch.randn(2, 4, H, W, generator=g)
    return x0, noise


def gradient_map() -> np.ndarray:
    """Columns of 8-bit grey levels 0, 23, 46, ... 253 (one level per latent column), as k/255 in float64."""
    levels = np.round(np.linspace(0, 253, W)).astype(int)
    return np.tile(levels / 255.0, (H, 1))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level,strength", [(255, 1.0), (204, 1.0), (128, 1.0), (77, 1.0), (255, 0.37)])
def test_constant_map_is_img2img_at_that_strength(net, latents, family, level, strength):
    x0, noise = latents
    v = level / 255.0 * strength
    reference = img2img(family, net, x0, noise, v, STEPS)
    run, schedule = differential(family, net, x0, noise, np.full((H, W), level / 255.0), strength, STEPS)
    assert schedule.effective_strength == v
    assert run.levels == reference.levels
    assert torch.equal(run.latent, reference.latent)
    assert not torch.equal(run.latent, x0)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_change_pixels_end_exactly_at_the_original(net, latents, family):
    x0, noise = latents
    m = gradient_map()
    m[: H // 2, :] = 0.0  # top half keeps, bottom half is a gradient
    run, schedule = differential(family, net, x0, noise, m, 1.0, STEPS)
    keep = torch.from_numpy(m == 0.0).expand_as(x0[:, :1]).expand_as(x0)
    assert torch.equal(run.latent[keep], x0[keep])  # both images of the batch, each on its own original
    changed = (run.latent - x0).abs().amax(dim=1)[:, m > 0.5]
    assert bool((changed > 1e-3).all()), "strongly changed pixels should not stay on the original"


@pytest.mark.parametrize("family", FAMILIES)
def test_masks_nested_and_each_pixel_freed_where_img2img_of_its_strength_starts(net, latents, family):
    x0, noise = latents
    m = gradient_map()
    run, schedule = differential(family, net, x0, noise, m, 1.0, STEPS)
    held = torch.stack([h[0, 0] for h in run.held])  # [calls, H, W]
    for before, after in zip(held, held[1:]):
        assert not bool((after & ~before).any()), "a freed pixel was held again"
    for col in range(W):
        v = m[0, col]
        ref = img2img(family, net, x0, noise, v, STEPS) if v > 0 else None
        column = held[:, :, col]
        assert bool((column == column[:, :1]).all())
        free_calls = (~column[:, 0]).nonzero().flatten().tolist()
        if ref is None or not ref.levels:
            assert free_calls == [], f"column {col} (v={v:.3f}) must never be freed"
        else:
            assert free_calls, f"column {col} (v={v:.3f}) was never freed"
            first_free = run.levels[free_calls[0]]
            assert first_free == pytest.approx(ref.levels[0], rel=1e-6), f"column {col}, v={v:.3f}"


@pytest.mark.parametrize("family", FAMILIES)
def test_held_pixels_enter_the_model_as_the_noised_original(net, latents, family):
    x0, noise = latents
    run, _ = differential(family, net, x0, noise, gradient_map(), 1.0, STEPS)
    space = noise_space(family)
    for level, held, (_, x_in, _) in zip(run.levels, run.held, run.inputs):
        hold = held.expand_as(x_in)
        assert bool(hold.any())
        assert torch.equal(x_in[hold], space.noised(x0, noise, level)[hold])


@pytest.mark.parametrize("family", ["euler", "heun", "dpmpp_2m", "flow_euler"])
def test_held_predictions_keep_the_sampler_on_the_noised_original(net, latents, family):
    """Deterministic samplers, fed the held prediction, step a held pixel along the noised original by themselves:
    the sampler's own latent (before the next injection) already sits there, up to float rounding."""
    x0, noise = latents
    run, _ = differential(family, net, x0, noise, gradient_map(), 1.0, STEPS)
    space = noise_space(family)
    checked = 0
    for level, held, (x, _, _) in zip(run.levels, run.held, run.inputs):
        hold = held.expand_as(x)
        if bool(hold.any()):
            torch.testing.assert_close(x[hold], space.noised(x0, noise, level)[hold], atol=2e-4, rtol=0)
            checked += 1
    assert checked >= 3


def test_held_eps_predicts_the_original_from_the_samplers_own_latent(net, latents):
    """Timestep samplers turn eps into an x0 prediction with their own latent (which on A1111's first img2img call
    sits one timestep above the level it reports): held pixels must predict exactly the original there."""
    x0, noise = latents
    run, _ = differential("ddim", net, x0, noise, gradient_map(), 1.0, STEPS)
    space = noise_space("ddim")
    for level, held, (x, _, eps) in zip(run.levels, run.held, run.inputs):
        a = space.alpha_bar(level)
        pred_x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
        hold = held.expand_as(x)
        torch.testing.assert_close(pred_x0[hold], x0[hold], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("top", [1.0, 0.6, 0.3])
def test_skipping_makes_as_many_calls_as_img2img_at_the_largest_strength(net, latents, family, top):
    x0, noise = latents
    m = gradient_map() / gradient_map().max() * top
    run, schedule = differential(family, net, x0, noise, m, 1.0, STEPS)
    reference = img2img(family, net, x0, noise, float(m.max()), STEPS)
    assert len(run.levels) == len(reference.levels)
    assert schedule.run_t_enc == img2img_t_enc(float(m.max()), STEPS)
    if top < 1.0:
        assert len(run.levels) < len(img2img(family, net, x0, noise, 1.0, STEPS).levels)


def test_level_rising_again_never_holds_a_freed_pixel(latents):
    """Restart-style sampling: the level goes down, back up, and down again."""
    from lib_diffdiff import DifferentialInjector, SigmaSpace, plan_schedule
    from lib_diffdiff.core.noise_schedules import karras_sigmas
    from lib_diffdiff.core.schedule import kdiffusion_start_levels

    x0, noise = latents
    sigmas = karras_sigmas(STEPS)
    schedule = plan_schedule(gradient_map(), kdiffusion_start_levels(sigmas, STEPS), STEPS)
    injector = DifferentialInjector(x0, noise, schedule, SigmaSpace())
    seen = []
    for level in [14.0, 6.0, 2.0, 9.0, 12.0, 1.0, 0.5, 3.0, 0.1]:
        x = torch.randn_like(x0)
        x_in = injector.before_model(x, torch.tensor([level, level]))
        held = injector.held_mask()[0, 0].clone()
        seen.append(held)
        # held pixels carry the original noised to this call's level; free ones the sampler's own latent
        hold = held.expand_as(x_in[0])
        assert torch.equal(x_in[0][hold], (x0[0] + noise[0] * level)[hold])
        assert torch.equal(x_in[0][~hold], x[0][~hold])
    for before, after in zip(seen, seen[1:]):
        assert not bool((after & ~before).any())


# ---- samplers that call the model above the schedule (churn) and on resized latents (reForge's Dy / SMEA) ----


@pytest.mark.parametrize("family", list(CHURN_LOOPS))
@pytest.mark.parametrize("level,strength", [(255, 1.0), (128, 1.0), (255, 0.37)])
def test_churn_samplers_with_a_constant_map_are_img2img(net, latents, family, level, strength):
    x0, noise = latents
    v = level / 255.0 * strength
    reference = img2img(family, net, x0, noise, v, STEPS)
    assert reference.levels[0] > img2img_levels_start(v), "the sampler's first call is above the schedule"
    run, _ = differential(family, net, x0, noise, np.full((H, W), level / 255.0), strength, STEPS)
    assert run.levels == reference.levels
    assert torch.equal(run.latent, reference.latent)


def img2img_levels_start(v: float) -> float:
    from lib_diffdiff.core.noise_schedules import karras_sigmas

    return float(karras_sigmas(STEPS)[STEPS - img2img_t_enc(v, STEPS) - 1])


@pytest.mark.parametrize("family", list(CHURN_LOOPS))
def test_held_pixels_on_resized_calls_are_the_noised_original_resized_as_the_sampler_resizes(net, latents, family):
    x0, noise = latents
    m = gradient_map()
    m[: H // 2, :] = 0.0
    run, _ = differential(family, net, x0, noise, m, 1.0, STEPS)
    space = noise_space(family)

    def as_sampler_resizes(t: torch.Tensor, size: int) -> torch.Tensor:
        if size == H // 2:  # Dy: the odd pixel of each 2x2 block
            return t[:, :, 1::2, 1::2]
        return torch.nn.functional.interpolate(t, scale_factor=(1.25, 1.25), mode="nearest-exact")  # SMEA

    sizes = set()
    for level, held, (_, x_in, _) in zip(run.levels, run.held, run.inputs, strict=True):
        size = x_in.shape[-1]
        sizes.add(size)
        expected = space.noised(x0, noise, level)
        if size != W:
            expected = as_sampler_resizes(expected, size)
            held = as_sampler_resizes(held.to(torch.float32), size) > 0.5
        hold = held.expand_as(x_in)
        assert bool(hold.any())
        assert torch.equal(x_in[hold], expected[hold])
    assert len(sizes) > 1, "the loop made resized calls"
    keep = torch.from_numpy(m == 0.0).expand_as(x0)
    assert torch.equal(run.latent[keep], x0[keep])
    assert bool(((run.latent - x0).abs().amax(dim=1)[:, m > 0.5] > 1e-3).all())
