"""The WebUI side of a run, duck-typed: handed the WebUI's processing object ``p`` (and through it the sampler), it
never imports the WebUI, so it is unit-tested with fakes and serves AUTOMATIC1111 and Forge alike.

Two pieces: :func:`plan_run` reads the change map onto the latent grid once ``p.init`` has prepared the image (size,
resize mode, "only masked" crop, inpaint mask), and :class:`DifferentialSampling` wraps the generation's own sampler so
that every ``sample_img2img`` call runs at the effective strength with the injection on every model call, and
leaves nothing patched behind, whatever happens inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core.conditioning import InpaintConditioning
from ..core.injection import DifferentialInjector
from ..core.noise_spaces import FlowSpace, NoiseSpace, SigmaSpace, VPTimesteps
from ..core.schedule import kdiffusion_start_levels, pixel_strengths, plan_schedule, timestep_start_levels
from ..errors import ChangeMapError
from ..maps.alignment import fit_to_image, soft_inpaint_map, to_processing_frame
from ..maps.reading import load_change_map
from ..maps.transforms import invert, to_latent
from ..tools.fan import fan_map
from ..tools.foresee import POST_CFG
from .infotext import CONDITIONING_SECONDS, INPAINT_CONDITIONINGS, map_summary
from .inpainting import profiling
from .made_maps import source_map
from .settings import DiffDiffArgs

SetupSteps = Callable[[Any, Any], tuple]
"""The host's ``sd_samplers_common.setup_img2img_steps(p, steps)`` -> (steps, t_enc)."""


@dataclass(frozen=True)
class RunPlan:
    """What one generation samples with, decided once ``p.init`` has run."""

    args: DiffDiffArgs
    strength: float
    """The strength the map multiplies: the denoising strength, or 1 for a strength fan."""
    image_map: np.ndarray | None
    """The change map on the init image's pixels (None for a fan, which is drawn on the output)."""
    frame_map: np.ndarray
    """The change map on the processing frame (p.width x p.height), as the image is sampled."""
    latent_map: np.ndarray
    """float64 on the latent grid (inside the inpaint mask when there is one)."""
    summary: str


def crop_box(p: Any) -> tuple[int, int, int, int] | None:
    """The "only masked" crop region as (x1, y1, x2, y2), from ``p.paste_to`` = (x, y, w, h)."""
    paste_to = getattr(p, "paste_to", None)
    if not paste_to or getattr(p, "image_mask", None) is None:
        return None
    x, y, w, h = (int(v) for v in paste_to)
    return x, y, x + w, y + h


def soft_inpaint_padding(padding: int | None, softness: float) -> int:
    """The "Only masked" padding a soft-inpaint run needs: the crop must hold the whole soft ring (3 sigma)."""
    return max(int(padding or 0), int(3 * softness + 1))


def turn_off_mask_blur(p: Any) -> None:
    """No pixel feather for this generation (soft inpaint: the transition comes from the diffusion). A1111 and Forge
    keep ``mask_blur_x``/``_y`` fields behind a ``mask_blur`` property whose setter sets both; Forge Neo keeps a
    ``mask_blur`` field and makes ``mask_blur_x``/``_y`` read-only properties over it. Setting ``mask_blur`` serves
    both; the two fields are set as well wherever they are plain attributes."""
    p.mask_blur = 0
    for name in ("mask_blur_x", "mask_blur_y"):
        if not isinstance(getattr(type(p), name, None), property):
            setattr(p, name, 0)


def forge_predictor(sd_model: Any) -> Any:
    """Forge's predictor (``forge_objects.unet.model.predictor``): its ``noise_scaling`` noises Forge's img2img."""
    return getattr(
        getattr(getattr(getattr(sd_model, "forge_objects", None), "unet", None), "model", None), "predictor", None
    )


def is_flow_model(sd_model: Any) -> bool:
    """Does the host's img2img noise this model as a flow, x = sigma * eps + (1 - sigma) * x0?

    Forge: its predictor's prediction type is "const" (Flux), and sample_img2img calls predictor.noise_scaling.
    AUTOMATIC1111 1.10: the model has ``add_noise_to_latent`` (SD3), which its sample_img2img calls instead of
    x + sigma * eps. Other hosts (reForge, forge-classic) always noise k-diffusion img2img as x + sigma * eps."""
    predictor = forge_predictor(sd_model)
    if predictor is not None and hasattr(predictor, "prediction_type"):
        return predictor.prediction_type == "const"
    return callable(getattr(sd_model, "add_noise_to_latent", None))


