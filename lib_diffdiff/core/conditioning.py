"""Per-call conditioning of inpainting models (9-channel UNets: latent + mask + masked image's latent).

The host conditions such a model once per generation: "repaint the whole mask, here is the image with all of it
blanked". The injection, though, holds part of that area on the original at every call, so the model is asked to
invent pixels it is then shown. As the paper's authors do for these models (exx8/differential-diffusion issue #16),
each call gets its own conditioning: the mask channel is the set of pixels free at that call and the masked image is
the original with exactly those pixels blanked. The sets are nested and change only when a new threshold is passed,
so the exact conditioning encodes the masked image once per distinct free set, not once per call; a linear gradient
frees pixels at every step, and on 2 CPU cores an SD VAE encode costs about 0.4 of a UNet step with CFG (1.40x a
16-step run).

The blended conditioning (the default) costs no encode at all. Each latent pixel of the exact masked
image's latent is the encoder's output over the image pixels around it; if those pixels are blanked as in one of two
reference images, it equals that image's latent. The host's conditioning has every pixel of its region blanked, the
original image none (its latent is the host's init latent, the same image through the same encoder; one encode
where the host changed that latent: latent noise or nothing in the mask, latent upscale, an approximate encoder),
and a call's mask blanks a latent pixel's block exactly as the host's does
(free) or not at all (held). So the blend takes each latent pixel from the host's latent where the call frees it and
from the original's where it holds it: exact for an encoder of bounded receptive field wherever the whole field lies
on one side of the free set's edge, and the mask channel exact everywhere (the host samples it within each block).
The SD VAE's group norms and mid-block attention see the whole image, so a small difference spreads beyond the edge;
``benchmarks/bench_conditioning_error.py`` measures it.

Pure torch: the host's own function builds the conditioning from an image-resolution mask (``encode``), so the
masked image is blanked, weighted and encoded exactly as the host does it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

Encode = Callable[[torch.Tensor], torch.Tensor]
"""image-resolution mask [n, 1, H, W] in [0, 1] (1 = repaint) -> conditioning [B, 1 + C, h, w] (mask, latent)."""


def is_inpainting_conditioning(conditioning: object, latent: torch.Tensor) -> bool:
    """Is this the conditioning of an inpainting model for ``latent``: a mask channel beside a latent of its size?
    (Other models get a dummy [B, 5, 1, 1] tensor, instruct-pix2pix a bare latent, depth models one channel.)"""
    return (
        isinstance(conditioning, torch.Tensor)
        and conditioning.ndim == 4
        and conditioning.shape[1] == latent.shape[1] + 1
        and tuple(conditioning.shape[2:]) == tuple(latent.shape[2:])
    )


class InpaintConditioning:
    """The conditioning of each model call, from the pixels held at that call; one per generation."""

    def __init__(
        self,
        host: torch.Tensor,
        host_mask: torch.Tensor,
        encode: Encode,
        exact: bool = False,
        synchronize: Callable[[], None] | None = None,
        original_latent: torch.Tensor | None = None,
    ):
        """``host``: the host's own conditioning [B, 1 + C, h, w]. ``host_mask``: [1 | B, 1, H, W] in [0, 1], the
        image-resolution mask it was built from, as the host read it (after its own rounding; ones in the img2img
        tab); its non-zero pixels are the region the host lets change. ``encode``: the host's conditioning function
        for an image-resolution mask. ``exact``: encode every distinct free set; else blend the host's conditioning
        with the original image's per latent pixel. ``synchronize``: the device's (e.g.
        ``torch.cuda.synchronize``), to time the work on an asynchronous device (see :attr:`seconds`).
        ``original_latent``: the latent the host encoded the very same image into ([B, C, h, w], its init latent), when
        it is that: then the blend encodes nothing at all (see :meth:`original`); one of another shape is not used."""
        if host.ndim != 4 or host_mask.ndim != 4 or host_mask.shape[1] != 1:
            raise ValueError(f"conditioning {tuple(host.shape)} / mask {tuple(host_mask.shape)}: expected 4-d, 1 mask")
        self.host = host
        self.host_mask = host_mask.to(torch.float32)
        self.region = self.host_mask > 0
        self.encode = encode
        self.exact = exact
        self.encodes = 0
        """How many images were encoded: exact, one per distinct free set that differs from the host's; blended, the
        original's once, or none when the host's init latent is it."""
        self.changes = 0
        """How many times the conditioning handed to the model changed during the run (the first call counts)."""
        self.synchronize = synchronize
        self.seconds = 0.0
        """Wall-clock seconds spent in :meth:`for_call` (encodes, blends, the per-call checks): what per-step
        conditioning adds to the run, the model calls being the same either way. Timed inside the run, it shows the
        cost of one run, which two runs compared cannot do to a few per cent on a busy machine. On an asynchronous
        device (CUDA) it counts the queued work only when ``synchronize`` is given."""
        self._last_free: torch.Tensor | None = None
        self._last: torch.Tensor | None = None
        self._original: torch.Tensor | None = None
        if original_latent is not None and original_latent.shape == (host.shape[0], host.shape[1] - 1, *host.shape[2:]):
            mask = original_latent.new_zeros(original_latent.shape[0], 1, *original_latent.shape[2:])
            self._original = torch.cat([mask, original_latent], dim=1).to(host)

    def step_mask(self, held: torch.Tensor) -> torch.Tensor:
        """Image-resolution mask of this call: inside the host's region, the latent pixels not held, each as its
        block of image pixels."""
        free = F.interpolate((~held).to(torch.float32), size=tuple(self.region.shape[2:]), mode="nearest")
        return (self.region.to(free.device) & (free > 0.5)).to(torch.float32)

    def for_call(self, held: torch.Tensor) -> torch.Tensor:
        """The conditioning for a call whose held pixels are ``held`` (bool [N, 1, h, w], N = 1 or the batch).

        Where this call's mask is the host's own, pixel for pixel, the host's tensor itself is returned, so a constant
        map stays img2img bit for bit."""
        if self.synchronize is not None:
            self.synchronize()  # the model's queued work is not ours
        start = time.perf_counter()
        try:
            return self._for_call(held)
        finally:
            if self.synchronize is not None:
                self.synchronize()
            self.seconds += time.perf_counter() - start

    def _for_call(self, held: torch.Tensor) -> torch.Tensor:
        free = ~held
        if self._last is not None and torch.equal(free, self._last_free):
            return self._last
        mask = self.step_mask(held)
        if torch.equal(*torch.broadcast_tensors(mask, self.host_mask.to(mask.device))):
            result = self.host
        elif self.exact:
            result = self.encode(mask.to(self.host.device)).to(self.host)
            self.encodes += 1
        else:
            result = torch.where(free.to(self.host.device), self.host, self.original())
        if result is not self._last:
            self.changes += 1
        self._last_free, self._last = free.clone(), result
        return result

    def original(self) -> torch.Tensor:
        """The conditioning with nothing blanked (mask channel 0, the original image's latent): the host's init latent
        when it is the encode of the same image (the host blanks nothing when the mask is 0: ``lerp(x, x, w) = x``),
        else encoded once."""
        if self._original is None:
            self._original = self.encode(torch.zeros_like(self.host_mask).to(self.host.device)).to(self.host)
            self.encodes += 1
        return self._original
