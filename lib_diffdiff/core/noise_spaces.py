"""The three ways samplers put noise on a latent, so host adapters never re-derive the formulas.

A *level* is the number a sampler hands its denoiser on each call, in the sampler's own units: sigma for
k-diffusion and flow samplers, the (possibly fractional) timestep t for the WebUI's DDIM/PLMS/UniPC. In all three
a larger level means more noise, so levels are compared directly.

Each space answers two questions about a *held* pixel: what is the original latent noised to this level, and what
model prediction keeps the pixel on that trajectory.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class NoiseSpace(Protocol):
    """What the injection needs to know about a sampler's noise parameterisation."""

    name: str
    predicts_x0: bool
    """Whether the denoiser returns x0 (sigma and flow spaces) rather than eps (VP timesteps)."""

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, level: float) -> torch.Tensor:
        """The original latent ``x0`` noised with ``noise`` to ``level``."""
        ...

    def held_prediction(self, x0: torch.Tensor, x: torch.Tensor, level: float) -> torch.Tensor:
        """The model output that keeps a pixel whose sampler latent is ``x`` on the noised-original trajectory."""
        ...


class SigmaSpace:
    """k-diffusion: x = x0 + sigma * eps; the denoiser returns its x0 prediction."""

    name = "sigma"
    predicts_x0 = True

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, level: float) -> torch.Tensor:
        return x0 + noise * level  # the WebUI's own order of operations (x + noise * sigma_sched[0])

    def held_prediction(self, x0: torch.Tensor, x: torch.Tensor, level: float) -> torch.Tensor:
        return x0


class FlowSpace:
    """Rectified flow (Flux in Forge, SD3 in A1111 1.10): x = sigma * eps + (1 - sigma) * x0, sigma in [0, 1]; the
    denoiser returns x0."""

    name = "flow"
    predicts_x0 = True

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, level: float) -> torch.Tensor:
        return noise * level + x0 * (1.0 - level)  # Forge's noise_scaling for flow models

    def held_prediction(self, x0: torch.Tensor, x: torch.Tensor, level: float) -> torch.Tensor:
        return x0


class VPTimesteps:
    """Variance-preserving timesteps (A1111's DDIM, PLMS, UniPC): x = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and the
    model returns eps. ``abar`` of a fractional t (UniPC) is interpolated in log space, as its own schedule does."""

    name = "vp-timesteps"
    predicts_x0 = False

    def __init__(self, alphas_cumprod: torch.Tensor | list[float]):
        table = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten().cpu()
        if table.numel() < 2 or not bool(((table > 0) & (table <= 1)).all()):
            raise ValueError("alphas_cumprod must be a table of values in (0, 1]")
        self._log_table = table.log()

    def alpha_bar(self, t: float) -> float:
        t = min(max(float(t), 0.0), float(self._log_table.numel() - 1))
        lo = math.floor(t)
        hi = min(lo + 1, self._log_table.numel() - 1)
        w = t - lo
        return math.exp(float(self._log_table[lo]) * (1.0 - w) + float(self._log_table[hi]) * w)

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, level: float) -> torch.Tensor:
        a = self.alpha_bar(level)
        return x0 * math.sqrt(a) + noise * math.sqrt(1.0 - a)

    def held_prediction(self, x0: torch.Tensor, x: torch.Tensor, level: float) -> torch.Tensor:
        # eps = (x - sqrt(a) x0) / sqrt(1 - a), from the sampler's own x: exact even where the sampler's x sits at a
        # slightly different noise level than the timestep it reports (the WebUI's first img2img call does).
        a = self.alpha_bar(level)
        return (x - x0 * math.sqrt(a)) / math.sqrt(1.0 - a)
