"""Reference sampling loops for the tests, in the notation of k-diffusion's sampling.py, and the img2img driver the
WebUI wraps around them. They drive a small real network with random weights.

Families: sigma-space (Euler, Euler ancestral, Heun, DPM++ 2M, DPM++ 2S ancestral), A1111-style DDIM in timestep
space (model returns eps; first call one timestep below the level the latent was noised to), and flow Euler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lib_diffdiff import (
    DifferentialInjector,
    FlowSpace,
    SigmaSpace,
    VPTimesteps,
    img2img_t_enc,
    kdiffusion_start_levels,
    pixel_strengths,
    plan_schedule,
    timestep_start_levels,
)
from lib_diffdiff.core.noise_schedules import a1111_timesteps, karras_sigmas, sd_alphas_cumprod

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TinyNet(torch.nn.Module):
    """A conv net conditioned on the noise level; random weights, so outputs vary with position and level."""

    def __init__(self, channels: int = 4, hidden: int = 24, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = torch.nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(hidden, channels, 3, padding=1)
        self.embed = torch.nn.Linear(1, hidden)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.6 / math.sqrt(max(p[0].numel(), 1))))

    @torch.no_grad()
    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.silu(self.conv1(x) + self.embed(c_noise.reshape(-1, 1))[:, :, None, None])
        h = torch.nn.functional.silu(self.conv2(h))
        return self.conv3(h)


def sigma_denoiser(net: TinyNet) -> Model:
    """eps-parameterised model in sigma space (as k-diffusion's CompVisDenoiser): returns x0."""

    def denoise(x, sigma):
        s = sigma.reshape(-1, 1, 1, 1)
        eps = net(x / (s**2 + 1).sqrt(), sigma.log())
        return x - eps * s

    return denoise


def eps_model(net: TinyNet) -> Model:
    """Timestep model (A1111's CompVisTimestepsDenoiser): returns eps."""
    return lambda x, t: net(x, t / 1000.0)


def flow_denoiser(net: TinyNet) -> Model:
    """Flow model (Forge's CONST): the network predicts the velocity, the denoiser returns x0 = x - sigma * v."""
    return lambda x, sigma: x - net(x, sigma) * sigma.reshape(-1, 1, 1, 1)


# ---- sigma-space loops (x0-returning model) ----


def to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def sample_euler(model, x, sigmas, generator=None):
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


def get_ancestral_step(sigma_from, sigma_to, eta=1.0):
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - sigma_up**2) ** 0.5, sigma_up


def sample_euler_ancestral(model, x, sigmas, generator):
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1])
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + torch.randn(x.shape, generator=generator, dtype=x.dtype) * sigma_up
    return x


def sample_heun(model, x, sigmas, generator=None):
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            denoised_2 = model(x_2, sigmas[i + 1] * s_in)
            x = x + (d + to_d(x_2, sigmas[i + 1], denoised_2)) / 2 * dt
    return x


def sample_dpmpp_2m(model, x, sigmas, generator=None):
    s_in = x.new_ones([x.shape[0]])

    def t_fn(sigma):
        return -sigma.log()

    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        t, t_next = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
        h = t_next - t
        if old_denoised is None or sigmas[i + 1] == 0:
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * denoised
        else:
            r = (t - t_fn(sigmas[i - 1])) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


def sample_dpmpp_2s_ancestral(model, x, sigmas, generator):
    """Calls the model at a midpoint level that is on no schedule: tests that holds follow levels, not counters."""
    s_in = x.new_ones([x.shape[0]])

    def sigma_fn(t):
        return t.neg().exp()

    def t_fn(sigma):
        return sigma.log().neg()

    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1])
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = t_fn(sigmas[i]), t_fn(sigma_down)
            h = t_next - t
            s = t + h / 2
            x_2 = (sigma_fn(s) / sigma_fn(t)) * x - (-h / 2).expm1() * denoised
            denoised_2 = model(x_2, sigma_fn(s) * s_in)
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + torch.randn(x.shape, generator=generator, dtype=x.dtype) * sigma_up
    return x


SIGMA_LOOPS = {
    "euler": sample_euler,
    "euler_a": sample_euler_ancestral,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2s_a": sample_dpmpp_2s_ancestral,
}


# ---- reForge's Euler Dy and Euler SMEA Dy (modules/sd_samplers_kdiffusion_smea.py, reForge 3b56b268) ----
# They add noise before every step ("churn": the model is called at sigma_hat = sigma * (1 + gamma), above the
# schedule), and some steps call the model on a resized latent: the odd pixels of every 2x2 block (Dy), or a
# nearest-exact 1.25x upscale (SMEA). Options at reForge's defaults: s_churn 0, s_tmin 0, s_noise 1.

CHURN_GAMMA = 2**0.5 - 1


