"""The map editor and the run preview in a real browser (headless Chromium) against a live WebUI: set
DIFFDIFF_WEBUI_URL (as for tests/integration) to run them, e.g.
``DIFFDIFF_WEBUI_URL=http://127.0.0.1:7860 ./test.sh tests/browser``. The Generate test needs the transparent VAE
in the host (see the README) and sets it as the host's VAE for its run, restoring the setting afterwards."""

from __future__ import annotations

import base64
import io
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from integration.webui import WebUI, block_image, webui_url
from PIL import Image

from lib_diffdiff import load_change_map

from .browser import Page, console_errors, start_chromium, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(webui_url() is None, reason="DIFFDIFF_WEBUI_URL is not set: no live WebUI to test in a browser"),
]
SIZE = 128


@pytest.fixture(scope="module")
def driver():
    d = start_chromium()
    yield d
    d.quit()


@pytest.fixture
def page(driver) -> Page:
    p = Page(driver, webui_url())
    p.load()
    driver.get_log("browser")  # start each test with an empty console
    p.click_tab("tabs", "img2img")
    return p


@pytest.fixture(scope="module")
def init_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "init.png"
    block_image(SIZE, SIZE, seed=3).save(path)
    return path


@pytest.fixture(scope="module")
def wide_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "wide.png"
    block_image(SIZE + 64, SIZE, seed=4).save(path)
    return path


def painted(page: Page) -> np.ndarray:
    url = page.painted_map()
    assert url.startswith("data:image/png;base64,"), "the editor wrote no map"
    return load_change_map(url)


def ready_editor(page: Page, image: Path) -> None:
    page.upload_init_image(image)
    page.enable()
    page.set_number("img2img_width", SIZE)
    page.set_number("img2img_height", SIZE)
    page.open_editor()


def select(page: Page, tool: str) -> None:
    page.js(f"document.querySelector('#diffdiff_tool_{tool}').click()")


def test_every_tab_loads_without_console_errors(page):
    for tab in ("txt2img", "img2img", "Extras", "PNG Info", "Settings", "Extensions", "img2img"):
        try:
            page.click_tab("tabs", tab)
        except AssertionError:
            continue  # a host without that tab
    for sub in ("Sketch", "Inpaint", "Inpaint sketch", "Inpaint upload", "Batch", "img2img"):
        page.click_tab("mode_img2img", sub)
    page.enable()
    page.js("document.querySelector('#diffdiff_shaping .label-wrap').click()")
    time.sleep(2)
    assert console_errors(page.d, page.url) == []
    ids = page.js(
        "return ['diffdiff_editor', 'diffdiff_editor_canvas', 'diffdiff_preview']"
        ".filter(function(i) { return !document.getElementById(i); })"
    )
    tools = page.js(
        "return ['brush','eraser','linear','radial','fill','invert','clear','undo','redo','picker']"
        ".filter(function(t) { return !document.getElementById('diffdiff_tool_' + t); })"
    )
    assert ids == [] and tools == []
    assert page.js("return document.querySelector('#diffdiff_editor canvas') !== null")


def test_brush_and_gradient_drawn_with_the_mouse_become_the_map_and_undo_restores(page, init_png):
    ready_editor(page, init_png)
    select(page, "brush")
    page.js(
        "document.querySelector('#diffdiff_value').value = 255; document.querySelector('#diffdiff_size').value = 24;"
        "document.querySelector('#diffdiff_hardness').value = 100;"
    )
    page.drag(0.2, 0.5, 0.8, 0.5)
    stroke = wait_for(lambda: page.painted_map(), what="the stroke to reach the map")
    brush = painted(page)
    assert brush.shape == (SIZE, SIZE), "the map has the init image's size"
    assert brush[64, 40:88].min() == 1.0 and brush[:20].max() == 0.0 and brush[110:].max() == 0.0

    select(page, "linear")
    page.js(
        "document.querySelector('#diffdiff_gradient_from').value = 0;"
        "document.querySelector('#diffdiff_gradient_to').value = 255;"
    )
    page.drag(0.0, 0.5, 1.0, 0.5)
    wait_for(lambda: page.painted_map() != stroke, what="the gradient to reach the map")
    gradient = painted(page)
    assert gradient[:, 0].max() < 0.02 and gradient[:, -1].min() > 0.98
    assert (np.diff(gradient[64]) >= 0).all() and np.ptp(gradient[:, 64]) == 0  # left to right, constant down

    select(page, "undo")
    wait_for(lambda: page.painted_map() == stroke, what="undo to restore the brush stroke's map")
    select(page, "redo")
    wait_for(lambda: page.painted_map() != stroke, what="redo")
    np.testing.assert_array_equal(painted(page), gradient)


