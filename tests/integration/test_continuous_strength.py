"""Continuous strength (the ``continuous`` setting) against a live WebUI, with a transparent VAE: a ramp map at
few steps comes out smooth where the step rule makes a staircase, on the samplers and schedule types the host lists,
at CFG 1 and with CFG; black stays exact, constant maps stay img2img bit for bit, and a fan of 8 strengths at 4
steps gives 8 different columns. The measurement is lib_diffdiff.tools.smoothness, as in benchmarks/bench_smooth.py.

The VAE is the transparent one built with gain 16 (``tests/tools/make_transparent_vae.py OUT --scale 0.18215
--gain 16``, in models/VAE with "gain16" in its name, or named by DIFFDIFF_TEST_GAIN_VAE): with the unit-gain one a
random-weight model clips about 97 % of the pixels at strength 1, so the change stops growing with strength in any
mode and the measurement would show the clipping, not the schedule. Round trips stay pixel-exact with either.

Needs DIFFDIFF_WEBUI_URL (see test_webui_api.py); skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lib_diffdiff.tools.smoothness import column_change, column_values, ramp_fit, ramp_image_map, spearman, step_bands

from .checks import generate, grey, infotext
from .webui import URL_VARIABLE, block_image, decode, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W, H = 256, 64
SEEDS = 3
"""The measurement averages a batch of 3 (seeds 1234, 1235, 1236)."""
SCHEDULE_TYPES = ["SGM Uniform", "Align Your Steps", "Simple", "Karras", "Exponential"]


@pytest.fixture(scope="module")
def vae(webui):
    """The override_settings selecting the gain-16 transparent VAE (this module's own, see the docstring)."""
    name = webui.gain_vae_name()
    if name is None:
        pytest.skip(
            "no gain-16 transparent VAE on this WebUI: make one with tests/tools/make_transparent_vae.py "
            "OUT.safetensors --scale 0.18215 --gain 16 into models/VAE (a name containing gain16)"
        )
    return webui.vae_settings(name)


@pytest.fixture(scope="module")
def image():
    return block_image(W, H, seed=3)


@pytest.fixture(scope="module")
def source(image):
    return np.asarray(image).astype(np.int16)


def ramp() -> np.ndarray:
    """The ramp as the 8-bit grey map that is sent (0 at the left edge, 255 at the right)."""
    return np.round(ramp_image_map(W, H) * 255.0).astype(np.uint8)


def measure(webui, vae, image, source, continuous: bool, steps: int, **overrides):
    """(latent-column map values, mean change per latent column over the batch, infotext) of a ramp run."""
    m = ramp()
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(m), "preserve": False, "continuous": continuous},
        denoising_strength=1.0,
        steps=steps,
        batch_size=SEEDS,
        **overrides,
    )
    outs, info = generate(webui, body)
    change = np.mean([column_change(source, out) for out in outs], axis=0)
    return column_values(m / 255.0), change, infotext(info)


@pytest.mark.parametrize("steps", [4, 6, 8])
def test_a_ramp_is_smooth_in_continuous_mode_and_a_staircase_with_the_step_rule(webui, vae, image, source, steps):
    values, smooth, info = measure(webui, vae, image, source, True, steps)
    assert "Differential diffusion continuous: True" in info
    bands = step_bands(values, 1.0, steps)
    fit = ramp_fit(values, smooth, bands)
    assert fit.smooth(), fit.line()
    _, stairs, info = measure(webui, vae, image, source, False, steps)
    assert "Differential diffusion continuous" not in info
    if steps == 4:  # 8 latent columns a band: wide enough for the flat bands to show
        staircase = ramp_fit(values, stairs, bands)
        assert abs(staircase.band_ratio) < 0.25, staircase.line()


@pytest.mark.parametrize("scheduler", SCHEDULE_TYPES)
@pytest.mark.parametrize("cfg", [1.0, 5.0])
def test_smooth_on_the_few_step_schedule_types_at_cfg_1_and_with_cfg(webui, vae, image, source, scheduler, cfg):
    known = {s.get("label", s.get("name")) for s in webui.get("/sdapi/v1/schedulers")}
    if scheduler not in known:
        pytest.fail(f"the host lists no schedule type {scheduler!r}: {sorted(known)}")
    values, change, _ = measure(
        webui, vae, image, source, True, 4, scheduler=scheduler, cfg_scale=cfg, prompt="a photo of a cat"
    )
    fit = ramp_fit(values, change, step_bands(values, 1.0, 4))
    assert fit.smooth(), f"{scheduler}, CFG {cfg}: {fit.line()}"


