"""Headless Chromium (Debian's chromium and chromium-driver, through selenium; nothing is downloaded) driving a live
WebUI's page: helpers for the browser tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def find(candidates: tuple[str, ...], name: str) -> str | None:
    for path in candidates:
        if Path(path).exists():
            return path
    return shutil.which(name)


def start_chromium(width: int = 1500, height: int = 2400):
    """A headless Chromium with the browser console captured; the binaries are the system's, so selenium's own
    driver download is never used."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = find(CHROMIUM_CANDIDATES, "chromium"), find(DRIVER_CANDIDATES, "chromedriver")
    if not binary or not driver:
        raise RuntimeError(
            "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--disable-gpu",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def console_errors(driver, base_url: str) -> list[dict]:
    """SEVERE console entries, less failed requests to other hosts: the test machine is offline, and gradio 3 asks
    a CDN for iframe-resizer whatever the extensions do."""
    host = urlparse(base_url).netloc
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        message = entry["message"]
        if entry.get("source") == "network" and host not in message.split(" ", 1)[0]:
            continue
        errors.append(entry)
    return errors


JS_SET_NUMBER = """
const [id, value] = arguments;
const input = document.querySelector('#' + id + ' input[type=number]') || document.querySelector('#' + id + ' input');
input.value = value;
if (typeof updateInput === 'function') updateInput(input);
else input.dispatchEvent(new Event('input', {bubbles: true}));
input.dispatchEvent(new Event('change', {bubbles: true}));
input.dispatchEvent(new Event('blur', {bubbles: true}));
"""

JS_SET_TEXT = """
const [id, value] = arguments;
const field = document.querySelector('#' + id + ' textarea') || document.querySelector('#' + id + ' input');
field.value = value;
if (typeof updateInput === 'function') updateInput(field);
else field.dispatchEvent(new Event('input', {bubbles: true}));
field.dispatchEvent(new Event('change', {bubbles: true}));
"""


class Page:
    """The WebUI's page, with the steps the tests take on it."""

    def __init__(self, driver, url: str):
        self.d = driver
        self.url = url

    def load(self) -> None:
        self.d.get(self.url)
        wait_for(
            lambda: self.js("return !!document.querySelector('#diffdiff_preview_mount[data-mounted]')"),
            timeout=180,
            what="the page and the extension's panel",
        )

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def click_tab(self, container_id: str, label: str) -> None:
        from selenium.webdriver.common.by import By

        # the first match in page order is the container's own tab bar (gradio 4 capitalises: "Img2img")
        for button in self.d.find_elements(By.CSS_SELECTOR, f"#{container_id} button"):
            if button.text.strip().lower() == label.lower():
                button.click()
                time.sleep(0.4)
                return
        raise AssertionError(f"no tab {label!r} in #{container_id}")

    def upload_init_image(self, path: Path, component: str = "img2img_image") -> None:
        from selenium.webdriver.common.by import By

        before = self.js(f"var i = document.querySelector('#{component} img'); return i ? i.src : ''")
        field = self.d.find_element(By.CSS_SELECTOR, f"#{component} input[type=file]")
        field.send_keys(str(path))
        wait_for(
            lambda: self.js(
                f"var i = document.querySelector('#{component} img'); "
                "return i && i.naturalWidth > 0 && i.complete && i.src !== arguments[0]",
                before,
            ),
            what="the uploaded image to show",
        )

    def enable(self) -> None:
        if not self.js("return document.querySelector('#diffdiff_enabled-visible-checkbox').checked"):
            self.js("document.querySelector('#diffdiff_enabled .label-wrap').click()")
        wait_for(
            lambda: self.js("return document.querySelector('#diffdiff_enabled-visible-checkbox').checked"),
            what="the extension to be enabled",
        )

    def choose(self, elem_id: str, label: str) -> None:
        """Pick ``label`` in a gradio Dropdown (3.41 and 4.40 both list the options under the input when it is
        clicked, and select one on a mouse press)."""
        from selenium.webdriver.common.by import By

        # a dropdown chosen just before may still show its list over this one (gradio 3.41 closes it on blur)
        self.js("if (document.activeElement) document.activeElement.blur()")
        wait_for(lambda: not self.js("return !!document.querySelector('ul.options li')"), what="open lists to close")
        self.js(f"document.querySelector('#{elem_id} input').scrollIntoView({{block: 'center'}})")
        self.settle()
        self.d.find_element(By.CSS_SELECTOR, f"#{elem_id} input").click()
        option = wait_for(
            lambda: next(
                (o for o in self.d.find_elements(By.CSS_SELECTOR, f"#{elem_id} ul li") if o.text.strip() == label),
                None,
            ),
            what=f"the option {label!r} of #{elem_id}",
        )
        option.click()
        wait_for(
            lambda: self.js(f"return document.querySelector('#{elem_id} input').value") == label,
            what=f"#{elem_id} to show {label!r}",
        )

    def visible(self, elem_id: str) -> bool:
        return bool(self.js(f"var e = document.getElementById('{elem_id}'); return !!(e && e.offsetParent !== null)"))

    def set_number(self, elem_id: str, value: float) -> None:
        self.js(JS_SET_NUMBER, elem_id, value)

    def set_text(self, elem_id: str, value: str) -> None:
        self.js(JS_SET_TEXT, elem_id, value)

    def open_editor(self) -> None:
        self.js("document.querySelector('#diffdiff_open_editor').scrollIntoView({block: 'center'})")
        self.js("document.querySelector('#diffdiff_open_editor').click()")
        wait_for(
            lambda: self.js("return document.querySelector('#diffdiff_editor').style.display !== 'none'"),
            what="the editor to open",
        )
        self.js("document.querySelector('#diffdiff_editor_canvas').scrollIntoView({block: 'center'})")
        self.settle()

    def settle(self) -> None:
        """Wait until the page stops scrolling (gradio's smooth scrolling moves elements under the pointer)."""
        last = [None]

        def still() -> bool:
            now = self.js("return [window.scrollX, window.scrollY]")
            done, last[0] = now == last[0], now
            return done

        wait_for(still, interval=0.15, what="the page to stop scrolling")

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
        """A mouse drag on the editor's canvas between two points given as fractions of the image."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        canvas = self.d.find_element(By.ID, "diffdiff_editor_canvas")
        self.settle()
        view = self.js(
            "var v = DiffDiff.editor.view, m = DiffDiff.editor.map, c = arguments[0];"
            "var r = c.getBoundingClientRect(), k = r.width / c.width;"
            "return [v.x * k, v.y * k, v.scale * k, m.width, m.height, r.width, r.height];",
            canvas,
        )
        vx, vy, scale, mw, mh, cw, ch = view

        def offset(fx: float, fy: float) -> tuple[int, int]:  # from the element's centre, as selenium wants
            return round(vx + fx * mw * scale - cw / 2), round(vy + fy * mh * scale - ch / 2)

        chain = ActionChains(self.d).move_to_element_with_offset(canvas, *offset(x0, y0)).click_and_hold()
        for k in range(1, steps + 1):
            t = k / steps
            chain = chain.move_to_element_with_offset(canvas, *offset(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
        chain.release().perform()

    def painted_map(self) -> str:
        return self.js("return document.querySelector('#diffdiff_painted textarea').value")

    def preview_text(self) -> str:
        return self.js("return document.querySelector('#diffdiff_preview_summary').textContent")

    def preview_error(self) -> str:
        return self.js("return document.querySelector('#diffdiff_preview_error').textContent")