def test_a_new_image_of_another_size_is_flagged_and_can_be_rescaled(page, init_png, wide_png):
    ready_editor(page, init_png)
    page.drag(0.3, 0.3, 0.6, 0.6)
    wait_for(lambda: page.painted_map(), what="a painted map")
    page.upload_init_image(wide_png)
    warning = wait_for(
        lambda: page.js(
            "var w = document.querySelector('#diffdiff_editor_warning');"
            "return w.style.display !== 'none' && w.textContent"
        ),
        what="the size warning",
    )
    assert f"{SIZE}x{SIZE}" in warning and f"{SIZE + 64}x{SIZE}" in warning and "rescale" in warning
    page.js("document.querySelector('#diffdiff_rescale').click()")
    wait_for(lambda: painted(page).shape == (SIZE, SIZE + 64), what="the map rescaled to the new image")
    assert page.js("return document.querySelector('#diffdiff_editor_warning').style.display") == "none"
    page.js("document.querySelector('#diffdiff_clear_painted').click()")
    wait_for(lambda: page.painted_map() == "", what="clear to drop the painted map")


def test_preview_follows_steps_and_strength_and_its_slider_steps_through_the_calls(page, init_png):
    ready_editor(page, init_png)
    page.set_number("img2img_steps", 20)
    page.set_number("img2img_denoising_strength", 1.0)
    # two strokes, white and mid-grey: two strengths, so the grey one is freed calls after the white one whatever
    # the soft brush edges leave at the latent grid (one grey stroke alone passed or failed by where it fell)
    page.js("document.querySelector('#diffdiff_value').value = 255;")
    page.drag(0.1, 0.25, 0.9, 0.25)
    page.js("document.querySelector('#diffdiff_value').value = 128;")
    page.drag(0.1, 0.7, 0.9, 0.7)
    first = wait_for(lambda: "model calls" in page.preview_text() and page.preview_text(), timeout=30, what="a preview")
    assert page.preview_error() == ""
    page.set_number("img2img_steps", 10)
    second = wait_for(lambda: page.preview_text() != first and page.preview_text(), what="the preview to follow steps")
    page.set_number("img2img_denoising_strength", 0.5)
    wait_for(lambda: page.preview_text() not in (first, second), what="the preview to follow the strength")

    calls = page.js("return DiffDiff.preview.last.calls")
    assert calls >= 2

    def held_overlay() -> str:
        return page.js("return document.querySelector('#diffdiff_preview_calls').toDataURL()")

    captions, pictures = set(), set()
    for call in (0, calls - 1):
        page.js(
            "var s = document.querySelector('#diffdiff_preview_step'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('input', {bubbles: true}));",
            call,
        )
        captions.add(page.js("return document.querySelector('#diffdiff_preview_caption').textContent"))
        pictures.add(held_overlay())
    assert len(captions) == 2 and len(pictures) == 2, "the slider shows each call's own held/free state"
    assert f"Model call {calls} of {calls}" in captions.pop() + captions.pop()


def test_disabled_the_panel_stays_idle(page, init_png):
    page.upload_init_image(init_png)
    page.js(
        "window.__diffdiffCalls = 0; const f = window.fetch; window.fetch = function(u) {"
        "if (String(u).indexOf('diffdiff') >= 0) window.__diffdiffCalls++; return f.apply(this, arguments); };"
    )
    page.set_number("img2img_steps", 7)
    time.sleep(2.5)
    assert page.js("return window.__diffdiffCalls") == 0
    assert page.painted_map() == ""
    assert page.js("return document.querySelector('#diffdiff_editor').style.display") == "none"