def ignores_init_image(p: Any) -> bool:
    """Whether the host's img2img starts from a latent that holds none of the init image: one value per channel
    while the image has detail. Forge Neo's Wan encodes an empty latent and passes the image only as a
    condition; a change map would then hold pixels on a blank, not on the picture."""
    latent = getattr(p, "init_latent", None)
    images = getattr(p, "init_images", None)
    if not isinstance(latent, torch.Tensor) or latent.shape[-1] * latent.shape[-2] < 2 or not images:
        return False
    first = latent.detach()[0]  # one image of the batch: [C, h, w] or [C, T, h, w]
    flat = first.reshape(first.shape[0], -1).float()
    if bool((flat.amax(dim=-1) > flat.amin(dim=-1)).any()):
        return False
    thumb = np.asarray(images[0].convert("RGB").resize((32, 32)), dtype=np.int16)
    return bool(thumb.max() > thumb.min())


def plan_run(
    p: Any, args: DiffDiffArgs, source_size: tuple[int, int] | None = None, has_latent: bool = True
) -> RunPlan:
    """The map on every frame; raises :class:`ChangeMapError` for anything that cannot run. ``source_size``: the
    image the map is fitted to, when not the current init image (a script fed an output back, see companions).
    ``has_latent``: ``p.init_latent`` is the host's own (false for the preview's stand-in, which only gives the
    latent's size and must not be read as a model that ignores the init image)."""
    if not getattr(p, "init_images", None):
        raise ChangeMapError("Differential Diffusion needs an init image (img2img)")
    if has_latent and ignores_init_image(p):
        raise ChangeMapError(
            "this model's img2img does not start from the init image (its starting latent holds none of it: "
            "Forge Neo's Wan passes the image only as a condition), so a change map has nothing to keep"
        )
    width, height = source_size or p.init_images[0].size
    box = crop_box(p)
    has_mask = getattr(p, "image_mask", None) is not None
    image_map = None
    if args.mode == "map":
        if args.source != "painted":
            m = fit_to_image(source_map(p, args), width, height)
        elif args.map is None:
            raise ChangeMapError("mode 'map' needs a change map: upload one, send 'map' in the API, or pick a source")
        else:
            m = load_change_map(args.map)
        m = invert(m) if args.invert else m
        if args.multiplier != 1.0:
            m = np.clip(m * np.float32(args.multiplier), 0.0, 1.0).astype(np.float32)
        image_map = args.shape().apply(fit_to_image(m, width, height))
        frame_map = to_processing_frame(image_map, p.width, p.height, p.resize_mode, box)
    elif args.mode == "soft inpaint":
        if not has_mask:
            raise ChangeMapError("mode 'soft inpaint' needs an inpaint mask: use the inpaint tab or send 'mask'")
        mask = fit_to_image(load_change_map(p.image_mask, what="inpaint mask"), width, height, "inpaint mask")
        image_map = soft_inpaint_map(mask, args.softness, invert=bool(getattr(p, "inpainting_mask_invert", 0)))
        image_map = args.shape().apply(image_map)
        frame_map = to_processing_frame(image_map, p.width, p.height, p.resize_mode, box)
    else:
        frame_map = fan_map(args.fan_strengths, p.width, p.height)
    latent_h, latent_w = p.init_latent.shape[-2:]  # [B, C, h, w], or [B, C, T, h, w] (Qwen-Image, Anima)
    latent_map = to_latent(frame_map, latent_h, latent_w)
    nmask = getattr(p, "nmask", None)
    if args.mode == "map" and has_mask and nmask is not None:
        latent_map = latent_map * latent_plane(nmask)  # the map acts inside the mask
    strength = 1.0 if args.mode == "fan" else float(p.denoising_strength)
    pixel_strengths(latent_map, strength)  # validates
    whole = image_map if image_map is not None else frame_map
    if not (whole > 0).any() or strength <= 0:
        raise ChangeMapError("the change map is black everywhere (or the strength is 0): nothing would change")
    # a pass that samples only a black part of the map (a tile of Ultimate SD upscale, a mask over black) is
    # valid: every pixel is held, see DifferentialSampling.sample_img2img
    summary = map_summary(image_map if image_map is not None else frame_map)
    return RunPlan(args, strength, image_map, frame_map, latent_map, summary)


def latent_plane(mask: torch.Tensor) -> np.ndarray:
    """One [h, w] plane (float64) of the host's latent mask: A1111 and Forge keep ``nmask`` as [C, h, w], Forge Neo
    as [1, C, h, w] (or [1, C, 1, h, w] for video latents); every channel holds the same mask."""
    return mask.detach().to("cpu", torch.float64).reshape(-1, *mask.shape[-2:])[0].numpy()


