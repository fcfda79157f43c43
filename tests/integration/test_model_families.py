"""The model families WebUI users run, live: SDXL (with the refiner switch), v-prediction (SD 2.x 768-v and an SDXL
v-pred checkpoint), and 9-channel inpainting checkpoints (SD1.5 and SDXL) conditioned per step.

Set DIFFDIFF_WEBUI_URL as for the other live tests, and DIFFDIFF_TEST_CHECKPOINTS to the checkpoints to use, as
``family=name`` pairs separated by commas, ``name`` being part of the checkpoint's title in the WebUI, e.g.
``sdxl=random-sdxl.,sdxl-vpred=random-sdxl-vpred,sd2-768v=random-sd2-768v,sd15-inpaint=random-sd15-inpaint,
sdxl-inpaint=random-sdxl-inpaint,sdxl-refiner=random-sdxl-refiner`` (random-weight files made by
tests/tools/make_checkpoints.py). Families left out are skipped with that reason. Pixel checks need the transparent
VAE of the family's latent: found among the host's VAEs by "transparent" in the name, with "xl" for the SDXL one
(tests/tools/make_transparent_vae.py --scale 0.13025). Each family's checkpoint is loaded once (POST options) and
the one loaded before is restored at the end.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from lib_diffdiff import column_bounds
from lib_diffdiff.webui.infotext import INPAINT_CONDITIONINGS

from . import checks
from .checks import generate, grey, infotext
from .webui import URL_VARIABLE, WebUI, block_image, webui_url
from .webui import payload as base_payload

CHECKPOINTS_VARIABLE = "DIFFDIFF_TEST_CHECKPOINTS"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64
STEPS = 4
"""Steps of every request here (SDXL takes ~5 s a step on a 2-core CPU)."""
KDIFFUSION = ["Euler", "Euler a", "DPM++ 2M", "DPM++ SDE", "Heun", "DPM2", "Restart", "LCM"]
TIMESTEP = ["DDIM", "PLMS", "UniPC"]


@dataclass(frozen=True)
class Family:
    xl: bool
    """SDXL latent (the SDXL transparent VAE, scale 0.13025)."""
    samplers: tuple[str, ...]
    inpainting_model: bool = False


FAMILIES = {
    "sdxl": Family(True, tuple(KDIFFUSION + ["DDIM", "UniPC"])),
    "sdxl-vpred": Family(True, ("Euler", "Euler a", "DPM++ 2M", "Heun", *TIMESTEP)),
    "sd2-768v": Family(False, ("Euler", "Euler a", "DPM++ 2M", "Heun", *TIMESTEP)),
    "sd15-inpaint": Family(False, ("Euler", "DPM++ 2M", "Heun", "DDIM", "UniPC"), inpainting_model=True),
    "sdxl-inpaint": Family(True, ("Euler", "DPM++ 2M", "DDIM"), inpainting_model=True),
}


def payload(*args, **kwargs) -> dict:
    """The img2img request of the other live tests, without live previews (A1111 would try to download its SDXL
    preview decoder at every step)."""
    body = base_payload(*args, **{"steps": STEPS, **kwargs})
    body["override_settings"]["live_previews_enable"] = False
    return body


def configured() -> dict[str, str]:
    pairs = [p.split("=", 1) for p in os.environ.get(CHECKPOINTS_VARIABLE, "").split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs}


def checkpoint_title(webui: WebUI, wanted: str) -> str:
    titles = [m["title"] for m in webui.get("/sdapi/v1/sd-models")]
    found = [t for t in titles if wanted in t]
    assert found, f"no checkpoint matching {wanted!r} in {titles}"
    return found[0]


def current_checkpoint(webui: WebUI) -> str:
    return webui.get("/sdapi/v1/options")["sd_model_checkpoint"]


def without_hash(title: str) -> str:
    """A checkpoint's title without its " [hash]": a file never loaded has no hash in its listed title yet, and
    gets one once loaded."""
    return re.sub(r"\s*\[[0-9a-f]+\]$", "", title)


def load_checkpoint(webui: WebUI, title: str) -> None:
    """Switch checkpoints, unloading the current one first: two SDXL models at once do not fit in 24 GB."""
    if without_hash(current_checkpoint(webui)) == without_hash(title):
        return
    webui.request("POST", "/sdapi/v1/unload-checkpoint")
    status, body = webui.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": title}, timeout=1800)
    assert status == 200, body
    # A1111 answers 200 when the load fails, and goes back to the previous checkpoint: the tests would run on it
    loaded = current_checkpoint(webui)
    assert without_hash(loaded) == without_hash(title), (
        f"the host did not load {title} (it has {loaded}): see its console"
    )


@contextmanager
def on_checkpoint(webui: WebUI, title: str) -> Iterator[None]:
    """Run on checkpoint `title`, then put back the one loaded before, also when the setup fails or skips: else
    every later test file would run on the family's model."""
    before = current_checkpoint(webui)
    try:
        load_checkpoint(webui, title)
        yield
    finally:
        load_checkpoint(webui, before)