@pytest.fixture
def transparent_vae():
    """Make the transparent VAE the host's own for the UI's Generate button; restore the setting afterwards."""
    webui = WebUI(webui_url())
    vae = webui.vae_name()
    if vae is None:
        pytest.fail("the Generate test needs the transparent VAE in the host (see the README)")
    key, value = next(iter(webui.vae_settings(vae).items()))
    # live previews off: on a fresh Neo host the gallery shows the small preview images of the run while it samples
    wanted = {key: value, "img2img_color_correction": False, "live_previews_enable": False}
    options = webui.get("/sdapi/v1/options")
    before = {k: options[k] for k in wanted if k in options}
    status, body = webui.request("POST", "/sdapi/v1/options", wanted)
    assert status == 200, body
    yield
    webui.request("POST", "/sdapi/v1/options", before)


def fetch_picture(page: Page, src: str) -> np.ndarray:
    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        url = src if src.startswith("http") else page.url + "/" + src.lstrip("/")
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def generate_in_ui(page: Page, size: int) -> np.ndarray:
    """Press the UI's Generate and fetch the new size x size picture (the first gallery image not there before)."""
    old = page.js("return Array.from(document.querySelectorAll('#img2img_gallery img')).map(i => i.src)")
    page.js("document.querySelector('#img2img_generate').click()")
    src = wait_for(
        lambda: page.js(
            "var imgs = Array.from(document.querySelectorAll('#img2img_gallery img'));"
            "var fresh = imgs.filter(i => i.naturalWidth == arguments[1] && i.naturalHeight == arguments[1]"
            " && arguments[0].indexOf(i.src) < 0);"
            "return fresh.length ? fresh[0].src : null",
            old,
            size,
        ),
        timeout=900,
        interval=2,
        what="the generated image",
    )
    return fetch_picture(page, src)


def test_generate_button_changes_the_painted_region_and_keeps_the_rest_exact(page, init_png, transparent_vae):
    ready_editor(page, init_png)
    page.set_number("img2img_steps", 4)
    page.set_number("img2img_denoising_strength", 1.0)
    page.js(
        "document.querySelector('#diffdiff_value').value = 255; document.querySelector('#diffdiff_size').value = 40;"
        "document.querySelector('#diffdiff_hardness').value = 100;"
    )
    page.drag(0.25, 0.5, 0.75, 0.5)
    wait_for(lambda: page.painted_map(), what="a painted map")
    change = painted(page)
    out = generate_in_ui(page, SIZE)
    source = np.asarray(block_image(SIZE, SIZE, seed=3)).astype(np.int16)
    assert out.shape == source.shape
    keep = change == 0
    assert keep.sum() > SIZE * SIZE / 3 and (~keep).sum() > 500
    np.testing.assert_array_equal(out[keep], source[keep])
    assert np.abs(out[change > 0.9] - source[change > 0.9]).mean() > 10, "the painted region changed"
    assert console_errors(page.d, page.url) == []


