"""CFG++ samplers (Forge Neo's Euler CFG++, Euler a CFG++, DPM++ 2M CFG++) step with the unconditional prediction,
which they read through a post-CFG function in the ``model_options`` they hand the denoiser: held pixels must see the
held prediction there too, or they drift off the noised original and a pixel freed later starts from the wrong
latent. A fake of Neo's call sequence (its sampling_function and k-diffusion's sample_euler_cfg_pp for an eps model),
driven through the adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_webui import setup_img2img_steps
from test_glue import adapter_p, gradient_map

from lib_diffdiff.core.noise_schedules import karras_sigmas
from lib_diffdiff.webui.adapter import DifferentialSampling, plan_run


class PostCFGDenoiser(torch.nn.Module):
    """Neo's CFGDenoiser.forward -> sampling_function_inner: cond and uncond x0 predictions, CFG, then the
    model_options' post-CFG functions with the predictions in their arguments."""

    def __init__(self):
        super().__init__()
        self.sampler_x = []  # the sampler's own latent at each call (before the injection)
        self.levels = []

    def forward(self, x, sigma, model_options=None):
        s = sigma.reshape(-1, 1, 1, 1)
        cond, uncond = x * 0.3 + 0.1 * s, x * 0.5 - 0.2 * s
        denoised = uncond + (cond - uncond) * 2.0
        for fn in (model_options or {}).get("sampler_post_cfg_function", []):
            denoised = fn({"denoised": denoised, "cond_denoised": cond, "uncond_denoised": uncond, "input": x})
        return denoised


class EulerCFGppSampler:
    """k-diffusion's sample_euler_cfg_pp for an eps model (alpha = 1): x' = denoised + sigma' (x - uncond) / sigma."""

    def __init__(self):
        self.model_wrap_cfg = PostCFGDenoiser()

    def get_sigmas(self, p, steps):
        return karras_sigmas(steps).float()

    def sample_img2img(self, p, x, noise, *args, steps=None, **kwargs):
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)[steps - t_enc - 1 :]
        x = x + noise * sigmas[0]
        uncond = None

        def post_cfg(args):
            nonlocal uncond
            uncond = args["uncond_denoised"]
            return args["denoised"]

        model_options = {"sampler_post_cfg_function": [post_cfg]}
        for i in range(len(sigmas) - 1):
            self.model_wrap_cfg.sampler_x.append(x.clone())
            self.model_wrap_cfg.levels.append(float(sigmas[i]))
            denoised = self.model_wrap_cfg(x, sigmas[i] * x.new_ones(x.shape[0]), model_options=model_options)
            x = denoised + sigmas[i + 1] * (x - uncond) / sigmas[i]
        return x


def test_held_pixels_of_a_cfg_pp_sampler_stay_on_the_noised_original_until_freed():
    sampler = EulerCFGppSampler()
    p, args = adapter_p(sampler, gradient_map())
    sampling = DifferentialSampling(p, plan_run(p, args), setup_img2img_steps)
    sampling.install()
    noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(5))
    out = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
    free_level = sampling.last_injector.schedule.free_level[0, 0]
    later = (free_level < sampler.model_wrap_cfg.levels[0]) & (free_level > 0)  # freed after the first call
    assert later.any()
    checked = 0
    for level, x in zip(sampler.model_wrap_cfg.levels, sampler.model_wrap_cfg.sampler_x, strict=True):
        held = later & (free_level < level * (1 - 1e-4))  # still held at this call: on the noised original
        first_free = later & torch.isclose(
            free_level, torch.tensor(level, dtype=free_level.dtype), rtol=1e-4
        )  # freed at this call: starts there
        for region in (held, first_free):
            if region.any():
                expected = p.init_latent + noise * level
                region4 = region.expand_as(x[0])
                assert torch.allclose(x[0][region4], expected[0][region4], atol=1e-5), f"drifted at level {level}"
                checked += 1
    assert checked >= 3
    keep = torch.from_numpy(sampling.plan.latent_map == 0).expand_as(out[0])
    assert torch.equal(out[0][keep], p.init_latent[0][keep])
    assert "forward" not in sampler.model_wrap_cfg.__dict__


@pytest.mark.parametrize("value", [153, 255])
def test_a_constant_map_on_a_cfg_pp_sampler_is_img2img_bit_for_bit(value):
    p, args = adapter_p(EulerCFGppSampler(), np.full((32, 64), value), strength=1.0)
    noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(6))
    p.denoising_strength = value / 255
    plain = EulerCFGppSampler().sample_img2img(p, p.init_latent, noise)
    p.denoising_strength = 1.0
    DifferentialSampling(p, plan_run(p, args), setup_img2img_steps).install()
    assert torch.equal(p.sampler.sample_img2img(p, p.init_latent, noise), plain)
