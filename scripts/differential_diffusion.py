"""Differential Diffusion in the WebUI's img2img tabs: thin glue between the WebUI and lib_diffdiff.

Where things happen (see lib_diffdiff.webui.adapter for the host-independent part):
- ``process``: read the arguments (UI, API dict or API positional, X/Y/Z overrides); set up soft inpainting; wrap this
  generation's ``p.init``. Errors found here or there are raised from ``p.init``, the one place where an exception
  reaches the user (Script hooks are wrapped in a try/except that only logs), so a bad input fails the generation
  with its message in the UI and the API (HTTP 422) instead of running silently without the effect.
- ``p.init`` (wrapped): after the WebUI prepared the image, plan the map and patch this generation's sampler.
- ``postprocess_maskoverlay``: keep unchanged pixels byte-exact; ``postprocess_image_after_composite``: fan labels.
"""

from __future__ import annotations

import traceback

import gradio as gr
from modules import (
    images,
    masking,
    processing,
    script_callbacks,
    scripts,
    sd_models,
    sd_samplers,
    sd_samplers_common,
    shared,
)
from modules.ui_components import InputAccordion

from lib_diffdiff import ChangeMapError, __version__, label_fan
from lib_diffdiff.maps.alignment import keep_mask
from lib_diffdiff.webui.adapter import (
    DifferentialSampling,
    check_model_calls,
    crop_box,
    plan_run,
    preserve_overlay,
    soft_inpaint_padding,
    turn_off_mask_blur,
)
from lib_diffdiff.webui.companions import is_detail_pass, map_source_size, record_source, refusal
from lib_diffdiff.webui.estimators import estimator_choices, installed_estimators
from lib_diffdiff.webui.foresee import WebUIPreviewHost, foresee
from lib_diffdiff.webui.infotext import MODE_DEPENDENT, SHAPING, drop_infotext, infotext_params, relevant, ui_value
from lib_diffdiff.webui.inpainting import ConditioningRecorder
from lib_diffdiff.webui.made_maps import made_map_picture
from lib_diffdiff.webui.script_args import named_args, parse_named
from lib_diffdiff.webui.settings import DEFAULT_FAN, MODES, SETTINGS, SETTINGS_BY_NAME, SOURCES, DiffDiffArgs
from lib_diffdiff.webui.xyz_axes import add_axes, xyz_overrides

TITLE = "Differential Diffusion"
SOURCE_SETTINGS = ("source", "source_estimator", "source_colour", "source_tolerance", "source_reach", "source_point")
"""Built above the map upload (the table keeps them last, so the API's positional order does not move)."""

HELP = """
**Differential Diffusion** gives every pixel its own strength: a grey **change map** (white = change,
black = keep) multiplies the denoising strength, and each pixel gets what img2img of its strength would give it,
in one run. Sampling starts where the strongest pixel needs, so a map whose brightest value is 0.4 costs 0.4 of a
full run.

- **Change map**: upload a map of the image's size (or aspect ratio). In the inpaint tabs it acts inside the mask.
  Or pick a **Map source** to make the map from the image itself (brightness, saturation, a colour, its edges, a
  point, the inpaint mask's inside, its depth or a segment, estimated by the WebUI's ControlNet preprocessors); the
  shaping (levels, gamma, quantise...) turns one source into many maps.
- **Soft inpaint** (inpaint tabs): the mask, blurred by *Softness*, becomes the map; the WebUI's own mask blur is
  not used, the transition comes from the diffusion.
- **Strength fan**: one run with columns of the listed strengths, left to right, to compare them side by side.
- **Few steps** (LCM, Turbo, Lightning, Hyper, DMD; 4-12 steps): turn on *Continuous strength* so that a smooth
  map does not come out as N bands at N steps.
- **With other scripts**: *Ultimate SD upscale* gives each tile its part of the map; *Loopback* uses the map in
  every loop; *SD upscale* is refused (its tiles cannot be told apart); the *Batch* tab uses this one map for every
  image (each must have the map's aspect ratio); ADetailer's detail passes run without the map.

API: `"alwayson_scripts": {"differential diffusion": {"args": [{"enabled": true, "map": "<base64>"}]}}`.
"""


