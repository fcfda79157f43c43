"""The evaluation tool's API client and whole protocol against a live WebUI (python -m lib_diffdiff evaluate-webui
with a handful of generations). Needs DIFFDIFF_WEBUI_URL and the transparent VAE; random weights are enough: the
checks are on the mechanics (every method's requests accepted, map and masks honoured), not on image quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lib_diffdiff.cli import main
from lib_diffdiff.evaluation.client import Cache, WebUIClient
from lib_diffdiff.evaluation.inputs import synthetic_images
from lib_diffdiff.evaluation.methods import Settings, body
from lib_diffdiff.evaluation.patterns import pattern

from .webui import URL_VARIABLE, webui_url

pytestmark = pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against")
SIZE = 64


def test_client_reads_the_webui(webui):
    client = WebUIClient(webui.url)
    scripts = client.scripts()
    assert "differential diffusion" in scripts and "soft inpainting" in scripts
    assert client.checkpoint()


def test_each_method_does_what_its_request_says(webui, vae):
    """Through the real API: the extension keeps the gradient's black column exact and changes more toward
    white; inpaint keeps exactly what its binarised mask keeps."""
    client = WebUIClient(webui.url)
    image = synthetic_images(1, SIZE)[0][1]
    source = np.asarray(image).astype(int)
    m = pattern("gradient", SIZE)
    settings = Settings(size=SIZE, steps=4)
    extra = {"override_settings": vae}
    out = np.asarray(client.img2img(body("diffdiff", m, image, 1, settings, extra=extra))).astype(int)
    assert np.array_equal(out[:, 0], source[:, 0])  # strength 0: kept exact
    change = np.abs(out - source).mean(axis=(0, 2))
    assert change[: SIZE // 4].mean() < change[-SIZE // 4 :].mean() and change[-8:].mean() > 5
    out = np.asarray(client.img2img(body("inpaint", m, image, 1, settings, 0.5, extra=extra))).astype(int)
    kept = m < 0.5
    assert np.array_equal(out[kept], source[kept]) and np.abs(out[~kept] - source[~kept]).mean() > 5


def test_the_command_runs_end_to_end(webui, vae, tmp_path):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"override_settings": vae}))
    out = tmp_path / "out"
    argv = [
        "evaluate-webui",
        "--url",
        webui.url,
        "--out",
        str(out),
        "--synthetic",
        "1",
        "--size",
        str(SIZE),
        "--steps",
        "4",
        "--patterns",
        "gradient",
        "--thresholds",
        "0.5",
        "--extra",
        str(extra),
    ]
    assert main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["failures"] == [] and {"diffdiff", "inpaint", "img2img"} <= set(report["results"])
    # Forge's Soft Inpainting returns the input unchanged (forge#3024): then a note instead of a score
    assert "soft-inpainting" in report["results"] or any(n.startswith("soft-inpainting:") for n in report["notes"])
    assert report["results"]["diffdiff"]["gradient"]["cam"] > 0.5  # random weights, yet the map shows
    assert (out / "measured_maps.png").is_file() and "| CAM (↑) |" in (out / "table.md").read_text()
    cached = {p.stem for p in Cache(out / "cache").folder.glob("*.png")}
    assert len(cached) == report["generations"]