def sampler_name(sampler: Any) -> str:
    return getattr(getattr(sampler, "config", None), "name", None) or type(sampler).__name__


def check_model_calls(p: Any, plan: RunPlan, setup_steps: SetupSteps) -> None:
    """Refuse a run whose model calls would not do what the map asks.

    - The WebUI's timestep samplers (DDIM, PLMS, UniPC) noise and step with Stable Diffusion's variance-preserving
      formulas (``sqrt(abar) x0 + sqrt(1 - abar) eps``, abar from the model's sigmas), on every host; a flow model
      (Flux, SD3, ...) noises as ``sigma eps + (1 - sigma) x0``, so those formulas put every pixel at the wrong level.
    - They run img2img over ``timesteps[:t_enc]`` and call the model only when t_enc >= 2; below that plain img2img
      returns the noised latent unsampled, and with the map every pixel would stay held: nothing would change,
      silently."""
    sampler = getattr(p, "sampler", None)
    if hasattr(sampler, "get_timesteps") and is_flow_model(getattr(p, "sd_model", None)):
        raise ChangeMapError(
            f"{sampler_name(sampler)} is a timestep sampler, which the WebUI runs with Stable Diffusion's formulas: "
            "they do not fit this flow model. Choose a k-diffusion sampler (Euler, DPM++ 2M, ...)"
        )
    effective = float(pixel_strengths(plan.latent_map, plan.strength).max())
    if not hasattr(sampler, "get_timesteps") or effective <= 0.0:
        return
    user_strength = p.denoising_strength
    p.denoising_strength = effective
    try:
        steps, t_enc = setup_steps(p, None)
    finally:
        p.denoising_strength = user_strength
    if t_enc < 2:
        raise ChangeMapError(
            f"{sampler_name(sampler)} makes no model call in img2img at {steps} steps and strength {effective:.3g} "
            f"(the WebUI runs it for steps x strength = {t_enc} step(s) and needs at least 2): raise the steps or "
            "the strength"
        )


def sampler_levels(p: Any, sampler: Any, steps: int) -> tuple[list, NoiseSpace]:
    """The start level of img2img for each t_enc on this sampler, and the noise space its img2img noises in: held
    pixels must be noised exactly as the host noises the start latent."""
    if hasattr(sampler, "get_timesteps"):  # DDIM / PLMS / UniPC: VP noising with the model's alphas_cumprod
        # (Forge too: it converts to sigma space inside the denoiser, after our wrapper)
        return timestep_start_levels(sampler.get_timesteps(p, steps)), VPTimesteps(p.sd_model.alphas_cumprod)
    space = FlowSpace() if is_flow_model(getattr(p, "sd_model", None)) else SigmaSpace()
    return kdiffusion_start_levels(sampler.get_sigmas(p, steps), steps), space