class DiffDiffInputError(ChangeMapError):
    """A bad input, raised from p.init: the API answers 422 with the message as its detail."""

    def __init__(self, message: str, status_code: int = 422):
        super().__init__(f"Differential Diffusion: {message}")
        self.status_code = status_code
        self.detail = str(self)


def host_init(p):
    """The host's p.init, under any wrapper an earlier process() of this object left (Loopback, SD upscale and
    Ultimate SD upscale call process() again on the same object for every pass)."""
    return getattr(p.init, "diffdiff_wraps", p.init)


def fail_generation(p, error: Exception) -> None:
    """Make this generation fail with ``error``'s message, from p.init (see the module docstring). A bad input is a
    422; anything else is this extension failing on this host (HTTP 500), said as such, never a run without it."""
    if isinstance(error, ChangeMapError):
        message, status = str(error), 422
    else:
        message, status = f"could not set up this generation ({type(error).__name__}: {error}); please report it", 500

    def init(*args, **kwargs):
        raise DiffDiffInputError(message, status)

    init.diffdiff_wraps = host_init(p)
    p.init = init


def soft_inpainting_enabled(p) -> bool:
    """Whether the WebUI's built-in Soft Inpainting is on for this generation (mutually exclusive with this)."""
    runner = getattr(p, "scripts", None)
    for script in getattr(runner, "alwayson_scripts", []) or []:
        if script.title() == "Soft Inpainting" and p.script_args and script.args_from < len(p.script_args):
            return bool(p.script_args[script.args_from])
    return False


def mode_visibility(mode_label: str, source_label: str) -> list:
    """Show only the controls the chosen mode and map source use."""
    try:
        shown = relevant(parse_named({"enabled": True, "mode": mode_label, "source": source_label}))
    except ChangeMapError:  # a cleared dropdown: the defaults' controls
        shown = relevant(DiffDiffArgs(enabled=True))
    return [gr.update(visible=name in shown) for name in MODE_DEPENDENT]


def estimator_update(source_label: str, current: str):
    """The estimators of the chosen source's kind (auto first); the choice stays if it is one of them."""
    source = next((key for key, label in SOURCES.items() if label == source_label), source_label)
    choices = estimator_choices(source)
    return gr.update(choices=choices, value=current if current in choices else choices[0])


def make_component(name: str):
    setting = SETTINGS_BY_NAME[name]
    defaults = DiffDiffArgs()
    elem_id = f"diffdiff_{name}"
    visible = name not in MODE_DEPENDENT or name in relevant(defaults)
    if name == "mode":
        return gr.Radio(
            list(MODES.values()), value=MODES[defaults.mode], label=setting.label, info=setting.info, elem_id=elem_id
        )
    common = dict(label=setting.label, elem_id=elem_id, visible=visible)
    if name == "source":
        return gr.Dropdown(list(SOURCES.values()), value=SOURCES[defaults.source], info=setting.info, **common)
    if name == "source_estimator":  # custom values: an infotext may name one installed elsewhere
        choices = estimator_choices(defaults.source)
        return gr.Dropdown(choices, value=choices[0], allow_custom_value=True, info=setting.info, **common)
    if name == "source_colour":
        return gr.ColorPicker(defaults.source_colour, info=setting.info, **common)
    if name == "source_point":
        return gr.Textbox(", ".join(f"{v:g}" for v in defaults.source_point), info=setting.info, **common)
    if name == "map":
        return gr.Image(type="pil", image_mode="RGBA", **common)
    if name == "fan_strengths":
        return gr.Textbox(", ".join(f"{v:g}" for v in DEFAULT_FAN), info=setting.info, **common)
    if setting.minimum is not None:
        value = getattr(defaults, name)
        return gr.Slider(setting.minimum, setting.maximum, value=value, step=setting.step, info=setting.info, **common)
    return gr.Checkbox(getattr(defaults, name), info=setting.info, **common)


