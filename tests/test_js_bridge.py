"""The browser code and the server agree: javascript/diffdiff_core.js, run by node, decodes the server's run preview
to the same held masks as lib_diffdiff, and reads pixels into the same grey values as the server reads an upload."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff.core.noise_schedules import karras_sigmas
from lib_diffdiff.core.schedule import kdiffusion_start_levels
from lib_diffdiff.maps.reading import load_change_map
from lib_diffdiff.tools.foresee import preview_run

CORE = Path(__file__).resolve().parents[1] / "javascript" / "diffdiff_core.js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def node(script: str, payload) -> object:
    code = f"const D = require({json.dumps(str(CORE))});\nconst input = JSON.parse(require('fs').readFileSync(0));\n"
    done = subprocess.run(
        ["node", "-e", code + script], input=json.dumps(payload), capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


def test_preview_json_decodes_to_the_same_held_masks_in_the_browser():
    rng = np.random.default_rng(1)
    m = np.round(rng.random((9, 13)) * 255) / 255
    sigmas = karras_sigmas(20).tolist()
    levels = sigmas[20 - 19 - 1 : -1]
    preview = preview_run(m, 1.0, 20, kdiffusion_start_levels(sigmas, 20), levels)
    out = node(
        "const p = D.decodePreview(input);"
        "const held = []; for (let k = 0; k < input.calls; k++) held.push(Array.from(D.heldAt(p, k)));"
        "console.log(JSON.stringify({held, map: Array.from(p.map)}));",
        preview.to_json(),
    )
    for k in range(preview.calls):
        np.testing.assert_array_equal(np.array(out["held"][k]).reshape(9, 13), preview.held(k)[0], f"call {k}")
    np.testing.assert_array_equal(np.array(out["map"]).reshape(9, 13), np.rint(m * 255))


def test_pixels_become_the_same_greys_in_the_browser_and_on_the_server():
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, size=(16, 16, 4), dtype=np.uint8)
    rgba[:4, :, 0:3] = rgba[:4, :, :1]  # grey rows (the editor's own pixels) as well as colour
    rgba[:2, :, 3] = 255
    out = node("console.log(JSON.stringify(Array.from(D.GreyMap.fromRGBA(16, 16, input).data)))", rgba.ravel().tolist())
    browser = np.array(out).reshape(16, 16)
    server = load_change_map(Image.fromarray(rgba, "RGBA")) * 255
    np.testing.assert_array_equal(browser[:2], np.rint(server[:2]))  # opaque grey: exact
    assert np.abs(browser - server).max() <= 1.0  # colour and alpha: within a rounding


def test_the_browser_knows_which_sources_read_no_pixels_by_their_server_names():
    from lib_diffdiff.sources import NEEDS_MASK
    from lib_diffdiff.webui.settings import SOURCES

    without = node("console.log(JSON.stringify(D.SOURCES_WITHOUT_IMAGE));", None)
    expected = {"painted", SOURCES["painted"], *NEEDS_MASK, *(SOURCES[s] for s in NEEDS_MASK)}
    assert set(without) == expected
    reads = node("console.log(JSON.stringify(input.map(D.sourceReadsImage)));", [*SOURCES.values(), *SOURCES])
    assert reads == [s not in ("painted", *NEEDS_MASK) for s in [*SOURCES, *SOURCES]]
