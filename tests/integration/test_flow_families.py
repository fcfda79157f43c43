"""The flow-model families, live: the checks of the SD families (test_model_families.py) on models that noise img2img
as x = sigma * eps + (1 - sigma) * x0, plus what is particular to them: their schedule types, CFG 1 and real CFG,
Flux's distilled guidance, the WebUI's timestep samplers refused with a message, few-step continuous strength, and
the run preview on their shifted schedules.

Set DIFFDIFF_WEBUI_URL and DIFFDIFF_TEST_CHECKPOINTS as for test_model_families.py, with the flow families' names,
e.g. ``flux-dev=random-flux-dev,flux-schnell=random-flux-schnell`` (tiny random-weight files with their transparent
VAE inside, made by tests/tools/make_flow_checkpoints.py). Families left out are skipped with that reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest

from lib_diffdiff import column_bounds
from lib_diffdiff.tools.smoothness import column_change, column_values, spearman

from . import checks
from .checks import generate, grey, infotext
from .test_model_families import CHECKPOINTS_VARIABLE, checkpoint_title, configured, on_checkpoint
from .test_preview_api import PREVIEW, free_calls, grey_url, preview_body
from .webui import URL_VARIABLE, WebUI, block_image, decode, webui_url
from .webui import payload as base_payload

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64
STEPS = 6
SCHEDULE_TYPES = ("Simple", "Beta", "SGM Uniform", "Normal")
"""The schedule types flow-model users pick; "Automatic" is not among them: on Neo it maps step indices through
the predictor and starts Flux at sigma ~ 10^4 (the host's own presets use Simple or Beta)."""
TIMESTEP = ("DDIM", "PLMS", "UniPC")


@dataclass(frozen=True)
class FlowFamily:
    samplers: tuple[str, ...]
    scheduler: str = "Simple"
    cfg: float = 1.0
    """The CFG its users run (distilled models: 1, one model call a step)."""
    guidance: bool = False
    """Flux's distilled guidance (the "Distilled CFG Scale" field) reaches the model."""
    latent_block: int = 8
    gain_vae: str | None = "gain16-flux"
    """Part of the name of the gain-16 transparent VAE of its VAE's layout, which replaces the one inside the test
    file for the continuous-strength measurement (the Flux VAE's layout: 16 channels, scale 0.3611, shift 0.1159;
    None: there is none, the file's own serves)."""
    batch: bool = True
    """The host runs a batch of it (Neo's Qwen-Image-Edit does not, also without this extension: its reference latent
    has a batch of 1); where not, several images of one run come from the batch count instead."""


USUAL = ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "Heun", "LCM")
FAMILIES = {
    "flux-dev": FlowFamily(USUAL, guidance=True),
    "flux-schnell": FlowFamily(USUAL),
    "flux-kontext": FlowFamily(USUAL, guidance=True),
    "chroma": FlowFamily(USUAL, cfg=4.0),
    "z-image": FlowFamily(USUAL),
    "lumina2": FlowFamily((*USUAL, "Res Multistep"), cfg=4.0),
    "flux2-klein-4b": FlowFamily(USUAL, scheduler="Flux2", latent_block=16, gain_vae="gain16-klein"),
    "qwen-image": FlowFamily(USUAL, gain_vae="gain16-wan"),
    "qwen-image-edit": FlowFamily(USUAL, gain_vae="gain16-wan", batch=False),
    "anima": FlowFamily((*USUAL, "ER SDE"), cfg=4.0, gain_vae="gain16-wan"),
    "sd3": FlowFamily(USUAL, cfg=4.0, gain_vae="gain16-sd3"),
}
"""Each family with the settings its users run (Neo's presets, ``modules_forge/presets.py``): distilled models at
CFG 1, Chroma, Lumina 2, Anima and SD3 (on A1111 1.10) with real CFG; Klein on its own "Flux2" schedule type (a
16-pixel latent grid); Qwen-Image and Anima on 5-D latents of the Wan VAE. Flux Kontext is Flux dev read from a path
with "kontext" in it, Qwen-Image-Edit a Qwen-Image file (with the vision tower) from a path with "qwen" and "edit"
(Neo's rules): the init image then also goes to the model as a reference, as it always does for Klein."""

REFERENCE_FREE_TWIN = {"flux-kontext": "flux-dev", "qwen-image-edit": "qwen-image"}
"""Families that take the init image as a reference too, and the same weights without that (the comparison)."""


