"""The WebUI side of per-call conditioning for inpainting models: record the conditioning the host computes in
``p.init`` and the function it used, so that :class:`lib_diffdiff.core.conditioning.InpaintConditioning` can build
each call's conditioning with the host's own code. Duck-typed, imports nothing of the WebUI."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..core.conditioning import InpaintConditioning, is_inpainting_conditioning


class ConditioningRecorder:
    """Records the image conditioning that ``p.init`` computes (``p.img2img_image_conditioning``, the same method on
    AUTOMATIC1111 and Forge), so that an inpainting model can be conditioned per call with the host's own function.
    Use around the host's ``p.init``; the method is patched on this ``p`` only and restored on exit."""

    def __init__(self, p: Any):
        self.p = p
        self.call: tuple | None = None
        method = getattr(type(p), "img2img_image_conditioning", None)
        self.bound = None if method is None else method.__get__(p)

    def __enter__(self) -> ConditioningRecorder:
        if self.bound is not None:
            bound = self.bound

            def record(source_image, latent_image, image_mask=None, round_image_mask=True):
                result = bound(source_image, latent_image, image_mask, round_image_mask)
                self.call = (source_image, latent_image, image_mask, round_image_mask, result)
                return result

            self.p.img2img_image_conditioning = record
        return self

    def __exit__(self, *exc: Any) -> None:
        self.p.__dict__.pop("img2img_image_conditioning", None)

    def inpaint_conditioning(self, exact: bool = False) -> InpaintConditioning | None:
        """Per-call conditioning when ``p.init`` conditioned an inpainting model, else None (other models); ``exact``:
        one encode per distinct free set, else blended (see :mod:`lib_diffdiff.core.conditioning`)."""
        if self.call is None:
            return None
        source, latent, image_mask, round_mask, result = self.call
        if not is_inpainting_conditioning(result, latent):
            return None
        bound = self.bound

        def encode(mask: torch.Tensor) -> torch.Tensor:
            return bound(source, latent, mask, False)

        mask = conditioning_mask(image_mask, round_mask, source)
        synchronize = device_synchronize(result.device) if profiling() else None
        original = latent if latent_is_encode(self.p, image_mask) else None
        return InpaintConditioning(result, mask, encode, exact, synchronize, original)


def latent_is_encode(p: Any, image_mask: Any) -> bool:
    """Is the latent the host handed its conditioning function (``p.init_latent``) the encode of the very image the
    conditioning blanks, through the same encoder? Both hosts' ``Img2Img.init`` encode the image, then may change the
    latent: latent noise or latent nothing in the inpaint mask (``inpainting_fill`` 2, 3), latent upscale
    (``resize_mode`` 3); an approximate encoder (TAESD) writes ``VAE Encoder`` into the infotext. Then it is not."""
    if getattr(p, "resize_mode", 0) == 3:
        return False
    if image_mask is not None and getattr(p, "inpainting_fill", 1) in (2, 3):
        return False
    return "VAE Encoder" not in (getattr(p, "extra_generation_params", None) or {})


PROFILE_VARIABLE = "DIFFDIFF_PROFILE"
"""Environment variable of the WebUI process: set (not 0), each run on an inpainting model writes the seconds its
per-step conditioning took into the infotext (``infotext.CONDITIONING_SECONDS``), timed with the device synchronised.
For ``benchmarks/bench_conditioning.py``; a user's runs write no timings."""


def profiling() -> bool:
    """Does this WebUI report its runs' own costs (:data:`PROFILE_VARIABLE`)?"""
    return os.environ.get(PROFILE_VARIABLE, "") not in ("", "0")


def device_synchronize(device: torch.device) -> Callable[[], None] | None:
    """The function that waits for ``device``'s queued work (None on the CPU, where nothing is queued)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return None


def conditioning_mask(image_mask: Any, round_mask: bool, source: torch.Tensor) -> torch.Tensor:
    """The mask the host's inpainting conditioning was built from, read as its ``inpainting_image_conditioning``
    reads it (PIL: grey / 255, rounded when asked; tensor: as is; none: the whole image), float [n, 1, H, W]."""
    if image_mask is None:
        return torch.ones(1, 1, *source.shape[-2:])
    if isinstance(image_mask, torch.Tensor):
        m = image_mask.detach().to("cpu", torch.float32)
    else:
        m = torch.from_numpy(np.asarray(image_mask.convert("L"), dtype=np.float32) / 255.0)[None, None]
        if round_mask:
            m = torch.round(m)
    return m.reshape(-1, 1, *m.shape[-2:])
