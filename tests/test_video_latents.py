"""Video-VAE latents, [B, C, T, h, w] (Forge Neo's Qwen-Image and Anima, T = 1 for an image), whose img2img hands the
sampler one original for the whole batch: the injection on them, through a real flow-Euler loop, must give what the
same run gives on [B, C, h, w] latents, keep each image's black pixels exactly on the original, and leave a constant
map img2img."""

import numpy as np
import pytest
import torch
from sampling_loops import TinyNet, full_schedule, sample_euler, start_levels

from lib_diffdiff import DifferentialInjector, FlowSpace, img2img_t_enc, pixel_strengths, plan_schedule

STEPS = 8
B, C, H, W = 3, 4, 10, 12


@pytest.fixture(scope="module")
def net():
    return TinyNet(channels=C, seed=5)


def video_flow_model(net: TinyNet):
    """A flow model on [B, C, 1, h, w]: velocity from the frame, x0 = x - sigma * v (Neo's CONST predictor)."""
    return lambda x, sigma: x - net(x[:, :, 0], sigma).unsqueeze(2) * sigma.reshape(-1, 1, 1, 1, 1)


def image_flow_model(net: TinyNet):
    return lambda x, sigma: x - net(x, sigma) * sigma.reshape(-1, 1, 1, 1)


def run(model, x0, noise, latent_map, strength: float | None = None):
    """img2img as Neo runs it (one original broadcast against the batch's noise at the first level), with the
    injection on every call when a map is given; returns (latent, held masks seen)."""
    sched = full_schedule("flow_euler", STEPS)
    injector, held = None, []
    if latent_map is not None:
        schedule = plan_schedule(
            pixel_strengths(latent_map, 1.0), start_levels("flow_euler", STEPS), STEPS, continuous=False
        )
        strength = schedule.effective_strength
        injector = DifferentialInjector(x0, noise, schedule, FlowSpace())
    sigmas = sched[STEPS - img2img_t_enc(strength, STEPS) - 1 :]
    x = noise * sigmas[0] + x0 * (1.0 - sigmas[0])

    def call(x, sigma):
        if injector is None:
            return model(x, sigma)
        out = injector.after_model(model(injector.before_model(x, sigma), sigma), x, sigma)
        held.append(injector.held_mask().clone())
        return out

    latent = sample_euler(call, x, sigmas)
    return (latent if injector is None else injector.finish(latent)), held


@pytest.fixture(scope="module")
def latents():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(1, C, 1, H, W, generator=g) * 0.8  # one original, as Neo's encode_first_stage keeps
    noise = torch.randn(B, C, 1, H, W, generator=g)
    return x0, noise


def ramp() -> np.ndarray:
    m = np.tile(np.linspace(0.0, 1.0, W), (H, 1))
    m[:, :3] = 0.0
    return m


def test_a_video_latent_run_equals_the_image_latent_run(net, latents):
    x0, noise = latents
    video, held = run(video_flow_model(net), x0, noise, ramp())
    image, _ = run(image_flow_model(net), x0[:, :, 0].expand(B, -1, -1, -1), noise[:, :, 0], ramp())
    assert video.shape == (B, C, 1, H, W)
    assert torch.equal(video[:, :, 0], image)
    assert held and held[0].any() and not held[-1].all()


def test_black_pixels_end_exactly_on_the_one_original_in_every_image(net, latents):
    x0, noise = latents
    video, _ = run(video_flow_model(net), x0, noise, ramp())
    assert torch.equal(video[..., :3], x0[..., :3].expand(B, -1, -1, -1, -1))
    changed = (video - x0).abs().amax(dim=(1, 2))[:, :, W // 2 :]
    assert bool((changed > 1e-3).all()), "pixels of large strength are generated"
    assert not torch.equal(video[0], video[1]), "each image of the batch has its own noise"


@pytest.mark.parametrize("level", [1.0, 0.6])
def test_a_constant_map_is_img2img_on_video_latents(net, latents, level):
    x0, noise = latents
    plain, _ = run(video_flow_model(net), x0, noise, None, strength=level)
    out, _ = run(video_flow_model(net), x0, noise, np.full((H, W), level))
    assert torch.equal(out, plain)


def test_a_batch_original_that_does_not_broadcast_is_refused(latents):
    x0, noise = latents
    schedule = plan_schedule(pixel_strengths(ramp(), 1.0), start_levels("flow_euler", STEPS), STEPS)
    with pytest.raises(ValueError, match="differ"):
        DifferentialInjector(torch.zeros(2, C, 1, H, W), noise, schedule, FlowSpace())
    with pytest.raises(ValueError, match="schedule is for"):
        DifferentialInjector(x0[..., :-1], noise[..., :-1], schedule, FlowSpace())
