"""The img2img Batch sub-tab with Differential Diffusion on, in a real browser against a live WebUI (the Batch tab
has no API): one map for every image of the folder, as the panel's help says. Needs DIFFDIFF_WEBUI_URL, the
transparent VAE, and a host on this machine (the batch folders are server paths)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from integration.robustness import region_map
from integration.webui import block_image, webui_url
from PIL import Image

from .browser import Page, console_errors, start_chromium, wait_for
from .test_editor_browser import transparent_vae  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(webui_url() is None, reason="DIFFDIFF_WEBUI_URL is not set: no live WebUI to test in a browser"),
]
SIZE = 64


@pytest.fixture(scope="module")
def driver():
    d = start_chromium()
    yield d
    d.quit()


def test_the_batch_tab_applies_the_one_map_to_every_image(driver, tmp_path, transparent_vae):  # noqa: F811
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    sources = {}
    for n in range(2):
        picture = block_image(SIZE, SIZE, seed=40 + n)
        picture.save(inputs / f"picture{n}.png")
        sources[n] = np.asarray(picture).astype(np.int16)
    map_path = tmp_path / "map.png"
    Image.fromarray(region_map(SIZE, SIZE, "left"), "L").save(map_path)

    page = Page(driver, webui_url())
    page.load()
    driver.get_log("browser")
    page.click_tab("tabs", "img2img")
    page.click_tab("mode_img2img", "Batch")
    page.click_tab("img2img_batch_source", "From directory")
    page.set_text("img2img_batch_input_dir", str(inputs))
    page.set_text("img2img_batch_output_dir", str(outputs))
    page.enable()
    page.upload_init_image(map_path, component="diffdiff_map")
    for elem_id, value in [("img2img_steps", 4), ("img2img_denoising_strength", 1.0)]:
        page.set_number(elem_id, value)
    for elem_id in ("img2img_width", "img2img_height"):
        page.set_number(elem_id, SIZE)
    time.sleep(1)
    page.js("document.querySelector('#img2img_generate').click()")
    made = wait_for(
        lambda: sorted(outputs.glob("*.png")) if len(list(outputs.glob("*.png"))) >= 2 else None,
        timeout=900,
        interval=2,
        what="two images in the batch output folder",
    )
    matched = set()
    for path in made:
        out = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
        assert out.shape == (SIZE, SIZE, 3)
        owner = [n for n, src in sources.items() if np.array_equal(out[:, : SIZE // 2], src[:, : SIZE // 2])]
        assert len(owner) == 1, f"{path.name}: its kept half is no input's"
        src = sources[owner[0]]
        assert np.abs(out[:, SIZE // 2 :] - src[:, SIZE // 2 :]).mean() > 1.0, f"{path.name}: the white half changed"
        matched.add(owner[0])
    assert matched == set(sources), "every input image came out with the map applied"
    assert console_errors(page.d, page.url) == []
