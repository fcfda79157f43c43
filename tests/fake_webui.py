"""Just enough of the WebUI (``modules``) and of gradio to import and call scripts/differential_diffusion.py in
fast tests. The real host is exercised by tests/integration against a live WebUI."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Component:
    """A gradio component stand-in that remembers how it was made."""

    made: list = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.label = kwargs.get("label")
        type(self).made.append(self)  # each kind keeps its own list (make_gradio)

    def __enter__(self):
        return self

    def change(self, fn=None, inputs=None, outputs=None, **kwargs):
        """``on_change``: the first handler (what the tests of visibility read); ``changes``: every handler."""
        self.changes = [*getattr(self, "changes", []), (fn, inputs, outputs)]
        self.on_change = self.changes[0]

    def click(self, fn=None, inputs=None, outputs=None, **kwargs):
        self.on_click = (fn, inputs, outputs)

    def __exit__(self, *exc):
        return False


def make_gradio() -> types.ModuleType:
    gr = types.ModuleType("gradio")
    for name in (
        "HTML",
        "Radio",
        "Dropdown",
        "ColorPicker",
        "Image",
        "Textbox",
        "Slider",
        "Checkbox",
        "Button",
        "Group",
        "Accordion",
        "Markdown",
        "Row",
        "Column",
    ):
        setattr(gr, name, type(name, (Component,), {"made": []}))
    gr.update = lambda **kwargs: kwargs
    return gr


class Opts:
    img2img_background_color = "#ffffff"
    img2img_fix_steps = False


def setup_img2img_steps(p, steps=None):
    """The WebUI's rule (modules/sd_samplers_common.py)."""
    if Opts.img2img_fix_steps or steps is not None:
        requested = steps or p.steps
        steps = int(requested / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
        return steps, requested - 1
    return p.steps, int(min(p.denoising_strength, 0.999) * p.steps)


def make_modules() -> dict[str, types.ModuleType]:
    modules = types.ModuleType("modules")
    scripts = types.ModuleType("modules.scripts")
    scripts.AlwaysVisible = object()
    scripts.scripts_data = []

    class Script:
        infotext_fields = None
        paste_field_names = None

    scripts.Script = Script
    callbacks = types.ModuleType("modules.script_callbacks")
    callbacks.before_ui = []
    callbacks.on_before_ui = callbacks.before_ui.append
    callbacks.app_started = []
    callbacks.on_app_started = callbacks.app_started.append
    masking = types.ModuleType("modules.masking")
    samplers = types.ModuleType("modules.sd_samplers")
    sd_models = types.ModuleType("modules.sd_models")
    common = types.ModuleType("modules.sd_samplers_common")
    common.setup_img2img_steps = setup_img2img_steps
    shared = types.ModuleType("modules.shared")
    shared.opts = Opts()
    images = types.ModuleType("modules.images")
    images.flatten = lambda image, colour: image.convert("RGB")
    images.resize_image = lambda mode, image, width, height: image.resize((width, height))
    processing = types.ModuleType("modules.processing")
    processing.opt_f = 8
    ui_components = types.ModuleType("modules.ui_components")
    ui_components.InputAccordion = type("InputAccordion", (Component,), {})
    for name, module in (
        ("scripts", scripts),
        ("script_callbacks", callbacks),
        ("sd_samplers_common", common),
        ("shared", shared),
        ("images", images),
        ("ui_components", ui_components),
        ("masking", masking),
        ("sd_samplers", samplers),
        ("sd_models", sd_models),
        ("processing", processing),
    ):
        setattr(modules, name, module)
    return {
        "modules": modules,
        "modules.scripts": scripts,
        "modules.script_callbacks": callbacks,
        "modules.sd_samplers_common": common,
        "modules.shared": shared,
        "modules.images": images,
        "modules.ui_components": ui_components,
        "modules.masking": masking,
        "modules.sd_samplers": samplers,
        "modules.sd_models": sd_models,
        "modules.processing": processing,
    }


def load_script(monkeypatch):
    """Import scripts/differential_diffusion.py against the fakes; returns (script module, fake modules)."""
    fakes = make_modules()
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "gradio", make_gradio())
    spec = importlib.util.spec_from_file_location(
        "differential_diffusion", ROOT / "scripts" / "differential_diffusion.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, fakes