def family_vae(webui: WebUI, xl: bool) -> dict:
    listing = "/sdapi/v1/sd-modules" if webui.is_forge() else "/sdapi/v1/sd-vae"
    names = [v["model_name"] for v in webui.get(listing)]
    wanted = os.environ.get("DIFFDIFF_TEST_VAE_XL" if xl else "DIFFDIFF_TEST_VAE")
    for name in names:
        lower = name.lower()
        if (wanted and name == wanted) or (not wanted and "transparent" in lower and ("xl" in lower) == xl):
            return {"name": name, "settings": webui.vae_settings(name)}
    pytest.skip(f"no transparent {'SDXL ' if xl else ''}VAE among {names} for pixel-exact checks")


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    name = request.param
    wanted = configured().get(name)
    if wanted is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no {name} checkpoint")
    webui = WebUI(webui_url())
    with on_checkpoint(webui, checkpoint_title(webui, wanted)):
        vae = family_vae(webui, FAMILIES[name].xl)
        image = block_image(W, H, seed=11)
        status, out = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae["settings"], steps=2))
        if status >= 500:  # plain img2img, no extension: the host itself cannot run this family (Neo has no SD 2.x)
            pytest.skip(f"the host cannot run {name} without the extension either: {out}")
        assert status == 200, out
        assert webui.vae_used(out, vae["name"]), "the transparent VAE was not applied"
        yield name, FAMILIES[name], webui, vae["settings"], image


def half_map(width: int = W, height: int = H) -> np.ndarray:
    return checks.half_map(width, height)


def bands() -> np.ndarray:
    """Keep | a low strength (freed late in the run) | full strength, in 3 column bands of latent blocks."""
    m = np.zeros((H, W), np.uint8)
    m[:, 24:40] = 90
    m[:, 40:] = 255
    return m


def test_a_constant_map_is_img2img(family):
    _, _, webui, vae, image = family
    (plain,), _ = generate(webui, payload(image, vae, denoising_strength=191 / 255 * 0.8))
    body = payload(image, vae, {"enabled": True, "map": grey(np.full((H, W), 191))}, denoising_strength=0.8)
    (out,), info = generate(webui, body)
    assert np.array_equal(out, plain)
    assert "Differential diffusion: True" in infotext(info)


def test_held_pixels_are_exact_on_the_samplers(family):
    name, fam, webui, vae, image = family
    available = {s["name"] for s in webui.get("/sdapi/v1/samplers")}
    failures, missing = [], [s for s in fam.samplers if s not in available]
    host_broken = []
    for sampler in (s for s in fam.samplers if s in available):
        status, problem = checks.held_half(webui, vae, payload, image, sampler)
        if (
            status != 200
            and webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, sampler_name=sampler))[0] != 200
        ):
            host_broken.append(problem)  # plain img2img fails too: the host's own limitation (Forge's UniPC)
        elif problem:
            failures.append(problem)
    assert not failures, "\n".join(failures)
    assert len(missing) < len(fam.samplers) / 2, f"most samplers missing on this host: {missing}"
    if missing or host_broken:
        message = f"{name}: samplers this host lacks: {missing}; failing without the extension: {host_broken}"
        warnings.warn(message, stacklevel=1)


def test_a_change_map_inside_an_inpaint_mask_with_only_masked(family):
    _, _, webui, vae, _ = family
    checks.check_only_masked_keeps_the_map_aligned(webui, vae, payload)


def test_soft_inpaint_leaves_far_pixels_exact(family):
    _, _, webui, vae, _ = family
    checks.soft_inpaint(webui, vae, payload, 96, (40, 56), 4)