class Script(scripts.Script):
    def title(self):
        return TITLE

    def setup(self, p, *args):
        record_source(p)  # before a selectable script replaces the init image (see companions)

    def show(self, is_img2img):
        return scripts.AlwaysVisible if is_img2img else False

    def ui(self, is_img2img):
        components = {}
        with InputAccordion(False, label=SETTINGS_BY_NAME["enabled"].label, elem_id="diffdiff_enabled") as enabled:
            components["enabled"] = enabled
            with gr.Group():
                for setting in SETTINGS[1:]:
                    if setting.name in SHAPING or setting.name in SOURCE_SETTINGS:
                        continue
                    if setting.name == "map":  # the source and its options, above the map they replace
                        for name in SOURCE_SETTINGS:
                            components[name] = make_component(name)
                    components[setting.name] = make_component(setting.name)
                    if setting.name == "map":  # the map editor (javascript/diffdiff_editor.js) goes under the upload
                        gr.HTML('<div id="diffdiff_editor_mount"></div>', elem_id="diffdiff_editor_html")
            with gr.Accordion("Shape the map: levels, gamma, blur, steps", open=False, elem_id="diffdiff_shaping"):
                for setting in SETTINGS[1:]:
                    if setting.name in SHAPING:
                        components[setting.name] = make_component(setting.name)
            with gr.Accordion("Preview of the run", open=True, elem_id="diffdiff_preview_accordion"):
                gr.HTML('<div id="diffdiff_preview_mount"></div>', elem_id="diffdiff_preview_html")
            with gr.Accordion("Help", open=False):
                gr.Markdown(HELP)
                gr.Markdown(f"Differential Diffusion {__version__}", elem_id="diffdiff_version")
            # the editor's painted map travels to the server in this hidden textbox, as a PNG data URL
            painted = gr.Textbox("", elem_id="diffdiff_painted", elem_classes=["hidden"], show_label=False)
            # the editor clicks this when it opens the made map: from then on the painted map is the map
            use_painted = gr.Button("", elem_id="diffdiff_use_painted", elem_classes=["hidden"])
        for chooser in ("mode", "source"):
            components[chooser].change(
                mode_visibility,
                inputs=[components["mode"], components["source"]],
                outputs=[components[name] for name in MODE_DEPENDENT],
            )
        use_painted.click(lambda: gr.update(value=SOURCES["painted"]), outputs=[components["source"]])
        components["source"].change(
            estimator_update,
            inputs=[components["source"], components["source_estimator"]],
            outputs=[components["source_estimator"]],
        )
        self.infotext_fields = [
            (components[s.name], lambda params, name=s.name: ui_value(name, params))
            for s in SETTINGS
            if s.infotext and s.name != "map"
        ]
        self.paste_field_names = [s.infotext for s in SETTINGS if s.infotext and s.name != "map"]
        return [components[s.name] for s in SETTINGS] + [painted]

    def process(self, p, *args):
        try:
            self.set_up(p, *args)
        except ChangeMapError as e:
            fail_generation(p, e)
        except Exception as e:  # noqa: BLE001 - the WebUI only logs a hook's exception: fail the generation instead
            traceback.print_exc()
            fail_generation(p, e)

    def set_up(self, p, *args):
        drop_infotext(p.extra_generation_params)  # X/Y/Z cells share one dict: drop what an earlier cell wrote
        raw = named_args(args)
        painted = args[len(SETTINGS)] if len(args) > len(SETTINGS) and not isinstance(args[0], dict) else None
        if painted:  # the editor's map replaces the uploaded one (both are read by load_change_map)
            raw["map"] = painted
        raw.update(xyz_overrides(p))
        settings = parse_named(raw)
        if not settings.enabled:
            return
        if soft_inpainting_enabled(p):
            raise ChangeMapError("the built-in Soft Inpainting is on as well; turn one of them off")
        if refusal(p):
            raise ChangeMapError(refusal(p))
        if is_detail_pass(p):
            print("Differential Diffusion: not applied in ADetailer's detail pass (it has its own mask and strength)")
            return
        if settings.mode == "soft inpaint":
            # the transition comes from the diffusion, not from a pixel feather; the crop must hold the whole ring
            turn_off_mask_blur(p)
            p.mask_round = False
            p.inpaint_full_res_padding = soft_inpaint_padding(p.inpaint_full_res_padding, settings.softness)
        p.extra_generation_params.update(infotext_params(settings))
        original_init = host_init(p)

        def init(all_prompts, all_seeds, all_subseeds):
            with ConditioningRecorder(p) as recorder:
                original_init(all_prompts, all_seeds, all_subseeds)
            try:
                plan = plan_run(p, settings, map_source_size(p))
                check_model_calls(p, plan, sd_samplers_common.setup_img2img_steps)
            except ChangeMapError as e:
                raise DiffDiffInputError(str(e)) from e
            if settings.mode == "soft inpaint":
                p.mask = p.nmask = None  # the WebUI's binary latent blend would cut the soft ring
            conditioning = recorder.inpaint_conditioning(settings.exact_conditioning)
            DifferentialSampling(p, plan, sd_samplers_common.setup_img2img_steps, conditioning).install()
            p.extra_generation_params.update(infotext_params(settings, plan.summary))
            p.diffdiff_plan = plan

        init.diffdiff_wraps = original_init
        p.init = init

    def postprocess_maskoverlay(self, p, ppmo, *args):
        plan = getattr(p, "diffdiff_plan", None)
        if plan is None:
            return
        soft = plan.args.mode == "soft inpaint"
        if not plan.args.preserve:
            if soft:
                ppmo.overlay_image = None  # no hard paste over the soft ring
            return
        source = p.init_images[ppmo.index % len(p.init_images)]
        source = images.flatten(source, shared.opts.img2img_background_color)
        if crop_box(p) is not None:
            if plan.image_map is None:
                return
            original, keep = source, keep_mask(plan.image_map)
        else:
            mode = 0 if p.resize_mode == 3 else p.resize_mode
            original, keep = images.resize_image(mode, source, p.width, p.height), keep_mask(plan.frame_map)
        ppmo.overlay_image = preserve_overlay(original, keep, None if soft else ppmo.overlay_image)

    def postprocess_image_after_composite(self, p, pp, *args):
        plan = getattr(p, "diffdiff_plan", None)
        if plan is not None and plan.args.mode == "fan" and plan.args.fan_labels and crop_box(p) is None:
            pp.image = label_fan(pp.image, plan.args.fan_strengths)


