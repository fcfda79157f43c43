"""The WebUI run preview (lib_diffdiff.webui.foresee) against a fake host whose sampler runs a real loop: the
preview's held/free masks equal those of the adapter's own run of the same settings at every model call, for one-
and two-call-per-step samplers; bad requests are refused with a message."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_webui import setup_img2img_steps
from PIL import Image

from lib_diffdiff import ChangeMapError
from lib_diffdiff.core.noise_schedules import karras_sigmas
from lib_diffdiff.maps.transforms import MapShape, to_latent
from lib_diffdiff.webui.adapter import DifferentialSampling, plan_run
from lib_diffdiff.webui.foresee import foresee
from lib_diffdiff.webui.script_args import parse_named


def euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * x.new_ones(x.shape[0]), **(extra_args or {}))
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def heun(model, x, sigmas, extra_args=None, callback=None, disable=None):
    for i in range(len(sigmas) - 1):
        s_in = x.new_ones(x.shape[0])
        d = (x - model(x, sigmas[i] * s_in)) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - model(x2, sigmas[i + 1] * s_in)) / sigmas[i + 1]
            x = x + (d + d2) / 2 * dt
    return x


class Denoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.on_call = None

    def forward(self, x, sigma, **kwargs):
        if self.on_call:
            self.on_call()
        return x * 0.5


class Sampler:
    """A host k-diffusion sampler: ``func`` is its loop, ``sample_img2img`` the host's img2img around it."""

    def __init__(self, func):
        self.func = func
        self.model_wrap_cfg = Denoiser()

    def get_sigmas(self, p, steps):
        return karras_sigmas(steps).float()

    def sample_img2img(self, p, x, noise, *args, steps=None, **kwargs):
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)[steps - t_enc - 1 :]
        return self.func(self.model_wrap_cfg, x + noise * sigmas[0], sigmas)


class Host:
    def __init__(self, func):
        self.func = func
        self.sd_model = None

    def create_sampler(self, name):
        if name not in ("Euler", "Heun"):
            raise AssertionError(f"bad sampler name: {name}")
        return Sampler(self.func)

    def setup_img2img_steps(self, p, steps):
        return setup_img2img_steps(p, steps)

    def crop_region(self, mask, padding, width, height):
        box = mask.getbbox()
        return None if box is None else (max(box[0] - padding, 0), max(box[1] - padding, 0), box[2], box[3])


def data_url(values: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint8), "L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def gradient(size: int = 64) -> np.ndarray:
    return np.tile(np.round(np.linspace(0, 255, size)), (size, 1))


def request(settings: dict, **overrides) -> dict:
    body = {
        "settings": settings,
        "init_width": 64,
        "init_height": 64,
        "width": 64,
        "height": 64,
        "steps": 12,
        "denoising_strength": 0.8,
        "sampler_name": "Euler",
    }
    body.update(overrides)
    return body


def run_masks(func, settings: dict, strength: float, steps: int) -> list[np.ndarray]:
    """The held mask at every model call of the adapter's own run (DifferentialSampling around the host sampler)."""
    args = parse_named({"enabled": True, **settings})
    p = SimpleNamespace(
        init_images=[Image.new("RGB", (64, 64))],
        width=64,
        height=64,
        resize_mode=0,
        image_mask=None,
        nmask=None,
        paste_to=None,
        init_latent=torch.zeros(1, 4, 8, 8),
        denoising_strength=strength,
        steps=steps,
    )
    p.sampler = Sampler(func)
    plan = plan_run(p, args)
    sampling = DifferentialSampling(p, plan, setup_img2img_steps)
    masks = []
    p.sampler.model_wrap_cfg.on_call = lambda: masks.append(sampling.last_injector.held_mask()[:, 0].numpy().copy())
    sampling.install()
    g = torch.Generator().manual_seed(0)
    p.sampler.sample_img2img(p, torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g))
    return masks


def free_calls(out: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(out["free_call"]), dtype="<u2")
    return raw.reshape(out["maps"], out["height"], out["width"])


