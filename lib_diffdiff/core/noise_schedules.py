"""Standard noise schedules, for the preview, the CLI and tests (a host hands over its own schedule instead)."""

from __future__ import annotations

import math

import torch

SD15_SIGMA_MIN = 0.0292
SD15_SIGMA_MAX = 14.6146


def karras_sigmas(steps: int, sigma_min: float = SD15_SIGMA_MIN, sigma_max: float = SD15_SIGMA_MAX, rho: float = 7.0):
    """Karras et al. (2022) schedule, ``steps`` + 1 values ending at 0 (as k-diffusion's get_sigmas_karras)."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def exponential_sigmas(steps: int, sigma_min: float = SD15_SIGMA_MIN, sigma_max: float = SD15_SIGMA_MAX):
    """Log-linear schedule, ``steps`` + 1 values ending at 0 (as k-diffusion's get_sigmas_exponential)."""
    sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), steps, dtype=torch.float64).exp()
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def sd_alphas_cumprod(n: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion 1.x/2.x/XL's "scaled linear" abar table."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def a1111_timesteps(steps: int) -> torch.Tensor:
    """The timesteps of A1111's DDIM/PLMS/UniPC (CompVisSampler.get_timesteps), ascending: 1, 1 + 1000 // steps, ..."""
    return torch.clip(torch.arange(0, 1000, 1000 // steps) + 1, 0, 999)
