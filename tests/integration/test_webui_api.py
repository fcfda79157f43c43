"""Integration tests against a live WebUI over its HTTP API (``/sdapi/v1/img2img`` with ``alwayson_scripts``).

Set DIFFDIFF_WEBUI_URL (e.g. http://127.0.0.1:7860) to a WebUI started with ``--api`` that has this extension
installed, any SD1.x checkpoint loaded (random weights are fine) and the transparent VAE of
``shared/tools/make_transparent_vae.py`` in models/VAE (found by "transparent" in its name, or DIFFDIFF_TEST_VAE).
The VAE makes pixel checks exact: an image of 8x8 blocks round-trips, and a held latent pixel decodes to exactly its
input block. Without the variable every test here is skipped with that reason.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff import column_bounds
from lib_diffdiff.webui.settings import SETTINGS

from . import checks
from .checks import generate, grey, infotext
from .webui import SCRIPT, URL_VARIABLE, b64, block_image, payload, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64


@pytest.fixture(scope="module")
def image(webui, vae):
    picture = block_image(W, H)
    status, out = webui.request("POST", "/sdapi/v1/img2img", payload(picture, vae))
    assert status == 200 and webui.vae_used(out, webui.vae_name()), "the transparent VAE was not applied"
    return picture


@pytest.fixture(scope="module")
def source(image):
    return np.asarray(image).astype(np.int16)


def half_map(width=W, height=H, keep_left=True) -> np.ndarray:
    return checks.half_map(width, height, keep_left)


def test_the_script_and_its_arguments_are_listed(webui):
    info = {s["name"]: s for s in webui.get("/sdapi/v1/script-info")}
    assert SCRIPT in info and info[SCRIPT]["is_alwayson"] and info[SCRIPT]["is_img2img"]
    labels = [a["label"] for a in info[SCRIPT]["args"]]
    assert labels[: len(SETTINGS)] == [s.label for s in SETTINGS]
    assert len(labels) == len(SETTINGS) + 1, "behind the settings: only the editor's hidden map textbox"


def test_disabled_is_bit_identical_in_every_form(webui, vae, image):
    (plain,), _ = generate(webui, payload(image, vae))
    for form in ({"enabled": False, "map": "not even base64"}, [False], {}):
        (out,), info = generate(webui, payload(image, vae, form))
        assert np.array_equal(out, plain), form
        assert "Differential diffusion" not in infotext(info)


@pytest.mark.parametrize("level,strength", [(128, 1.0), (255, 0.6), (191, 0.8)])
def test_a_constant_map_is_img2img_at_that_strength(webui, vae, image, level, strength):
    (plain,), _ = generate(webui, payload(image, vae, denoising_strength=level / 255 * strength))
    m = np.full((H, W), level)
    (out,), info = generate(webui, payload(image, vae, {"enabled": True, "map": grey(m)}, denoising_strength=strength))
    assert np.array_equal(out, plain)
    assert "Differential diffusion: True" in infotext(info)


def samplers(webui) -> list[str]:
    return [s["name"] for s in webui.get("/sdapi/v1/samplers")]


def test_held_pixels_are_exact_through_the_latent_path_on_every_sampler(webui, vae, image, source):
    failures, host_broken = [], []
    for sampler in samplers(webui):
        status, message = checks.held_half(webui, vae, payload, image, sampler)
        if status != 200:
            plain_status, _ = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, sampler_name=sampler))
            (host_broken if plain_status != 200 else failures).append(message)
        elif "px differ" in message:
            (plain,), _ = generate(webui, payload(image, vae, sampler_name=sampler, denoising_strength=1.0))
            # a blank plain result: the sampler breaks on this model by itself (reForge's RF samplers give NaN on SD1)
            (host_broken if plain.std() == 0 else failures).append(message)
        elif message:
            failures.append(message)
    assert not failures, "\n".join(failures)
    if host_broken:
        print("samplers whose plain img2img fails or comes back blank on this host too (not checked):", host_broken)


def test_preserve_pastes_back_pixels_that_share_a_latent_block_with_changed_ones(webui, vae, image, source):
    m = np.zeros((H, W), np.uint8)
    m[:, 28:] = 255  # latent column 3 (pixels 24..31) is part change: it is sampled, its pixels 24..27 are kept
    (kept,), _ = generate(webui, payload(image, vae, {"enabled": True, "map": grey(m)}, denoising_strength=1.0))
    (raw,), _ = generate(
        webui, payload(image, vae, {"enabled": True, "map": grey(m), "preserve": False}, denoising_strength=1.0)
    )
    assert np.array_equal(kept[:, :28], source[:, :28])
    assert not np.array_equal(raw[:, 24:28], source[:, 24:28]), "without preserve the shared block is generated"
    assert np.array_equal(kept[:, 28:], raw[:, 28:]), "preserve touches only the keep pixels"


def test_change_grows_with_the_map_value(webui, vae, image, source):
    m = np.zeros((H, W), np.uint8)
    bands = [0, 64, 128, 192, 255]
    for i, level in enumerate(bands[1:]):
        m[:, 16 * i : 16 * (i + 1)] = level
    change = np.zeros(4)
    for seed in (1, 2, 3):
        (out,), _ = generate(
            webui, payload(image, vae, {"enabled": True, "map": grey(m)}, denoising_strength=1.0, seed=seed, steps=10)
        )
        change += [np.abs(out[:, 16 * i : 16 * (i + 1)] - source[:, 16 * i : 16 * (i + 1)]).mean() for i in range(4)]
    assert all(a < b for a, b in zip(change, change[1:])), change


def test_soft_inpaint_leaves_far_pixels_exact_and_grades_a_ring(webui, vae):
    diff, _, _ = checks.soft_inpaint(webui, vae, payload, 128, (48, 80), 6, mask_blur=4, steps=10)
    inside = diff[52:76, 52:76].mean()
    ring = diff[40:48, 52:76].mean()  # just outside the mask, where the blurred map is between 0 and 1/2
    outer = diff[30:36, 52:76].mean()
    assert inside > ring > outer, (inside, ring, outer)
    assert ring > 0.5, "the ring outside the mask is changed a little: the blend comes from the diffusion"


def test_only_masked_keeps_the_map_aligned(webui, vae):
    checks.check_only_masked_keeps_the_map_aligned(webui, vae, payload)


def test_fan_columns_follow_their_strengths(webui, vae, image, source):
    strengths = [0.0, 0.5, 1.0]
    body = payload(
        image,
        vae,
        {"enabled": True, "mode": "fan", "fan_strengths": strengths, "fan_labels": False, "preserve": False},
        denoising_strength=0.3,
    )
    (out,), info = generate(webui, body)
    bounds = column_bounds(W, 3)
    change = [np.abs(out[:, a:b] - source[:, a:b]).mean() for a, b in zip(bounds, bounds[1:])]
    assert change[0] == 0 and change[1] < change[2], change
    assert 'Differential diffusion fan: "0, 0.5, 1"' in infotext(info)
    (labelled,), _ = generate(webui, payload(image, vae, {"enabled": True, "mode": "fan", "fan_strengths": strengths}))
    assert not np.array_equal(labelled[:8], out[:8]), "labels are written at the top"


def test_batch_size_and_count_each_image_keeps_its_pixels(webui, vae, image, source):
    body = payload(
        image,
        vae,
        {"enabled": True, "map": grey(half_map()), "preserve": False},
        batch_size=3,  # 3: a batch size that divides no latent's area (a reshape by the batch failed on it once)
        n_iter=2,
        denoising_strength=1.0,
    )
    images, _ = generate(webui, body)
    images = images[-6:]  # a grid may come first
    assert len(images) == 6
    for out in images:
        assert np.array_equal(out[:, : W // 2], source[:, : W // 2])
    right = [out[:, W // 2 :] for out in images]
    assert all(not np.array_equal(a, b) for i, a in enumerate(right) for b in right[i + 1 :]), "each has its own noise"


@pytest.mark.parametrize(
    "args,extra,message",
    [
        ({"enabled": True, "map": "%%% not base64"}, {}, "base64"),
        ({"enabled": True, "map": b64(Image.new("L", (10, 10)))[:40]}, {}, "decode"),
        ({"enabled": True}, {}, "needs a change map"),
        ({"enabled": True, "map": "x", "colour": 1}, {}, "unknown Differential Diffusion field"),
        ({"enabled": True, "mode": "sideways"}, {}, "unknown Differential Diffusion mode"),
        ({"enabled": True, "mode": "fan", "fan_strengths": [0.5, 1.5]}, {}, r"[0, 1]"),
        ({"enabled": True, "mode": "fan", "fan_strengths": "a, b"}, {}, "numbers"),
        ({"enabled": True, "mode": "soft inpaint"}, {}, "needs an inpaint mask"),
        ({"enabled": True, "map": b64(Image.new("L", (W, H // 2), 255))}, {}, "aspect ratio"),
        ({"enabled": True, "map": b64(Image.new("L", (W, H), 0))}, {}, "black everywhere"),
        ({"enabled": "yes"}, {}, "true or false"),
        ({"enabled": True, "softness": -3, "mode": "soft inpaint"}, {}, "softness"),
    ],
)
def test_bad_input_fails_the_generation_with_its_message(webui, vae, image, args, extra, message):
    status, body = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, args, **extra))
    assert status == 422, body
    assert message in body["detail"] and body["detail"].startswith("Differential Diffusion:")


def test_the_webui_keeps_serving_after_bad_input(webui, vae, image):
    status, _ = webui.request("POST", "/sdapi/v1/img2img", payload(image, vae, {"enabled": True, "map": "%%"}))
    assert status == 422
    (plain,), _ = generate(webui, payload(image, vae))
    (again,), _ = generate(webui, payload(image, vae, {"enabled": False}))
    assert np.array_equal(plain, again)


@pytest.mark.parametrize("fmt", ["RGBA", "I;16", "P", "data-url", "JPEG-grey"])
def test_map_formats_are_accepted(webui, vae, image, source, fmt):
    m = half_map()
    if fmt == "RGBA":
        rgba = np.zeros((H, W, 4), np.uint8)
        rgba[..., :3] = 255
        rgba[..., 3] = m  # transparent = keep
        text = b64(Image.fromarray(rgba, "RGBA"))
    elif fmt == "I;16":
        text = b64(Image.fromarray(m.astype(np.uint16) * 257))
    elif fmt == "P":
        text = b64(Image.fromarray(m, "L").convert("P"))
    elif fmt == "data-url":
        text = "data:image/png;base64," + grey(m)
    else:
        text = b64(Image.fromarray(m, "L"), "JPEG")
    (out,), _ = generate(
        webui, payload(image, vae, {"enabled": True, "map": text, "preserve": False}, denoising_strength=1.0)
    )
    keep = slice(0, W // 2 - 8) if fmt == "JPEG-grey" else slice(0, W // 2)  # JPEG rings near the edge
    assert np.array_equal(out[:, keep], source[:, keep])


def test_positional_arguments_work_like_the_dict(webui, vae, image):
    named = payload(image, vae, {"enabled": True, "map": grey(half_map()), "preserve": False}, denoising_strength=1.0)
    positional = payload(
        image, vae, [True, "Change map", grey(half_map()), False, 1.0, 16, "0.2", True, False], denoising_strength=1.0
    )
    (a,), _ = generate(webui, named)
    (b,), _ = generate(webui, positional)
    assert np.array_equal(a, b)


def test_builtin_soft_inpainting_together_is_refused(webui, vae, image):
    body = payload(image, vae, {"enabled": True, "map": grey(half_map())})
    body["alwayson_scripts"]["soft inpainting"] = {"args": [True]}
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 422 and "Soft Inpainting" in out["detail"]


def test_xyz_axis_turns_the_extension_on_per_cell(webui, vae, image, source):
    info = next(s for s in webui.get("/sdapi/v1/script-info") if s["name"] == "x/y/z plot" and s["is_img2img"])
    choices = info["args"][0]["choices"]
    assert sum(c.startswith("DiffDiff ") for c in choices) == sum(s.xyz for s in SETTINGS), "axes added once"
    axis = choices.index("DiffDiff Differential Diffusion")
    # X: the enabled axis, "True, False" as text; include sub-images; use text inputs
    xyz_args = xyz_script_args(info["args"], x_type=axis, x_values="True, False", **{"Include Sub Images": True})
    (plain,), _ = generate(webui, payload(image, vae))
    body = payload(
        image,
        vae,
        {"enabled": False, "map": grey(half_map()), "preserve": False},
        script_name="x/y/z plot",
        script_args=xyz_args,
    )
    images, out = generate(webui, body)
    on, off = images[-2:]  # after the grid, one image per cell
    assert np.array_equal(off, plain)
    cell_infotexts = json.loads(out["info"])["infotexts"][-2:]
    assert "Differential diffusion: True" in cell_infotexts[0]
    assert "Differential diffusion" not in cell_infotexts[1], "the later, disabled cell carries no leftover keys"
    assert np.array_equal(on[:, : W // 2], source[:, : W // 2]) and not np.array_equal(on, plain)


def xyz_script_args(arg_info: list, x_type: int, x_values: str, **by_label) -> list:
    """Positional x/y/z plot args built from the host's own /script-info layout.

    Hosts differ (reForge adds "Draw individual labels", "Skip final grid generation", ...), so the layout is read,
    not hard-coded. Axis dropdowns take an index over the API; the value dropdowns are left empty because text
    inputs are switched on.
    """
    args, seen = [], set()
    for item in arg_info:
        label, value = item["label"], item["value"]
        first = label not in seen
        seen.add(label)
        if label == "X type":
            value = x_type
        elif label in ("Y type", "Z type"):
            value = 0
        elif label == "X values":
            value = x_values if first else None
        elif label in ("Y values", "Z values"):
            value = "" if first else None
        elif label == "Use text inputs instead of dropdowns":
            value = True
        elif label in by_label:
            value = by_label[label]
        args.append(value)
    missing = {"X type", "X values", "Use text inputs instead of dropdowns", *by_label} - seen
    assert not missing, f"x/y/z plot arguments not found in script-info: {sorted(missing)}"
    return args


def test_png_info_gives_back_the_settings(webui, vae, image):
    from lib_diffdiff.webui.infotext import ui_value

    body = payload(
        image, vae, {"enabled": True, "map": grey(half_map()), "invert": True, "multiplier": 1.5, "preserve": False}
    )
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    assert status == 200
    status, info = webui.request("POST", "/sdapi/v1/png-info", {"image": "data:image/png;base64," + out["images"][0]})
    assert status == 200
    params = {k: str(v) for k, v in info["parameters"].items()}
    assert ui_value("enabled", params) is True
    assert ui_value("invert", params) is True and ui_value("multiplier", params) == 1.5
    assert ui_value("preserve", params) is False and ui_value("mode", params) == "Change map"
    assert params["Differential diffusion map"].split()[1] == "0-1"


def test_an_interrupted_generation_leaves_nothing_behind(webui, vae, image):
    (plain,), _ = generate(webui, payload(image, vae))
    done = {}

    def long_run():
        done["result"] = webui.request(
            "POST",
            "/sdapi/v1/img2img",
            payload(image, vae, {"enabled": True, "map": grey(half_map())}, steps=60, denoising_strength=1.0),
        )

    worker = threading.Thread(target=long_run)
    worker.start()
    time.sleep(4)
    webui.request("POST", "/sdapi/v1/interrupt")
    worker.join(600)
    assert done["result"][0] == 200
    (after,), _ = generate(webui, payload(image, vae))
    assert np.array_equal(after, plain)