@pytest.mark.parametrize("func,name", [(euler, "Euler"), (heun, "Heun")])
@pytest.mark.parametrize("shaping", [{}, {"quantize": 4, "gamma": 2.0}])
def test_preview_equals_the_adapters_run_at_every_model_call(func, name, shaping):
    settings = {"map": data_url(gradient()), **shaping}
    out = foresee(request(settings, sampler_name=name), Host(func))
    masks = run_masks(func, settings, 0.8, 12)
    free = free_calls(out)
    assert out["calls"] == len(masks) > 0
    for k, held in enumerate(masks):
        np.testing.assert_array_equal(free > k, held, err_msg=f"model call {k}")
    latent = to_latent(MapShape(**shaping).apply((gradient() / 255).astype(np.float32)), 8, 8)
    assert out["effective_strength"] == pytest.approx(0.8 * latent.max())  # the brightest latent pixel (skipping)
    # brighter to the right: freed earlier, and the darkest column last (or never)
    assert (np.diff(free[0].astype(int), axis=1) <= 0).all() and free[0, 0, 0] > free[0, 0, -1]


def euler_with_callback(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A loop that calls its callback unconditionally (as A1111's UniPC does)."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * x.new_ones(x.shape[0]))
        callback({"i": i, "denoised": denoised})
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def needs_the_real_model(model, x, sigmas, extra_args=None, callback=None, disable=None):
    model.inner_model.some_table_the_stand_in_lacks  # noqa: B018
    return euler(model, x, sigmas)


def test_a_loop_that_always_calls_its_callback_is_foreseen_exactly():
    settings = {"map": data_url(gradient())}
    out = foresee(request(settings), Host(euler_with_callback))
    assert out["estimated"] is False and out["calls"] == len(run_masks(euler, settings, 0.8, 12))


def test_a_loop_that_cannot_run_without_the_model_is_estimated_and_says_so():
    settings = {"map": data_url(gradient())}
    exact = foresee(request(settings), Host(euler))
    estimated = foresee(request(settings), Host(needs_the_real_model))
    assert estimated["estimated"] is True and "estimated" in estimated["summary"]
    assert estimated["calls"] == exact["calls"] and estimated["free_call"] == exact["free_call"]


def test_skipping_is_reported_against_plain_img2img():
    half = np.full((64, 64), 128)
    out = foresee(request({"map": data_url(half)}, denoising_strength=1.0, steps=30), Host(euler))
    # the run is img2img at 128/255 of the strength: 15 steps of t_enc (16 calls) instead of 29 (30 calls)
    assert (out["run_steps"], out["plain_steps"], out["calls"], out["plain_calls"]) == (15, 29, 16, 30)
    assert "16 of 30 model calls" in out["summary"] and "47% skipped" in out["summary"]


def test_fan_reports_its_columns():
    out = foresee(request({"mode": "fan", "fan_strengths": [0.25, 0.5, 1.0]}), Host(euler))
    assert [c["strength"] for c in out["fan"]] == [0.25, 0.5, 1.0]
    assert out["fan"][0]["left"] == 0 and out["fan"][-1]["right"] == 64
    assert len(np.unique(free_calls(out))) == 3


def test_inpaint_mask_limits_the_map_and_only_masked_crops():
    mask = np.zeros((64, 64))
    mask[16:48, 32:64] = 255
    whole = foresee(request({"map": data_url(np.full((64, 64), 255))}, mask=data_url(mask)), Host(euler))
    free = free_calls(whole)[0]
    assert (free[:, :4] == whole["calls"]).all() and (free[2:6, 4:] == 0).all()  # free only inside the mask
    crop = foresee(
        request({"map": data_url(gradient())}, mask=data_url(mask), only_masked=True, padding=0), Host(euler)
    )
    assert crop["crop"] == [32, 16, 32, 32]


def test_only_masked_crops_on_the_blurred_mask_as_the_host_does():
    mask = np.zeros((64, 64))
    mask[24:40, 24:40] = 255
    body = request({"map": data_url(gradient())}, mask=data_url(mask), only_masked=True, padding=0)
    sharp = foresee(body, Host(euler))["crop"]
    soft = foresee({**body, "mask_blur": 4}, Host(euler))["crop"]
    assert sharp == [24, 24, 16, 16]
    assert soft[0] < 24 and soft[2] > 16, "Mask blur widens the region the host crops"


def test_a_checkpoint_that_fails_to_load_is_reported_as_such():
    class Broken(Host):
        def __init__(self, func):
            self.func = func

        @property
        def sd_model(self):
            raise RuntimeError("no checkpoint in models/Stable-diffusion")

    with pytest.raises(ChangeMapError, match="loading it failed: no checkpoint"):
        foresee(request({"map": data_url(gradient())}), Broken(euler))


def test_soft_inpaint_preview_grades_the_ring():
    mask = np.zeros((64, 64))
    mask[16:48, 16:48] = 255
    out = foresee(request({"mode": "soft inpaint", "softness": 6}, mask=data_url(mask)), Host(euler))
    assert len(np.unique(free_calls(out))) > 3


@pytest.mark.parametrize(
    "settings,overrides,message",
    [
        ({"map": data_url(gradient()), "black_point": 0.5, "white_point": 0.2}, {}, "white point"),
        ({"map": data_url(gradient())}, {"sampler_name": "Nonsense"}, "unknown sampler"),
        ({"map": data_url(gradient())}, {"steps": 0}, "steps"),
        ({"map": data_url(gradient())}, {"denoising_strength": "high"}, "denoising_strength"),
        ({"map": data_url(np.zeros((64, 64)))}, {}, "black everywhere"),
        ({"map": data_url(np.zeros((32, 64)))}, {}, "aspect ratio"),
        ({}, {}, "needs a change map"),
    ],
)
def test_bad_requests_name_the_problem(settings, overrides, message):
    with pytest.raises(ChangeMapError, match=message):
        foresee(request(settings, **overrides), Host(euler))


def test_the_webui_host_loads_a_lazy_model_on_the_hosts_main_thread_once():
    from lib_diffdiff.webui.foresee import WebUIPreviewHost

    loaded = SimpleNamespace(is_sdxl=False)
    shared = SimpleNamespace(sd_model=SimpleNamespace(cond_stage_model=None))  # Forge's stand-in before loading
    calls = []

    def reload():
        calls.append("reload")
        shared.sd_model = loaded

    main_thread = SimpleNamespace(run_and_wait_result=lambda fn: (calls.append("main thread"), fn()))
    sd_samplers = SimpleNamespace(create_sampler=lambda name, model: (name, model))
    host = WebUIPreviewHost(
        shared, sd_samplers, setup_img2img_steps, None, SimpleNamespace(forge_model_reload=reload), main_thread
    )
    assert host.create_sampler("Euler") == ("Euler", loaded)
    assert host.create_sampler("Euler") == ("Euler", loaded)
    assert calls == ["main thread", "reload"]
    plain = WebUIPreviewHost(SimpleNamespace(sd_model=loaded), sd_samplers, setup_img2img_steps, None)
    assert plain.sd_model is loaded  # hosts that load eagerly (A1111) are not asked to reload


def test_the_webui_host_crops_with_the_hosts_rule():
    from lib_diffdiff.webui.foresee import WebUIPreviewHost

    masking = SimpleNamespace(
        get_crop_region_v2=lambda mask, pad: mask.getbbox(),
        expand_crop_region=lambda box, w, h, iw, ih: ("expanded", box, w, h, iw, ih),
    )
    host = WebUIPreviewHost(None, None, setup_img2img_steps, masking)
    mask = Image.new("L", (40, 30))
    assert host.crop_region(mask, 4, 64, 64) is None
    mask.paste(255, (10, 5, 20, 15))
    assert host.crop_region(mask, 4, 64, 64) == ("expanded", (10, 5, 20, 15), 64, 64, 40, 30)


def test_the_preview_maps_onto_the_loaded_models_latent_grid():
    """Forge Neo sizes a Flux.2 Klein latent at 1/16 of the image (``processing.opt_f = 16``): the preview's
    held/free masks are on that grid, as the run's are, and the host's factor is read once the model is loaded."""
    from lib_diffdiff.webui.foresee import WebUIPreviewHost

    processing = SimpleNamespace(opt_f=8)
    shared = SimpleNamespace(sd_model=SimpleNamespace(cond_stage_model=None))  # not loaded yet

    def reload():  # loading a Flux.2 model sets the factor, as Neo's load_model does
        shared.sd_model = SimpleNamespace(is_sdxl=False)
        processing.opt_f = 16

    host = WebUIPreviewHost(
        shared, None, setup_img2img_steps, None, SimpleNamespace(forge_model_reload=reload), None, processing
    )
    assert host.latent_factor == 16
    fake = Host(euler)
    fake.latent_factor = host.latent_factor
    body = request({"map": data_url(gradient())}, denoising_strength=1.0)
    klein = foresee(body, fake)
    assert (klein["width"], klein["height"]) == (4, 4)
    plain = foresee(body, Host(euler))
    assert (plain["width"], plain["height"]) == (8, 8)
    assert WebUIPreviewHost(None, None, setup_img2img_steps, None).latent_factor == 8  # no processing module: 8
