"""Map sources in a real browser against a live WebUI: picking a source in the panel shows only its options, the
preview makes the map from the init image with no painted map, and the UI's Generate keeps the pixels the made map
leaves black exact; the depth source with the WebUI's own estimator, picked in the panel, too. Needs
DIFFDIFF_WEBUI_URL and the transparent VAE, like test_editor_browser.py, and for depth DIFFDIFF_DEPTH_ESTIMATOR (an
estimator whose weights are on the WebUI's disk, as in tests/integration/test_estimators_live.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from integration.webui import block_image, webui_url
from PIL import Image

from lib_diffdiff.maps.reading import load_change_map
from lib_diffdiff.sources import made_map

from .browser import console_errors, wait_for
from .test_editor_browser import driver, generate_in_ui, page, transparent_vae  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(webui_url() is None, reason="DIFFDIFF_WEBUI_URL is not set: no live WebUI to test in a browser"),
]
SIZE = 128


def dark_left() -> np.ndarray:
    a = np.asarray(block_image(SIZE, SIZE, seed=21)).copy()
    a[:, : SIZE // 2] = 0  # brightness 0: the Brightness source keeps it
    return a


@pytest.fixture(scope="module")
def dark_left_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "dark-left.png"
    Image.fromarray(dark_left(), "RGB").save(path)
    return path


def test_a_source_picked_in_the_panel_shows_its_options_previews_and_generates(page, dark_left_png, transparent_vae):  # noqa: F811
    page.upload_init_image(dark_left_png)
    page.enable()
    for elem_id, value in (("img2img_width", SIZE), ("img2img_height", SIZE), ("img2img_steps", 4)):
        page.set_number(elem_id, value)
    page.set_number("img2img_denoising_strength", 1.0)
    wait_for(lambda: "Upload or paint a change map" in page.preview_text(), what="the preview to ask for a map")
    assert not page.visible("diffdiff_source_reach") and not page.visible("diffdiff_source_colour")

    page.choose("diffdiff_source", "Near edges")
    wait_for(lambda: page.visible("diffdiff_source_reach"), what="Reach to show for the edges source")
    assert not page.visible("diffdiff_source_colour")
    edges = wait_for(lambda: "model calls" in page.preview_text() and page.preview_text(), what="an edges preview")
    page.choose("diffdiff_source", "Brightness")
    wait_for(lambda: not page.visible("diffdiff_source_reach"), what="Reach to hide for the brightness source")
    wait_for(lambda: "model calls" in page.preview_text() and page.preview_text() != edges, what="a brightness preview")
    assert page.preview_error() == ""
    seen = np.array(page.js("return Array.from(DiffDiff.preview.decoded.map)"), np.uint8)
    seen = seen.reshape(SIZE // 8, SIZE // 8)
    assert (seen[:, : SIZE // 16] == 0).all() and (seen[:, SIZE // 16 :] > 0).all(), "the preview's map is made"

    out, source = generate_in_ui(page, SIZE), dark_left().astype(np.int16)
    np.testing.assert_array_equal(out[:, : SIZE // 2], source[:, : SIZE // 2])
    assert np.abs(out[:, SIZE // 2 :] - source[:, SIZE // 2 :]).mean() > 10, "the bright half changed"
    assert console_errors(page.d, page.url) == []


def test_a_depth_source_picked_in_the_panel_previews_its_map_and_generates(page, transparent_vae, tmp_path):  # noqa: F811
    name = os.environ.get("DIFFDIFF_DEPTH_ESTIMATOR")
    if not name:
        pytest.skip("DIFFDIFF_DEPTH_ESTIMATOR is not set: name a depth estimator whose weights are on the WebUI's disk")
    path = tmp_path / "depth-init.png"
    image = np.asarray(block_image(SIZE, SIZE, seed=22))
    Image.fromarray(image, "RGB").save(path)
    page.upload_init_image(path)
    page.enable()
    for elem_id, value in (("img2img_width", SIZE), ("img2img_height", SIZE), ("img2img_steps", 4)):
        page.set_number(elem_id, value)
    page.set_number("img2img_denoising_strength", 1.0)
    page.set_number("diffdiff_black_point", 0.5)  # the far half of the depth range is kept
    page.set_number("diffdiff_quantize", 4)  # and the rest in 3 steps: no grey too small for the preview's 8 bits
    assert not page.visible("diffdiff_source_estimator")
    page.choose("diffdiff_source", "Depth (near = change)")
    wait_for(lambda: page.visible("diffdiff_source_estimator"), what="the Estimator choice to show for depth")
    assert not page.visible("diffdiff_source_reach")
    page.choose("diffdiff_source_estimator", name)
    wait_for(lambda: "model calls" in page.preview_text(), timeout=300, what="a depth preview")
    assert page.preview_error() == ""
    seen = np.array(page.js("return Array.from(DiffDiff.preview.decoded.map)"), np.uint8)
    seen = seen.reshape(SIZE // 8, SIZE // 8)
    assert (seen == 0).any() and len(np.unique(seen)) > 2, "a continuous depth map, its far half black"

    out = generate_in_ui(page, SIZE)
    kept = np.kron(seen == 0, np.ones((8, 8), bool))
    np.testing.assert_array_equal(out[kept], image.astype(np.int16)[kept])
    assert console_errors(page.d, page.url) == []


def test_the_sources_map_opens_in_the_editor_and_is_then_the_painted_map(page, dark_left_png):  # noqa: F811
    page.upload_init_image(dark_left_png)
    page.enable()
    for elem_id, value in (("img2img_width", SIZE), ("img2img_height", SIZE), ("img2img_steps", 4)):
        page.set_number(elem_id, value)
    page.choose("diffdiff_source", "Brightness")
    wait_for(lambda: "model calls" in page.preview_text(), what="a brightness preview")
    made = np.array(page.js("return Array.from(DiffDiff.preview.decoded.map)"), np.uint8)
    page.open_editor()
    page.js("document.querySelector('#diffdiff_start_made').click()")
    wait_for(lambda: page.painted_map(), what="the made map to open in the editor")
    wait_for(
        lambda: page.js("return document.querySelector('#diffdiff_source input').value") == "Painted or uploaded",
        what="Map source to switch to the painted map",
    )
    assert "Map source's map is open" in page.js("return document.getElementById('diffdiff_editor_status').textContent")
    opened = load_change_map(page.painted_map())
    np.testing.assert_allclose(opened, np.rint(made_map("luminance", dark_left()) * 255) / 255, atol=1e-6)
    wait_for(
        lambda: (
            page.preview_text()
            and page.js("return DiffDiff.preview.decoded && DiffDiff.preview.last")
            and np.array_equal(np.array(page.js("return Array.from(DiffDiff.preview.decoded.map)"), np.uint8), made)
        ),
        what="the preview of the painted map to equal the source's",
    )
    assert page.preview_error() == "" and console_errors(page.d, page.url) == []