def test_fan_and_batch(family):
    _, _, webui, vae, image = family
    source = np.asarray(image).astype(np.int16)
    strengths = [0.0, 0.5, 1.0]
    fan = {"enabled": True, "mode": "fan", "fan_strengths": strengths, "fan_labels": False, "preserve": False}
    (out,), _ = generate(webui, payload(image, vae, fan, denoising_strength=0.3))
    bounds = column_bounds(W, 3)
    change = [np.abs(out[:, a:b] - source[:, a:b]).mean() for a, b in zip(bounds, bounds[1:])]
    assert change[0] == 0 and change[2] > 1.0, change
    body = payload(
        image, vae, {"enabled": True, "map": grey(half_map()), "preserve": False}, batch_size=2, denoising_strength=1.0
    )
    images, _ = generate(webui, body)
    images = images[-2:]
    for out in images:
        assert np.array_equal(out[:, : W // 2], source[:, : W // 2])
    assert not np.array_equal(images[0][:, W // 2 :], images[1][:, W // 2 :]), "each image has its own noise"


@pytest.mark.parametrize("family", ["sdxl"], indirect=True)
def test_the_refiner_switch_in_the_middle_of_a_differential_run(family):
    _, _, webui, vae, image = family
    refiner = configured().get("sdxl-refiner")
    if refiner is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no sdxl-refiner checkpoint (any checkpoint of another name)")
    refine = {"refiner_checkpoint": checkpoint_title(webui, refiner), "refiner_switch_at": 0.5, "steps": 8}
    source = np.asarray(image).astype(np.int16)
    # a constant map is still img2img, with the same refiner settings
    (plain,), plain_info = generate(webui, payload(image, vae, denoising_strength=0.8, **refine))
    assert "Refiner:" in infotext(plain_info), "the host did not switch to the refiner"
    body = payload(image, vae, {"enabled": True, "map": grey(np.full((H, W), 255))}, denoising_strength=0.8, **refine)
    (out,), _ = generate(webui, body)
    assert np.array_equal(out, plain)
    # held pixels stay exact across the switch, and pixels freed only after it still change: the schedule goes on
    body = payload(image, vae, {"enabled": True, "map": grey(bands()), "preserve": False}, denoising_strength=1.0)
    (without,), _ = generate(webui, body)
    (out,), info = generate(webui, {**body, **refine})
    assert "Refiner:" in infotext(info)
    assert np.array_equal(out[:, :24], source[:, :24]), "held pixels exact across the refiner switch"
    late = (slice(None), slice(24, 40))
    assert np.abs(out[late] - source[late]).mean() > 1.0, "the band freed after the switch changes"
    assert not np.array_equal(out[:, 24:], without[:, 24:]), "and the refiner took part in it"


@pytest.mark.parametrize("family", [n for n, f in FAMILIES.items() if f.inpainting_model], indirect=True)
def test_inpainting_models_are_conditioned_per_step(family):
    _, _, webui, vae, image = family
    source = np.asarray(image).astype(np.int16)
    gradient = np.zeros((H, W))
    gradient[:, 16:] = np.linspace(40, 255, W - 16)
    args = {"enabled": True, "map": grey(gradient), "preserve": False}
    (per_step,), info = generate(webui, payload(image, vae, args, denoising_strength=1.0, steps=8))
    (static,), static_info = generate(
        webui, payload(image, vae, {**args, "step_conditioning": False}, denoising_strength=1.0, steps=8)
    )
    conditionings = int(infotext(info).split(f"{INPAINT_CONDITIONINGS}: ")[1].split(",")[0])
    assert conditionings > 2, "the model received a new conditioning as pixels were freed"
    assert INPAINT_CONDITIONINGS not in infotext(static_info)
    assert np.array_equal(per_step[:, :16], source[:, :16]) and np.array_equal(static[:, :16], source[:, :16])
    assert not np.array_equal(per_step[:, 16:], static[:, 16:]), "what the model was told changed what it made"
    # the exact conditioning (one encode per free set) against the default blend: the same free sets; the test VAE's
    # encoder is block-local (8x8 means), so the blend is exact up to rounding and the outputs nearly agree, far
    # closer than either is to the host's single conditioning
    (exact,), exact_info = generate(
        webui, payload(image, vae, {**args, "exact_conditioning": True}, denoising_strength=1.0, steps=8)
    )
    assert "Differential diffusion exact conditioning: True" in infotext(exact_info)
    assert f"{INPAINT_CONDITIONINGS}: {conditionings}," in infotext(exact_info) + ","
    assert np.array_equal(exact[:, :16], source[:, :16])
    apart = np.abs(exact[:, 16:] - static[:, 16:]).mean()
    assert np.abs(exact[:, 16:] - per_step[:, 16:]).mean() < 0.1 * apart, "blend and exact agree"
    # a constant map: the host's own conditioning throughout
    (_,), info = generate(webui, payload(image, vae, {"enabled": True, "map": grey(np.full((H, W), 200))}))
    assert f"{INPAINT_CONDITIONINGS}: 1" in infotext(info)