@dataclass
class Run:
    """One family loaded on the host: its request builder (the family's scheduler and CFG) and test image."""

    name: str
    family: FlowFamily
    webui: WebUI
    vae: dict
    image: object

    def payload(self, image, vae, diffdiff=None, **overrides) -> dict:
        body = base_payload(
            image,
            vae,
            diffdiff,
            **{"steps": STEPS, "scheduler": self.family.scheduler, "cfg_scale": self.family.cfg, **overrides},
        )
        body["override_settings"]["live_previews_enable"] = False
        return body

    def request(self, diffdiff=None, **overrides) -> dict:
        return self.payload(self.image, self.vae, diffdiff, **overrides)

    @property
    def source(self) -> np.ndarray:
        return np.asarray(self.image).astype(np.int16)


def baked_vae(webui: WebUI) -> dict:
    """The override that keeps the checkpoint's own VAE (the transparent one inside the test file)."""
    return {"forge_additional_modules": []} if webui.is_forge() else {"sd_vae": "None"}


@pytest.fixture(scope="module", params=list(FAMILIES))
def run(request):
    name = request.param
    wanted = configured().get(name)
    if wanted is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no {name} checkpoint")
    webui = WebUI(webui_url())
    # A1111 loads its VAE setting with the model: an SD VAE there breaks a 16-channel model's load
    vae_before = None if webui.is_forge() else webui.get("/sdapi/v1/options").get("sd_vae")
    if vae_before is not None:
        webui.request("POST", "/sdapi/v1/options", {"sd_vae": "None"})
    try:
        with on_checkpoint(webui, checkpoint_title(webui, wanted)):
            r = Run(name, FAMILIES[name], webui, baked_vae(webui), block_image(W, H, seed=11))
            status, out = webui.request("POST", "/sdapi/v1/img2img", r.request(steps=2))
            if status >= 500:  # plain img2img, no extension: the host itself cannot run this family
                pytest.skip(f"the host cannot run {name} without the extension either: {out}")
            assert status == 200, out
            (out,) = [decode(i) for i in out["images"]]
            assert np.abs(out - r.source).mean() > 1.0, "plain img2img changed nothing: the run would prove nothing"
            yield r
    finally:  # after the checkpoint is back, as it was loaded with it
        if vae_before is not None:
            webui.request("POST", "/sdapi/v1/options", {"sd_vae": vae_before})


@pytest.mark.parametrize("cfg", [1.0, 3.5])
def test_a_constant_map_is_img2img_at_cfg_1_and_with_cfg(run, cfg):
    prompts = {"prompt": "a photo of a cat", "negative_prompt": "blurry", "cfg_scale": cfg}
    (plain,), _ = generate(run.webui, run.request(denoising_strength=191 / 255 * 0.8, **prompts))
    args = {"enabled": True, "map": grey(np.full((H, W), 191))}
    (out,), info = generate(run.webui, run.request(args, denoising_strength=0.8, **prompts))
    assert np.array_equal(out, plain)
    assert "Differential diffusion: True" in infotext(info)


def test_held_pixels_are_exact_on_the_samplers_and_schedule_types(run):
    available = {s["name"] for s in run.webui.get("/sdapi/v1/samplers")}
    missing = [s for s in run.family.samplers if s not in available]
    failures, host_broken = [], []
    for scheduler in dict.fromkeys((run.family.scheduler, *SCHEDULE_TYPES)):
        build = partial(run.payload, scheduler=scheduler)
        for sampler in (s for s in run.family.samplers if s in available):
            status, problem = checks.held_half(run.webui, run.vae, build, run.image, sampler)
            if (
                status != 200
                and run.webui.request("POST", "/sdapi/v1/img2img", build(run.image, run.vae, sampler_name=sampler))[0]
                != 200
            ):
                host_broken.append(f"{scheduler}: {problem}")
            elif problem:
                failures.append(f"{scheduler}: {problem}")
    assert not failures, "\n".join(failures)
    assert not missing, f"samplers this host lacks: {missing}"
    if host_broken:
        warnings.warn(f"{run.name}: failing without the extension: {host_broken}", stacklevel=1)


def test_held_pixels_are_exact_with_real_cfg(run):
    build = partial(run.payload, cfg_scale=3.5, prompt="a photo of a cat", negative_prompt="blurry")
    for sampler in ("Euler", "DPM++ 2M"):
        status, problem = checks.held_half(run.webui, run.vae, build, run.image, sampler)
        assert status == 200 and not problem, problem