def dy_sampling_step(x, model, dt, sigma_hat):
    batch_size, channels, m, n = x.shape[0], x.shape[1], x.shape[2] // 2, x.shape[3] // 2
    a_list = x.unfold(2, 2, 2).unfold(3, 2, 2).contiguous().view(batch_size, channels, m * n, 2, 2)
    c = a_list[:, :, :, 1, 1].view(batch_size, channels, m, n)
    denoised = model(c, sigma_hat * c.new_ones([c.shape[0]]))
    c = c + to_d(c, sigma_hat, denoised) * dt
    a_list[:, :, :, 1, 1] = c.view(batch_size, channels, m * n, 1, 1)[:, :, :, 0, 0]
    return a_list.view(batch_size, channels, m, n, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(x.shape)


def smea_sampling_step(x, model, dt, sigma_hat):
    m, n = x.shape[2], x.shape[3]
    x = torch.nn.functional.interpolate(input=x, scale_factor=(1.25, 1.25), mode="nearest-exact")
    denoised = model(x, sigma_hat * x.new_ones([x.shape[0]]))
    x = x + to_d(x, sigma_hat, denoised) * dt
    return torch.nn.functional.interpolate(input=x, size=(m, n), mode="nearest-exact")


def sample_euler_dy(model, x, sigmas, generator, smea=False):
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        sigma_hat = sigmas[i] * (CHURN_GAMMA + 1)
        dt = sigmas[i + 1] - sigma_hat
        x = x - eps * (sigma_hat**2 - sigmas[i] ** 2) ** 0.5
        denoised = model(x, sigma_hat * s_in)
        d = to_d(x, sigma_hat, denoised)
        if smea:
            x = x + d * dt
            if sigmas[i + 1] > 0:
                if i == 1:
                    x = dy_sampling_step(x, model, dt, sigma_hat)
                if i == 0:
                    x = smea_sampling_step(x, model, dt, sigma_hat)
        else:
            if sigmas[i + 1] > 0 and i // 2 == 1:
                x = dy_sampling_step(x, model, dt, sigma_hat)
            x = x + d * dt
    return x


CHURN_LOOPS = {
    "euler_dy": sample_euler_dy,
    "euler_smea_dy": lambda model, x, sigmas, generator: sample_euler_dy(model, x, sigmas, generator, smea=True),
}


# ---- A1111 DDIM (timestep space, eps-returning model) ----


def sample_ddim(model, x, timesteps, alphas_cumprod):
    """A1111's sd_samplers_timesteps_impl.ddim with eta = 0."""
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))]
    s_in = x.new_ones((x.shape[0],))
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        e_t = model(x, timesteps[index].item() * s_in)
        a_t = alphas[index].item() * s_x
        a_prev = alphas_prev[index].item() * s_x
        pred_x0 = (x - (1 - a_t).sqrt() * e_t) / a_t.sqrt()
        x = a_prev.sqrt() * pred_x0 + (1.0 - a_prev).sqrt() * e_t
    return x


ALPHAS = sd_alphas_cumprod().to(torch.float32)
FAMILIES = [*SIGMA_LOOPS, "ddim", "flow_euler"]


def full_schedule(family: str, steps: int) -> torch.Tensor:
    if family == "ddim":
        return a1111_timesteps(steps)
    if family == "flow_euler":
        shift = 3.0  # Flux-style shifted schedule
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        return (shift * t / (1 + (shift - 1) * t)).to(torch.float32)
    return karras_sigmas(steps).to(torch.float32)


def start_levels(family: str, steps: int) -> list:
    sched = full_schedule(family, steps)
    return timestep_start_levels(sched) if family == "ddim" else kdiffusion_start_levels(sched, steps)


def noise_space(family: str):
    if family == "ddim":
        return VPTimesteps(ALPHAS)
    if family == "flow_euler":
        return FlowSpace()
    return SigmaSpace()


@dataclass
class Run:
    latent: torch.Tensor
    levels: list  # level of each model call, in order
    held: list  # held mask after each call (differential runs only)
    inputs: list  # (the sampler's x, the model's input, the returned prediction) of each call (differential runs)
    partial: list  # partly free mask after each call, None when there is none (continuous differential runs)


def img2img(
    family: str,
    net: TinyNet,
    x0: torch.Tensor,
    noise: torch.Tensor,
    strength: float,
    steps: int,
    injector: DifferentialInjector | None = None,
    seed: int = 7,
) -> Run:
    """img2img the way the WebUI runs it (setup_img2img_steps, then the sampler over the schedule's tail), with
    every model call optionally wrapped by the injector."""
    levels, held, inputs, partial = [], [], [], []
    t_enc = img2img_t_enc(strength, steps)
    generator = torch.Generator().manual_seed(seed)
    if family == "ddim":
        inner = eps_model(net)
    elif family == "flow_euler":
        inner = flow_denoiser(net)
    else:
        inner = sigma_denoiser(net)

    def model(x, level):
        levels.append(float(level.reshape(-1)[0]))
        if injector is None:
            return inner(x, level)
        x_in = injector.before_model(x, level)
        out = injector.after_model(inner(x_in, level), x, level)
        held.append(injector.held_mask().clone())
        partial.append(None if injector.partial_mask() is None else injector.partial_mask().clone())
        inputs.append((x, x_in, out))
        return out

    sched = full_schedule(family, steps)
    if family == "ddim":
        a = ALPHAS[sched[t_enc]]
        x = x0 * torch.sqrt(a) + noise * torch.sqrt(1 - a)
        latent = sample_ddim(model, x, sched[:t_enc], ALPHAS)
    else:
        sigmas = sched[steps - t_enc - 1 :]
        if family == "flow_euler":
            x = noise * sigmas[0] + x0 * (1.0 - sigmas[0])
            latent = sample_euler(model, x, sigmas)
        else:
            x = x0 + noise * sigmas[0]
            latent = {**SIGMA_LOOPS, **CHURN_LOOPS}[family](model, x, sigmas, generator)
    if injector is not None:
        latent = injector.finish(latent)
    return Run(latent, levels, held, inputs, partial)


def differential(
    family: str,
    net: TinyNet,
    x0: torch.Tensor,
    noise: torch.Tensor,
    latent_map,
    strength: float,
    steps: int,
    continuous: bool = False,
    seed: int = 7,
) -> tuple[Run, object]:
    """A differential run: the schedule from the map, img2img at the effective strength, injection on every call."""
    levels = start_levels(family, steps)
    schedule = plan_schedule(pixel_strengths(latent_map, strength), levels, steps, continuous=continuous)
    injector = DifferentialInjector(x0, noise, schedule, noise_space(family))
    return img2img(family, net, x0, noise, schedule.effective_strength, steps, injector, seed), schedule