def samplers(webui) -> list[str]:
    return [s["name"] for s in webui.get("/sdapi/v1/samplers")]


def test_every_sampler_keeps_black_exact_and_grows_the_change_with_the_value(webui, vae, image, source):
    """A map black on its left quarter and a ramp on the rest, at 4 steps (LCM among the samplers): black exact,
    the change rising along the ramp; the figures of each sampler are printed."""
    m = ramp()
    m[:, : W // 4] = 0
    values = column_values(m / 255.0)
    failures, figures, host_broken = [], [], []
    for sampler in samplers(webui):
        body = payload(
            image,
            vae,
            {"enabled": True, "map": grey(m), "preserve": False, "continuous": True},
            denoising_strength=1.0,
            steps=4,
            sampler_name=sampler,
        )
        status, out = webui.request("POST", "/sdapi/v1/img2img", body)
        if status != 200:
            plain, _ = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, sampler_name=sampler, steps=4))
            (host_broken if plain != 200 else failures).append(f"{sampler}: HTTP {status} {str(out)[:200]}")
            continue
        result = decode(out["images"][0])
        if result.std() == 0:
            host_broken.append(f"{sampler}: blank result")
            continue
        if not np.array_equal(result[:, : W // 4], source[:, : W // 4]):
            failures.append(f"{sampler}: black pixels changed")
        change = column_change(source, result)
        ramp_columns = values > 0
        rho = spearman(values[ramp_columns], change[ramp_columns])
        figures.append(f"{sampler}: Spearman {rho:.3f}")
        if not rho > 0.8:
            failures.append(f"{sampler}: the change does not grow with the value (Spearman {rho:.3f})")
    print("\n".join(figures))
    assert "LCM" in samplers(webui)
    assert not failures, "\n".join(failures)
    if host_broken:
        print("samplers whose plain img2img fails or comes back blank on this host too:", host_broken)


@pytest.mark.parametrize("level,strength", [(255, 1.0), (140, 1.0), (200, 0.7)])
def test_a_constant_map_is_img2img_bit_for_bit(webui, vae, image, level, strength):
    (plain,), _ = generate(webui, payload(image, vae, denoising_strength=level / 255 * strength, steps=4))
    m = np.full((H, W), level, np.uint8)
    args = {"enabled": True, "map": grey(m), "continuous": True}
    (out,), _ = generate(webui, payload(image, vae, args, denoising_strength=strength, steps=4))
    assert np.array_equal(out, plain)


def test_a_fan_of_8_strengths_at_4_steps_gives_8_different_columns(webui, vae, image, source):
    strengths = [round(0.125 * (i + 1), 3) for i in range(8)]
    starts = step_bands(np.array(strengths), 1.0, 4)
    assert len(set(starts.tolist())) == 4, "the step rule has 4 starts for these 8 strengths at 4 steps"
    args = {
        "enabled": True,
        "mode": "fan",
        "fan_strengths": strengths,
        "fan_labels": False,
        "preserve": False,
        "continuous": True,
    }
    outs, _ = generate(webui, payload(image, vae, args, steps=4, batch_size=SEEDS))
    change = np.mean([np.abs(out - source).mean(axis=(0, 2)) for out in outs], axis=0)
    means = [change[i * 32 : (i + 1) * 32].mean() for i in range(8)]  # 32 pixel columns each
    assert all(a < b for a, b in zip(means, means[1:])), means


def test_soft_inpaint_in_continuous_mode_keeps_far_pixels_exact(webui, vae, image, source):
    mask = np.zeros((H, W), np.uint8)
    mask[16:48, 96:160] = 255
    args = {"enabled": True, "mode": "soft inpaint", "softness": 8, "preserve": False, "continuous": True}
    (out,), info = generate(
        webui,
        payload(image, vae, args, mask=grey(mask), mask_blur=0, inpainting_fill=1, denoising_strength=1.0, steps=4),
    )
    assert "Differential diffusion continuous: True" in infotext(info)
    assert np.array_equal(out[:, :56], source[:, :56])  # 5 softness away from the mask: black on the map
    assert np.abs(out[24:40, 112:144] - source[24:40, 112:144]).mean() > 1.0