def test_distilled_guidance_reaches_the_free_pixels_only(run):
    if not run.family.guidance:
        pytest.skip(f"{run.name} has no distilled guidance")
    args = {"enabled": True, "map": grey(checks.half_map(W, H)), "preserve": False}
    outs = []
    for guidance in (1.0, 6.0):
        (out,), info = generate(run.webui, run.request(args, denoising_strength=1.0, distilled_cfg_scale=guidance))
        assert "Distilled CFG Scale" in infotext(info)
        assert np.array_equal(out[:, : W // 2], run.source[:, : W // 2])
        outs.append(out)
    assert not np.array_equal(outs[0][:, W // 2 :], outs[1][:, W // 2 :]), "the guidance changed what the model made"


@pytest.mark.parametrize("sampler", TIMESTEP)
def test_timestep_samplers_are_refused_with_a_message_or_keep_held_pixels_exact(run, sampler):
    """The WebUI's timestep samplers (A1111's and Forge's DDIM, PLMS, UniPC; Neo's DDIM and PLMS) use SD's formulas
    and are refused on a flow model; Neo's UniPC is a sigma sampler, on which held pixels must stay exact."""
    status, problem = checks.held_half(run.webui, run.vae, run.payload, run.image, sampler)
    if status == 200:
        assert not problem, problem
        return
    assert 400 <= status < 500, problem
    assert "flow model" in problem and sampler in problem, problem
    status, _ = run.webui.request("POST", "/sdapi/v1/img2img", run.request(sampler_name="Euler", steps=2))
    assert status == 200, "the WebUI works on after the refusal"


def test_a_change_map_inside_an_inpaint_mask_with_only_masked(run):
    checks.check_only_masked_keeps_the_map_aligned(run.webui, run.vae, run.payload)


def test_soft_inpaint_leaves_far_pixels_exact(run):
    block = run.family.latent_block
    checks.soft_inpaint(run.webui, run.vae, run.payload, 96 if block == 8 else 128, (40, 56 + block), 4, block)


def test_fan_and_batch(run):
    strengths = [0.0, 0.5, 1.0]
    fan = {"enabled": True, "mode": "fan", "fan_strengths": strengths, "fan_labels": False, "preserve": False}
    width = 6 * run.family.latent_block  # three columns of two latent blocks
    image = block_image(width, H, seed=11)
    source = np.asarray(image).astype(np.int16)
    (out,), _ = generate(run.webui, run.payload(image, run.vae, fan, denoising_strength=0.3))
    bounds = column_bounds(width, 3)
    change = [np.abs(out[:, a:b] - source[:, a:b]).mean() for a, b in zip(bounds, bounds[1:])]
    assert change[0] == 0 and change[2] > 1.0, change
    args = {"enabled": True, "map": grey(checks.half_map(W, H)), "preserve": False}
    status, response = run.webui.request(
        "POST", "/sdapi/v1/img2img", run.request(args, batch_size=2, denoising_strength=1.0)
    )
    if status != 200:
        plain, _ = run.webui.request("POST", "/sdapi/v1/img2img", run.request(batch_size=2, denoising_strength=1.0))
        assert plain != 200, f"a batch of 2 fails with the map only: {response}"
        warnings.warn(f"{run.name}: a batch of 2 fails without the extension too: {response}", stacklevel=1)
        return  # the family allows no batch on this host (Neo's Qwen-Image-Edit: a batch-1 reference latent)
    images = [decode(i) for i in response["images"]]
    for out in images[-2:]:
        assert np.array_equal(out[:, : W // 2], run.source[:, : W // 2])
    assert not np.array_equal(images[-2][:, W // 2 :], images[-1][:, W // 2 :]), "each image has its own noise"


def gain_vae(run: Run) -> dict:
    """The gain-16 transparent VAE of the family's layout, in models/VAE with the family's ``gain_vae`` in its name
    (tests/tools/make_flow_checkpoints.py --gain-vae FILE for the Flux layout, make_klein_checkpoint.py --gain-vae
    FILE for Klein's): with the unit-gain VAE a random model clips more than half of the pixels at a small
    strength, and the change stops growing with the value."""
    part = run.family.gain_vae
    if part is None:
        return run.vae  # no gain VAE of this layout: the file's own
    name = run.webui.find_vae("DIFFDIFF_TEST_FLOW_GAIN_VAE", part)
    if name is not None:
        return run.webui.vae_settings(name)
    pytest.skip(f"no gain-16 VAE named *{part}* for {run.name}: see tests/tools/README.md")


@pytest.mark.parametrize("steps", [4, 8])
def test_continuous_strength_at_few_steps(run, steps):
    """A ramp at 4 and 8 steps (the few-step models' range) with continuous strength: black exact and the change
    rising along the ramp."""
    width = 256
    image = block_image(width, H, seed=3)
    source = np.asarray(image).astype(np.int16)
    m = np.tile(np.round(np.linspace(0, 255, width // 8)).astype(np.uint8).repeat(8), (H, 1))
    m[:, :32] = 0
    args = {"enabled": True, "map": grey(m), "preserve": False, "continuous": True}
    three = {"batch_size": 3} if run.family.batch else {"n_iter": 3}
    outs, info = generate(
        run.webui, run.payload(image, gain_vae(run), args, denoising_strength=1.0, steps=steps, **three)
    )
    assert "Differential diffusion continuous: True" in infotext(info)
    for out in outs:
        assert np.array_equal(out[:, :32], source[:, :32]), "black stays exact"
    block = run.family.latent_block
    values = column_values(m / 255.0, block)
    change = np.mean([column_change(source, out, block) for out in outs], axis=0)
    ramp = values > 0
    rho = spearman(values[ramp], change[ramp])
    print(f"{run.name}, {steps} steps: Spearman {rho:.3f}")
    assert rho > 0.8, f"the change does not grow with the value (Spearman {rho:.3f})"


def test_the_preview_keeps_exactly_the_pixels_a_run_keeps(run):
    """The preview reads the loaded model's own (shifted) schedule: never-freed pixels are the run's exact pixels."""
    block = run.family.latent_block
    levels = np.round(np.linspace(0, 252, W // block)).astype(np.uint8)
    m = np.repeat(np.tile(levels, (H, 1)), block, axis=1)
    body = preview_body({"map": grey_url(m)}, scheduler=run.family.scheduler)
    status, out = run.webui.request("POST", PREVIEW, body)
    assert status == 200, out
    free = free_calls(out)
    never = free == out["calls"]
    args = {"enabled": True, "map": grey(m), "preserve": False}
    (result,), _ = generate(run.webui, run.request(args, steps=8, denoising_strength=1.0))
    exact = (result == run.source).all(axis=2).reshape(H // block, block, W // block, block).all(axis=(1, 3))
    assert never.any() and not never.all()
    np.testing.assert_array_equal(exact[never], True)  # every pixel the preview keeps is kept, byte for byte
    assert not exact[free == 0].any(), "pixels free from the first call are generated"


def test_the_init_image_reaches_an_edit_model_as_a_reference_and_held_pixels_stay_exact(run):
    """Flux Kontext (Flux dev's weights under a "kontext" path) and Qwen-Image-Edit (under a "qwen...edit" path: the
    init image also goes through the text encoder's vision tower) get the init image as a reference besides the
    start latent: the map still holds its black half exactly, and the free half differs from the same run on the
    same weights without the reference (Flux dev, Qwen-Image)."""
    if run.name not in REFERENCE_FREE_TWIN:
        pytest.skip(f"{run.name} reads no reference from its file's path")
    dev = configured().get(REFERENCE_FREE_TWIN[run.name])
    if dev is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no {REFERENCE_FREE_TWIN[run.name]} checkpoint to compare with")
    args = {"enabled": True, "map": grey(checks.half_map(W, H)), "preserve": False}
    body = run.request(args, denoising_strength=1.0)
    (with_reference,), _ = generate(run.webui, body)
    with on_checkpoint(run.webui, checkpoint_title(run.webui, dev)):
        (without,), _ = generate(run.webui, body)
    for out in (with_reference, without):
        assert np.array_equal(out[:, : W // 2], run.source[:, : W // 2])
    assert not np.array_equal(with_reference[:, W // 2 :], without[:, W // 2 :]), "the reference reached the model"


def test_a_model_whose_img2img_ignores_the_init_image_is_refused_with_a_message():
    """Forge Neo's Wan 2.1 starts img2img from an empty latent (``encode_first_stage`` returns the latent of zeros
    and passes the picture only as a concatenated condition): a map there would hold pixels on a blank, so the
    extension refuses it with a message that says why (HTTP 4xx), while the host's own img2img runs and the next
    request works. Set ``wan=<checkpoint>`` in DIFFDIFF_TEST_CHECKPOINTS (tests/tools/make_wan_vae_checkpoints.py)."""
    wanted = configured().get("wan")
    if wanted is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no wan checkpoint")
    webui = WebUI(webui_url())
    with on_checkpoint(webui, checkpoint_title(webui, wanted)):
        run = Run("wan", FlowFamily(("Euler",)), webui, baked_vae(webui), block_image(W, H, seed=11))
        status, out = webui.request("POST", "/sdapi/v1/img2img", run.request(steps=2))
        assert status == 200, f"the host's own Wan img2img fails: {out}"
        args = {"enabled": True, "map": grey(checks.half_map(W, H))}
        status, out = webui.request("POST", "/sdapi/v1/img2img", run.request(args, denoising_strength=1.0, steps=2))
        assert 400 <= status < 500, (status, out)
        assert "does not start from the init image" in str(out), out
        status, out = webui.request("POST", "/sdapi/v1/img2img", run.request(steps=2))
        assert status == 200, "the WebUI works on after the refusal"
