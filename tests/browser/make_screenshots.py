"""Screenshots of the map editor and the run preview for the README, from a live WebUI in headless Chromium:

    .venv/bin/python tests/browser/make_screenshots.py http://127.0.0.1:7860 docs/editor-a1111.png [panel]

It uploads a test picture, paints a radial gradient and a brush stroke, and saves the extension's panel; with
``panel``, the editor is closed again and the shaping controls are shown instead."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from browser.browser import Page, start_chromium, wait_for  # noqa: E402


def picture(path: Path, size: int = 256) -> None:
    """A soft landscape-like test picture (sky, hills, a sun), so the overlay reads."""
    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([0.45 + 0.3 * y, 0.65 + 0.2 * y, 0.95 - 0.1 * y], -1)
    hills = y > 0.62 + 0.08 * np.sin(6 * x)
    ground = np.stack([0.25 + 0.2 * x, 0.55 - 0.2 * y, 0.2 + 0 * x], -1)
    sun = (x - 0.72) ** 2 + (y - 0.28) ** 2 < 0.012
    rgb = np.where(hills[..., None], ground, sky)
    rgb[sun] = [1.0, 0.85, 0.3]
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


def main(url: str, out: str, kind: str = "editor") -> None:
    tmp = Path(out).resolve().with_suffix(".input.png")
    picture(tmp)
    driver = start_chromium(width=1400, height=2600)
    try:
        page = Page(driver, url.rstrip("/"))
        page.load()
        page.click_tab("tabs", "img2img")
        page.upload_init_image(tmp)
        page.enable()
        page.set_number("img2img_width", 256)
        page.set_number("img2img_height", 256)
        page.set_number("img2img_steps", 20)
        page.set_number("img2img_denoising_strength", 0.8)
        page.open_editor()
        page.js(
            "document.querySelector('#diffdiff_tool_radial').click();"
            "document.querySelector('#diffdiff_gradient_from').value = 255;"
            "document.querySelector('#diffdiff_gradient_to').value = 0;"
        )
        page.drag(0.72, 0.28, 0.72, 0.85)
        page.js(
            "document.querySelector('#diffdiff_tool_brush').click();"
            "document.querySelector('#diffdiff_value').value = 160;"
            "document.querySelector('#diffdiff_size').value = 36;"
        )
        page.drag(0.1, 0.8, 0.45, 0.75)
        wait_for(lambda: "model calls" in page.preview_text(), what="the preview")
        if kind == "panel":
            page.js(
                "document.querySelector('#diffdiff_close_editor').click();"
                "document.querySelector('#diffdiff_shaping .label-wrap').click();"
            )
            time.sleep(1)
        page.js(
            "var s = document.querySelector('#diffdiff_preview_step'); s.value = Math.floor(s.max / 2);"
            "s.dispatchEvent(new Event('input', {bubbles: true}));"
        )
        time.sleep(0.5)
        page.js("window.getSelection().removeAllRanges();")  # a stroke that ends off the canvas selects text
        panel = driver.find_element("css selector", "#diffdiff_enabled")
        driver.execute_script("arguments[0].scrollIntoView()", panel)
        panel.screenshot(out)
    finally:
        driver.quit()
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
