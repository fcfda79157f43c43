"""Differential Diffusion (Levin & Fried): per-pixel img2img strength from a change map.

Pure torch/numpy/pillow; imports nothing of a WebUI. The path of one generation:

    m = load_change_map(source)                    # float32 HxW in [0, 1], white = change
    m = resize_to(m, width, height, resize_mode)   # the WebUI's geometry
    c = to_latent(m, height // 8, width // 8)      # float64, area-averaged
    schedule = plan_schedule(pixel_strengths(c, strength), kdiffusion_start_levels(sigmas, steps), steps)
    # run img2img at schedule.effective_strength, with every model call wrapped:
    injector = DifferentialInjector(init_latent, noise, schedule, SigmaSpace())
    x_in = injector.before_model(x, sigma); pred = injector.after_model(model(x_in, sigma), x, sigma)
    latent = injector.finish(latent)
"""

from .core.injection import DifferentialInjector, held_at
from .core.noise_spaces import FlowSpace, NoiseSpace, SigmaSpace, VPTimesteps
from .core.schedule import (
    NEVER,
    PixelSchedule,
    img2img_t_enc,
    kdiffusion_start_levels,
    pixel_strengths,
    plan_schedule,
    timestep_start_levels,
)
from .errors import ChangeMapError
from .maps.reading import load_change_map
from .maps.transforms import ResizeMode, contrast, crop, gamma, gaussian_blur, invert, remap, resize_to, to_latent
from .tools.fan import check_strengths, column_bounds, fan_map, fan_strengths, label_fan, parse_strengths
from .tools.metrics import biased_measurement, cam, dam, dssim_map, edit_strength_map
from .version import __version__ as __version__  # the one place the version is written

__all__ = [
    "NEVER",
    "ChangeMapError",
    "DifferentialInjector",
    "FlowSpace",
    "NoiseSpace",
    "PixelSchedule",
    "ResizeMode",
    "SigmaSpace",
    "VPTimesteps",
    "biased_measurement",
    "cam",
    "check_strengths",
    "column_bounds",
    "contrast",
    "crop",
    "dam",
    "dssim_map",
    "edit_strength_map",
    "fan_map",
    "fan_strengths",
    "gamma",
    "gaussian_blur",
    "held_at",
    "img2img_t_enc",
    "invert",
    "kdiffusion_start_levels",
    "label_fan",
    "load_change_map",
    "parse_strengths",
    "pixel_strengths",
    "plan_schedule",
    "remap",
    "resize_to",
    "timestep_start_levels",
    "to_latent",
]
