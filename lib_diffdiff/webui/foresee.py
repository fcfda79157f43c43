"""The WebUI side of the run preview, duck-typed like :mod:`webui_adapter`: a request from the browser (the panel's
settings and the img2img controls' values) becomes the map the sampler will see and the held/free state at every
model call of the chosen sampler, computed with the host's own sampler schedule and no model call.

The host supplies a small object (see :class:`PreviewHost`); everything else is the code a run uses: the map is
planned by :func:`webui_adapter.plan_run` on a stand-in processing object, the levels come from the host's sampler,
and the held/free state from the run's injector (:func:`foresee.preview_run`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from ..errors import ChangeMapError
from ..maps.reading import load_change_map, load_rgba
from ..maps.transforms import gaussian_blur, resize_to
from ..sources import NEEDS_MASK
from ..tools.fan import column_bounds
from ..tools.foresee import RunPreview, preview_run, record_call_levels
from .adapter import plan_run, sampler_levels, soft_inpaint_padding
from .script_args import parse_named

LATENT_FACTOR = 8
"""Pixels per latent pixel of most models; a host reports its own (Forge Neo's Flux.2 Klein: 16)."""
MAX_SIDE = 4096


class PreviewHost(Protocol):
    """What the script hands the preview: the loaded model, the host's sampler factory, img2img step rule and
    inpaint crop rule."""

    sd_model: Any

    def create_sampler(self, name: str) -> Any: ...

    def setup_img2img_steps(self, p: Any, steps: Any) -> tuple[int, int]: ...

    def crop_region(self, mask: Image.Image, padding: int, width: int, height: int) -> tuple | None: ...

    @property
    def latent_factor(self) -> int:
        """Pixels per latent pixel of the loaded model."""
        ...


class WebUIPreviewHost:
    """The :class:`PreviewHost` of the A1111-family WebUIs, made from their modules (duck-typed, so it is tested
    with fakes): ``shared`` (the loaded model), ``sd_samplers`` (create_sampler), ``setup_img2img_steps``,
    ``masking`` (get_crop_region_v2, expand_crop_region), and optionally ``sd_models``, ``main_thread`` and
    ``processing`` (whose ``opt_f`` is the loaded model's pixels per latent pixel)."""

    def __init__(
        self,
        shared: Any,
        sd_samplers: Any,
        setup_img2img_steps: Any,
        masking: Any,
        sd_models: Any = None,
        main_thread: Any = None,
        processing: Any = None,
    ):
        self.shared = shared
        self.processing = processing
        self.sd_samplers = sd_samplers
        self._setup_img2img_steps = setup_img2img_steps
        self.masking = masking
        self.sd_models = sd_models
        self.main_thread = main_thread

    @property
    def sd_model(self) -> Any:
        """The loaded model. Forge loads its checkpoint lazily, at the first generation (until then
        ``shared.sd_model`` is a stand-in without the model's attributes): the preview loads it the same way, on
        the thread Forge runs generations on, so it never races a generation."""
        model = self.shared.sd_model
        reload = getattr(self.sd_models, "forge_model_reload", None)
        if not hasattr(model, "is_sdxl") and callable(reload):
            run = getattr(self.main_thread, "run_and_wait_result", None)
            run(reload) if callable(run) else reload()
            model = self.shared.sd_model
        return model

    def create_sampler(self, name: str) -> Any:
        return self.sd_samplers.create_sampler(name, self.sd_model)

    @property
    def latent_factor(self) -> int:
        """``processing.opt_f``, which every host sizes img2img latents by (Forge Neo sets it to 16 when it loads a
        Flux.2 model, 8 otherwise), read once the model is loaded."""
        if self.processing is None:
            return LATENT_FACTOR
        _ = self.sd_model  # Forge and Neo load lazily, and set opt_f when they do
        return int(getattr(self.processing, "opt_f", LATENT_FACTOR))

    def setup_img2img_steps(self, p: Any, steps: Any) -> tuple[int, int]:
        return self._setup_img2img_steps(p, steps)

    def crop_region(self, mask: Image.Image, padding: int, width: int, height: int) -> tuple | None:
        box = self.masking.get_crop_region_v2(mask, padding)
        return self.masking.expand_crop_region(box, width, height, mask.width, mask.height) if box else None


@dataclass(frozen=True)
class PreviewRequest:
    """The img2img controls the preview depends on, validated."""

    init_width: int
    init_height: int
    width: int
    height: int
    resize_mode: int
    steps: int
    denoising_strength: float
    sampler_name: str
    scheduler: str
    mask: Any
    mask_blur: int
    mask_invert: bool
    only_masked: bool
    padding: int
    init_image: Any = None
    """The init image itself (base64 or data URL), needed only when the map is made from it (a map source)."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PreviewRequest:
        def integer(name: str, lo: int, hi: int, default: int | None = None) -> int:
            value = body.get(name, default)
            try:
                number = float(value) if not isinstance(value, bool) else math.nan
            except (TypeError, ValueError, OverflowError):
                number = math.nan
            if not (math.isfinite(number) and lo <= number <= hi and number == int(number)):
                raise ChangeMapError(f"preview field {name!r} must be a whole number in [{lo}, {hi}], got {value!r}")
            return int(number)

        strength = body.get("denoising_strength")
        if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not 0 <= strength <= 1:
            raise ChangeMapError(f"preview field 'denoising_strength' must be a number in [0, 1], got {strength!r}")
        return cls(
            init_width=integer("init_width", 1, 16384),
            init_height=integer("init_height", 1, 16384),
            width=integer("width", LATENT_FACTOR, MAX_SIDE),
            height=integer("height", LATENT_FACTOR, MAX_SIDE),
            resize_mode=integer("resize_mode", 0, 3, 0),
            steps=integer("steps", 1, 1000),
            denoising_strength=float(strength),
            sampler_name=str(body.get("sampler_name") or "Euler"),
            scheduler=str(body.get("scheduler") or "Automatic"),
            mask=body.get("mask") or None,
            mask_blur=integer("mask_blur", 0, 256, 0),
            mask_invert=bool(body.get("mask_invert", False)),
            only_masked=bool(body.get("only_masked", False)),
            padding=integer("padding", 0, 1024, 32),
            init_image=body.get("init_image") or None,
        )


def host_mask(mask: np.ndarray, req: PreviewRequest, mode: str) -> np.ndarray:
    """The inpaint mask as the WebUI's img2img prepares it before cropping: binarised, inverted for "Inpaint not
    masked", blurred by Mask blur (a soft-inpaint run turns the host's blur off). The blur is this library's
    Gaussian, so soft mask edges (and an "Only masked" crop found on them) can differ from the host's by a
    rounding; the binary core is the host's."""
    binary = (mask > 128.0 / 255.0).astype(np.float32)
    if req.mask_invert:
        binary = 1.0 - binary
    if req.mask_blur > 0 and mode != "soft inpaint":
        binary = gaussian_blur(binary, req.mask_blur)
    return binary


def host_latent_mask(processed: np.ndarray, req: PreviewRequest, box: tuple | None, latent_hw: tuple[int, int]):
    """The prepared mask (:func:`host_mask`) on the latent grid as the WebUI makes its ``nmask``: cropped ("Only
    masked") or resized to the frame, then resized to the latent grid and rounded."""
    if box is not None:
        x1, y1, x2, y2 = box
        frame = resize_to(processed[y1:y2, x1:x2], req.width, req.height, 2)
    else:
        frame = resize_to(processed, req.width, req.height, 0 if req.resize_mode == 3 else req.resize_mode)
    grey = Image.fromarray(np.rint(frame * 255).astype(np.uint8), "L").resize(latent_hw[::-1], Image.Resampling.BICUBIC)
    return np.around(np.asarray(grey, dtype=np.float32) / 255.0)


def init_image(req: PreviewRequest, source: str) -> Image.Image:
    """The init image a map source is made from (sent as ``init_image``), or a blank one of its size when the map
    is not made from it (the plan then reads only its size)."""
    if source in ("painted", *NEEDS_MASK):
        return Image.new("L", (req.init_width, req.init_height))
    if req.init_image is None:
        raise ChangeMapError(f"the preview of map source {source!r} needs the init image: send it as 'init_image'")
    image = load_rgba(req.init_image, "init image").convert("RGB")
    if image.size != (req.init_width, req.init_height):
        raise ChangeMapError(
            f"preview field 'init_image' is {image.size[0]}x{image.size[1]} but init_width x init_height is "
            f"{req.init_width}x{req.init_height}"
        )
    return image


def stand_in_processing(
    req: PreviewRequest, mode: str, softness: float, host: PreviewHost, source: str = "painted"
) -> SimpleNamespace:
    """The attributes of a processing object after ``p.init`` that :func:`plan_run` reads."""
    factor = getattr(host, "latent_factor", LATENT_FACTOR)
    latent_hw = (req.height // factor, req.width // factor)
    p = SimpleNamespace(
        init_images=[init_image(req, source)],
        width=req.width,
        height=req.height,
        resize_mode=req.resize_mode,
        image_mask=None,
        nmask=None,
        paste_to=None,
        inpainting_mask_invert=int(req.mask_invert),
        init_latent=torch.zeros((1, 4, *latent_hw)),  # its size only: plan_run(has_latent=False)
        denoising_strength=req.denoising_strength,
    )
    if req.mask is None:
        return p
    mask = load_change_map(req.mask, what="inpaint mask")
    if mask.shape != (req.init_height, req.init_width):
        mask = resize_to(mask, req.init_width, req.init_height)
    p.image_mask = Image.fromarray(np.rint(mask * 255).astype(np.uint8), "L")
    processed = host_mask(mask, req, mode)
    box = None
    if req.only_masked:  # the host finds the crop on the prepared (blurred) mask
        padding = soft_inpaint_padding(req.padding, softness) if mode == "soft inpaint" else req.padding
        box = host.crop_region(
            Image.fromarray(np.rint(processed * 255).astype(np.uint8), "L"), padding, req.width, req.height
        )
        if box is not None:
            x1, y1, x2, y2 = box
            p.paste_to = (x1, y1, x2 - x1, y2 - y1)
    if mode == "map":  # the map acts inside the mask; soft inpaint reads the raw mask itself
        p.nmask = torch.from_numpy(host_latent_mask(processed, req, box, latent_hw))[None]
    return p


def sampler_call_levels(
    host: PreviewHost, sampler: Any, p: Any, strength: float
) -> tuple[list, list[float], int, bool]:
    """(start level per t_enc, levels of the model calls, t_enc, estimated) of img2img at ``strength`` on this
    sampler: its own schedule and its own loop (``sampler.func``) run with a stand-in model on a 1x1 latent, with
    the schedule arguments the host's ``sample_img2img`` passes. A loop that fails without the real model is
    estimated as one call per step (``estimated`` True)."""
    p.denoising_strength = strength
    steps, t_enc = host.setup_img2img_steps(p, None)
    start_levels, _ = sampler_levels(p, sampler, steps)
    x = torch.zeros((1, 4, 1, 1))
    parameters = inspect.signature(sampler.func).parameters
    kwargs: dict[str, Any] = {}
    if hasattr(sampler, "get_timesteps"):
        schedule = sampler.get_timesteps(p, steps)[:t_enc]
        if "timesteps" in parameters:
            kwargs["timesteps"] = schedule
        if "is_img2img" in parameters:
            kwargs["is_img2img"] = True
    else:
        sigmas = sampler.get_sigmas(p, steps)[steps - t_enc - 1 :]
        for name, value in (
            ("sigma_min", sigmas[-2]),
            ("sigma_max", sigmas[0]),
            ("n", len(sigmas) - 1),
            ("sigma_sched", sigmas),
            ("sigmas", sigmas),
        ):
            if name in parameters:
                kwargs[name] = value
    if t_enc <= 0 or (hasattr(sampler, "get_timesteps") and t_enc < 2):
        return start_levels, [], t_enc, False

    def sample(model: Any) -> Any:
        # a callback that does nothing: some loops call it unconditionally (A1111's UniPC)
        return sampler.func(model, x, extra_args={}, disable=True, callback=lambda *a, **k: None, **kwargs)

    try:
        return start_levels, record_call_levels(sample, getattr(sampler, "model_wrap_cfg", None)), t_enc, False
    except Exception:  # a loop that cannot run without the real model: one call per step, said to be an estimate
        if hasattr(sampler, "get_timesteps"):
            one_per_step = [float(t) for t in list(schedule)[:0:-1]]  # timesteps[t_enc - 1] down to timesteps[1]
        else:
            one_per_step = [float(v) for v in list(sigmas)[:-1]]
        return start_levels, one_per_step, t_enc, True


def foresee(body: Mapping[str, Any], host: PreviewHost) -> dict[str, Any]:
    """The preview for one request (JSON in, JSON out); raises :class:`ChangeMapError` for bad input."""
    req = PreviewRequest.from_json(body)
    settings = body.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ChangeMapError(f"preview field 'settings' must be an object of the extension's fields, got {settings!r}")
    raw = dict(settings)
    raw["enabled"] = True
    args = parse_named(raw)
    p = stand_in_processing(req, args.mode, args.softness, host, args.source if args.mode == "map" else "painted")
    plan = plan_run(p, args, has_latent=False)
    p.steps = req.steps
    p.scheduler = req.scheduler
    p.hr_scheduler = None
    p.is_hr_pass = False
    p.sampler_noise_scheduler_override = None
    p.extra_generation_params = {}
    try:
        p.sd_model = host.sd_model
    except Exception as e:  # Forge loads its checkpoint on first use
        raise ChangeMapError(f"the preview needs the checkpoint, and loading it failed: {e}") from e
    try:
        sampler = host.create_sampler(req.sampler_name)
    except Exception as e:  # the host's own "bad sampler name" is an AssertionError
        raise ChangeMapError(f"unknown sampler {req.sampler_name!r}: {e}") from e
    effective = float(np.max(plan.latent_map)) * plan.strength
    start_levels, calls, t_enc, estimated = sampler_call_levels(host, sampler, p, effective)
    plain_strength = 1.0 if args.mode == "fan" else req.denoising_strength
    _, plain, plain_t_enc, _ = sampler_call_levels(host, sampler, p, plain_strength)
    preview: RunPreview = preview_run(
        plan.latent_map,
        plan.strength,
        len(start_levels),
        start_levels,
        calls,
        t_enc,
        len(plain),
        plain_t_enc,
        continuous=args.continuous,
    )
    out = preview.to_json()
    out["frame"] = {"width": req.width, "height": req.height}
    out["crop"] = list(p.paste_to) if p.paste_to else None
    out["mode"] = args.mode
    out["estimated"] = estimated
    if estimated:
        out["summary"] += " (model calls estimated at one per step: this sampler's loop needs the model)"
    if args.mode == "fan":
        edges = column_bounds(req.width, len(args.fan_strengths))
        out["fan"] = [{"left": a, "right": b, "strength": s} for a, b, s in zip(edges, edges[1:], args.fan_strengths)]
    out["never_freed"] = int((preview.free_call == preview.calls).sum())
    return out