class DifferentialSampling:
    """Patches ``p.sampler.sample_img2img`` of one generation (a new sampler is made for every generation, so the
    patch cannot outlive it). Each call plans the schedule with that call's own noise, runs the host's sampler at the
    effective strength with the denoiser wrapped, and restores the denoiser and ``p.denoising_strength`` before
    returning or raising."""

    def __init__(self, p: Any, plan: RunPlan, setup_steps: SetupSteps, conditioning: InpaintConditioning | None = None):
        self.p = p
        self.plan = plan
        self.setup_steps = setup_steps
        self.conditioning = conditioning if plan.args.step_conditioning else None
        """Per-call conditioning of an inpainting model (None: other models, or switched off)."""
        self.sampler = p.sampler
        self.original = type(self.sampler).sample_img2img.__get__(self.sampler)
        self.last_injector: DifferentialInjector | None = None

    def install(self) -> None:
        self.sampler.sample_img2img = self.sample_img2img

    def sample_img2img(self, p: Any, x: torch.Tensor, noise: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not (self.plan.latent_map > 0).any():
            # this pass's part of the map is black: every pixel is held at every call, so the run ends on the
            # original latent; no model call is needed to get it
            return x.clone()
        denoiser = self.sampler.model_wrap_cfg
        user_strength = p.denoising_strength
        strengths = pixel_strengths(self.plan.latent_map, self.plan.strength)
        p.denoising_strength = float(strengths.max())
        try:
            steps, t_enc = self.setup_steps(p, kwargs.get("steps"))
            levels, space = sampler_levels(p, self.sampler, steps)
            schedule = plan_schedule(strengths, levels, steps, run_t_enc=t_enc, continuous=self.plan.args.continuous)
            injector = self.last_injector = DifferentialInjector(x, noise, schedule, space)
            denoiser.forward = wrap_denoiser(denoiser, injector, self.conditioning)
            result = injector.finish(self.original(p, x, noise, *args, **kwargs))
            if self.conditioning is not None:
                p.extra_generation_params[INPAINT_CONDITIONINGS] = self.conditioning.changes
                if profiling():
                    p.extra_generation_params[CONDITIONING_SECONDS] = round(self.conditioning.seconds, 3)
            return result
        finally:
            denoiser.__dict__.pop("forward", None)
            p.denoising_strength = user_strength


IMAGE_COND_POSITION = 4
"""``image_cond`` among the arguments after (x, sigma) of the hosts' CFG denoiser forward:
(uncond, cond, cond_scale, s_min_uncond, image_cond)."""


def wrap_denoiser(
    denoiser: Any, injector: DifferentialInjector, conditioning: InpaintConditioning | None = None
) -> Callable:
    """The denoiser's forward with the injection around it. Its first two arguments are the sampler's latent and
    level in every host (Forge converts timestep samplers to sigma space inside forward, after this wrapper), and
    its ``image_cond`` reaches the model as ``c_concat`` on both hosts, so an inpainting model's per-call
    conditioning replaces it here."""
    original = type(denoiser).forward.__get__(denoiser)

    def forward(x: torch.Tensor, sigma: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        x_in = injector.before_model(x, sigma)
        if conditioning is not None:
            held = injector.held_mask()
            if tuple(held.shape[2:]) == tuple(x.shape[2:]):  # not on a resized latent (reForge's Dy/SMEA steps)
                if "image_cond" in kwargs:
                    kwargs["image_cond"] = conditioning.for_call(held)
                elif len(args) > IMAGE_COND_POSITION:
                    args = list(args)
                    args[IMAGE_COND_POSITION] = conditioning.for_call(held)
        if injector.space.predicts_x0 and isinstance(kwargs.get("model_options"), dict):
            kwargs["model_options"] = held_post_cfg(kwargs["model_options"], injector, x, sigma)
        out = injector.after_model(original(x_in, sigma, *args, **kwargs), x, sigma)
        if (
            getattr(denoiser, "need_last_noise_uncond", False)
            and getattr(denoiser, "last_noise_uncond", None) is not None
        ):
            # DDIM CFG++ steps with the unconditional eps: held pixels must follow the held eps there too
            denoiser.last_noise_uncond = injector.after_model(denoiser.last_noise_uncond, x, sigma)
        return out

    return forward


PREDICTIONS = ("uncond_denoised", "cond_denoised")


def held_post_cfg(model_options: dict, injector: DifferentialInjector, x: torch.Tensor, level: Any) -> dict:
    """``model_options`` (a copy) whose post-CFG functions see held pixels' cond and uncond predictions as the held
    prediction. A CFG++ sampler steps with the unconditional x0 (Euler CFG++: ``x' = denoised + sigma' (x - uncond) /
    sigma``): held pixels would drift off the noised original at every step, and a pixel freed later would start
    from the wrong latent. Only for x0-predicting denoisers, where the held prediction is the original."""
    functions = model_options.get(POST_CFG)
    if not functions:
        return model_options

    def held(fn: Callable) -> Callable:
        def post_cfg(args: dict) -> Any:
            args = dict(args)
            for key in PREDICTIONS:
                if isinstance(args.get(key), torch.Tensor):
                    args[key] = injector.after_model(args[key], x, level)
            return fn(args)

        return post_cfg

    return {**model_options, POST_CFG: [held(fn) for fn in functions]}


def preserve_overlay(original: Image.Image, keep: np.ndarray, host_overlay: Image.Image | None) -> Image.Image:
    """The RGBA overlay the WebUI pastes over the result: the input where the map asks for no change (and wherever
    the host's own inpaint overlay keeps it). Alpha is 0 or 255 there, so the paste is byte-exact."""
    if keep.shape != (original.height, original.width):
        raise ValueError(f"keep mask {keep.shape[::-1]} does not match the image {original.size}")
    alpha = keep
    if host_overlay is not None and host_overlay.size == original.size:
        alpha = np.maximum(alpha, np.asarray(host_overlay.convert("RGBA"))[:, :, 3])
    overlay = original.convert("RGB").convert("RGBA")
    overlay.putalpha(Image.fromarray(alpha, "L"))
    return overlay