def register_xyz_axes():
    """Add this extension's X/Y/Z plot axes, once, before the UI is built."""
    for data in scripts.scripts_data:
        if data.path.endswith("xyz_grid.py"):
            add_axes(data.module)
            return


def preview_host() -> WebUIPreviewHost:
    """The host pieces the run preview needs; Forge's main thread, where the host has one, loads a lazy model."""
    try:
        from modules_forge import main_thread
    except ImportError:
        main_thread = None
    return WebUIPreviewHost(
        shared, sd_samplers, sd_samplers_common.setup_img2img_steps, masking, sd_models, main_thread, processing
    )


def add_preview_route(_demo, app):
    """``POST /diffdiff/v1/preview``: what a run with these settings will do (no model call); 422 for bad input.
    ``GET /diffdiff/v1/estimators``: the installed estimators the depth and segmentation sources can use.
    ``POST /diffdiff/v1/made_map``: the map a source makes, at the image's size, for the editor to open."""
    from fastapi import Body, HTTPException

    @app.get("/diffdiff/v1/estimators")
    def estimators():
        return installed_estimators()

    @app.post("/diffdiff/v1/made_map")
    def made_map(body: dict = Body(...)):  # noqa: B008
        try:
            return made_map_picture(body)
        except ChangeMapError as e:
            raise HTTPException(status_code=422, detail=f"Differential Diffusion: {e}") from e

    @app.post("/diffdiff/v1/preview")
    def preview(body: dict = Body(...)):  # noqa: B008 (FastAPI's way of declaring a JSON body)
        try:
            return foresee(body, preview_host())
        except ChangeMapError as e:
            raise HTTPException(status_code=422, detail=f"Differential Diffusion: {e}") from e


script_callbacks.on_before_ui(register_xyz_axes)
script_callbacks.on_app_started(add_preview_route)