def test_the_editor_starts_from_the_inpaint_mask_drawn_in_the_inpaint_tab(page, init_png):
    from selenium.webdriver.common.action_chains import ActionChains

    page.click_tab("mode_img2img", "Inpaint")
    page.upload_init_image(init_png, component="img2maskimg")
    page.enable()
    # where the host draws: gradio 3's sketch canvas (A1111), or Forge's canvas over its image
    image = page.js("return document.querySelector('#img2maskimg canvas[key=interface]') || DiffDiff.initImage()")
    # the thinnest brush of Forge's canvas (Forge Neo draws 4x its width in image pixels: 100 px by default)
    page.js(
        "const r = document.querySelector('#img2maskimg input[id^=scribbleWidth_]');"
        "if (r) { r.value = r.min; r.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.js("arguments[0].scrollIntoView({block: 'center'})", image)
    r = image.rect
    # a mouse stroke across the middle of the picture, drawn with the host's own inpaint brush
    chain = ActionChains(page.d).move_to_element_with_offset(image, round(-r["width"] * 0.3), 0).click_and_hold()
    for k in range(1, 9):
        chain = chain.move_to_element_with_offset(image, round(-r["width"] * 0.3 + r["width"] * 0.6 * k / 8), 0)
    chain.release().perform()
    time.sleep(1)
    page.open_editor()
    page.js("document.querySelector('#diffdiff_start_mask').click()")
    wait_for(lambda: page.painted_map(), what="the mask to become the map")
    mask = painted(page)
    assert mask.shape == (SIZE, SIZE)
    assert mask[SIZE // 2, SIZE // 2] == 1.0, "the stroke's middle is painted"
    assert mask[:16].max() == 0 and mask[-16:].max() == 0, "far from the stroke nothing is painted"


def test_editor_keys_stay_in_the_editor_and_the_webuis_own_keys_pass_through(page, init_png):
    from selenium.webdriver.common.keys import Keys

    ready_editor(page, init_png)
    page.js(
        "window.__keys = []; document.body.addEventListener('keydown', function(e) {"
        "window.__keys.push((e.ctrlKey ? 'Ctrl+' : '') + (e.altKey ? 'Alt+' : '') + e.key); });"
    )
    canvas = page.d.find_element("id", "diffdiff_editor_canvas")
    canvas.click()
    select(page, "brush")
    canvas.send_keys("g")  # the editor's: switches to the linear gradient, and goes no further
    assert page.js("return DiffDiff.editor.tool") == "linear"
    canvas.send_keys(Keys.ESCAPE)
    canvas.send_keys(Keys.ALT, Keys.ENTER)
    keys = page.js("return window.__keys")
    assert "Escape" in keys and "Alt+Enter" in keys and "g" not in keys, f"the WebUI's keys reach the page: {keys}"
    keys_before = page.js("return window.__keys.length")
    canvas.send_keys("e")
    assert page.js("return DiffDiff.editor.tool") == "eraser" and page.js("return window.__keys.length") == keys_before


def test_a_map_uploaded_after_painting_replaces_the_painted_one(page, init_png, tmp_path):
    ready_editor(page, init_png)
    page.drag(0.3, 0.5, 0.7, 0.5)
    wait_for(lambda: page.painted_map(), what="a painted map")
    upload = tmp_path / "map.png"
    Image.fromarray(np.full((SIZE, SIZE), 200, np.uint8), "L").save(upload)
    page.d.find_element("css selector", "#diffdiff_map input[type=file]").send_keys(str(upload))
    wait_for(lambda: page.painted_map() == "", what="the upload to replace the painted map")
    assert "uploaded" in page.js("return document.querySelector('#diffdiff_editor_status').textContent")
    page.open_editor()  # now starts from the uploaded map
    assert page.js("return DiffDiff.editor.map.pick(5, 5)") == 200


def test_the_editor_fits_the_panel_zooms_at_the_pointer_and_pans(page, init_png):
    from selenium.webdriver.common.action_chains import ActionChains

    ready_editor(page, init_png)
    fit = page.js("return DiffDiff.editor.view")
    box = page.js("return document.querySelector('#diffdiff_editor').getBoundingClientRect().width")
    width = page.js("return document.querySelector('#diffdiff_editor_canvas').getBoundingClientRect().width")
    assert width <= box and fit["scale"] > 1  # a small image is fitted up to the panel's width
    page.js(
        "var c = document.querySelector('#diffdiff_editor_canvas'), r = c.getBoundingClientRect();"
        "for (var i = 0; i < 3; i++) c.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, bubbles: true,"
        "cancelable: true, clientX: r.left + r.width / 4, clientY: r.top + r.height / 4}));"
    )
    time.sleep(0.3)
    zoomed = page.js("return DiffDiff.editor.view")
    assert zoomed["scale"] > fit["scale"] * 1.7
    canvas = page.d.find_element("id", "diffdiff_editor_canvas")
    ActionChains(page.d).move_to_element(canvas).key_down(" ").click_and_hold().move_by_offset(
        -60, -40
    ).release().key_up(" ").perform()
    panned = page.js("return DiffDiff.editor.view")
    assert panned["scale"] == zoomed["scale"] and panned["x"] < zoomed["x"] and panned["y"] < zoomed["y"]
    assert page.painted_map() == "", "panning with Space+drag paints nothing"
    canvas.send_keys("0")
    assert page.js("return DiffDiff.editor.view")["scale"] == fit["scale"]
    page.js("DiffDiff.editor.view = {scale: 9, x: -50, y: -50}; document.querySelector('#diffdiff_fit').click()")
    assert page.js("return DiffDiff.editor.view") == fit
    assert page.painted_map() == "", "fitting paints nothing"
