"""Fast tests of the WebUI glue: the settings table, argument parsing, infotext, X/Y/Z axes, the script against a fake
WebUI, and the adapter's call sequence around a fake sampler. The live host is tested in tests/integration."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_webui import load_script, setup_img2img_steps
from PIL import Image

from lib_diffdiff import ChangeMapError
from lib_diffdiff.core.noise_schedules import karras_sigmas
from lib_diffdiff.webui.adapter import DifferentialSampling, plan_run
from lib_diffdiff.webui.infotext import infotext_params, ui_value
from lib_diffdiff.webui.script_args import parse_script_args
from lib_diffdiff.webui.settings import MODES, SETTINGS, DiffDiffArgs
from lib_diffdiff.webui.xyz_axes import add_axes, axis_label, xyz_overrides

ROOT = Path(__file__).resolve().parents[1]


def png(values: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint8), "L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# ---- the settings table is the single source of truth ----


def test_settings_table_and_args_dataclass_are_in_sync():
    assert [s.name for s in SETTINGS] == DiffDiffArgs.field_names()
    assert len({s.label for s in SETTINGS}) == len(SETTINGS)
    keys = [s.infotext for s in SETTINGS if s.infotext]
    assert len(set(keys)) == len(keys) and all(k.startswith("Differential diffusion") for k in keys)
    assert all(s.info for s in SETTINGS)


def test_readme_api_example_parses():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r'```json\n(\{\s*"init_images".*?)\n```', readme, re.S)
    assert block, "README shows a complete img2img JSON example"
    import json

    request = json.loads(block.group(1))
    args = request["alwayson_scripts"]["differential diffusion"]["args"]
    args[0]["map"] = png(np.full((8, 8), 255))
    parsed = parse_script_args(args)
    assert parsed.enabled and parsed.mode in MODES


# ---- argument parsing ----


def test_dict_and_positional_forms_agree():
    named = parse_script_args([{"enabled": True, "mode": "fan", "fan_strengths": [0.1, 0.9], "preserve": False}])
    positional = parse_script_args([True, "Strength fan", None, False, 1.0, 16.0, "0.1, 0.9", True, False])
    assert named == positional
    assert named.fan_strengths == (0.1, 0.9) and not named.preserve


def test_dict_form_ignores_the_ui_defaults_the_webui_fills_in_behind_it():
    parsed = parse_script_args([{"enabled": True, "mode": "soft inpaint"}, "Change map", None, True, 2.0])
    assert parsed.mode == "soft inpaint" and parsed.invert is False and parsed.multiplier == 1.0


def test_disabled_skips_validation():
    assert parse_script_args([{"enabled": False, "mode": "nonsense", "colour": 3}]) == DiffDiffArgs()
    assert parse_script_args([]) == DiffDiffArgs()


@pytest.mark.parametrize(
    "args,message",
    [
        ({"enabled": True, "colour": 1}, "unknown Differential Diffusion field"),
        ({"enabled": True, "mode": "wobble"}, "unknown Differential Diffusion mode"),
        ({"enabled": "maybe"}, "true or false"),
        ({"enabled": True, "softness": "a lot"}, "softness"),
        ({"enabled": True, "multiplier": 9}, "multiplier"),
        ({"enabled": True, "fan_strengths": [0.2, 2]}, r"\[0, 1\]"),
        ({"enabled": True, "fan_strengths": 0.5}, "list of numbers"),
        ({"enabled": True, "preserve": "sometimes"}, "preserve"),
    ],
)
def test_bad_fields_name_the_problem(args, message):
    with pytest.raises(ChangeMapError, match=message):
        parse_script_args([args])


# ---- infotext ----


@pytest.mark.parametrize(
    "args",
    [
        DiffDiffArgs(enabled=True),
        DiffDiffArgs(enabled=True, invert=True, multiplier=1.5, preserve=False),
        DiffDiffArgs(enabled=True, mode="soft inpaint", softness=7.0),
        DiffDiffArgs(enabled=True, mode="fan", fan_strengths=(0.1, 0.35, 1.0), fan_labels=False, continuous=True),
        DiffDiffArgs(enabled=True, continuous=True, step_conditioning=False),
    ],
)
def test_infotext_round_trip(args):
    params = {k: str(v) for k, v in infotext_params(args, "abc 0-1").items()}
    restored = {s.name: ui_value(s.name, params) for s in SETTINGS}
    assert restored["enabled"] is True
    assert restored["mode"] == MODES[args.mode]
    reparsed = parse_script_args([{**{k: v for k, v in restored.items() if v is not None and k != "map"}}])
    names = ("invert", "multiplier", "softness", "fan_strengths", "fan_labels", "preserve", "continuous")
    for name in (*names, "step_conditioning"):
        if getattr(args, name) != getattr(DiffDiffArgs(), name):
            assert getattr(reparsed, name) == getattr(args, name), name


def test_infotext_omits_defaults_and_summarises_the_map():
    params = infotext_params(DiffDiffArgs(enabled=True, map="x" * 10000), "0123456789 0-1")
    params.pop("Differential diffusion version")
    assert params == {"Differential diffusion": "True", "Differential diffusion map": "0123456789 0-1"}
    assert ui_value("enabled", {}) is False and ui_value("softness", {}) is None


# ---- X/Y/Z axes ----


def fake_xyz():
    class AxisOption:
        def __init__(self, label, type, apply, choices=None, **kwargs):
            self.label, self.type, self.apply, self.choices = label, type, apply, choices

    return SimpleNamespace(
        axis_options=[AxisOption("Seed", int, None)], AxisOption=AxisOption, AxisOptionImg2Img=AxisOption
    )


def test_xyz_axes_are_added_once_and_set_overrides_on_the_cell():
    xyz = fake_xyz()
    added = add_axes(xyz)
    assert added == sum(s.xyz for s in SETTINGS) and add_axes(xyz) == 0
    labels = [a.label for a in xyz.axis_options]
    assert len(labels) == len(set(labels))
    for name in ("enabled", "multiplier", "softness", "fan_strengths", "invert"):
        assert axis_label(name) in labels
    cell = SimpleNamespace()
    by_label = {a.label: a for a in xyz.axis_options}
    by_label[axis_label("softness")].apply(cell, 12.0, [])
    by_label[axis_label("enabled")].apply(cell, "True", [])
    assert xyz_overrides(cell) == {"enabled": "True", "softness": 12.0}
    assert xyz_overrides(SimpleNamespace()) == {}


# ---- the script against a fake WebUI ----


def fake_p(**kwargs):
    p = SimpleNamespace(
        extra_generation_params={},
        mask_blur_x=4,
        mask_blur_y=4,
        mask_round=True,
        inpaint_full_res_padding=0,
        scripts=None,
        script_args=[],
        image_mask=None,
    )
    p.init_calls = []
    p.init = lambda *a: p.init_calls.append(a)
    p.__dict__.update(kwargs)
    return p


@pytest.fixture
def script(monkeypatch):
    module, fakes = load_script(monkeypatch)
    return module, fakes


def test_ui_builds_every_setting_in_order_with_help(script):
    module, _ = script
    s = module.Script()
    components = s.ui(True)
    assert [c.label for c in components[: len(SETTINGS)]] == [x.label for x in SETTINGS]
    assert all(c.kwargs.get("info") for c in components[1 : len(SETTINGS)] if c.__class__.__name__ != "Image")
    # the editor's painted map travels in one hidden textbox behind the settings
    assert len(components) == len(SETTINGS) + 1 and components[-1].kwargs["elem_id"] == "diffdiff_painted"
    assert len(s.infotext_fields) == sum(1 for x in SETTINGS if x.infotext and x.name != "map")
    assert s.show(True) is not False and s.show(False) is False


def test_mode_shows_only_its_controls(script):
    module, _ = script
    components = module.Script().ui(True)
    fn, inputs, outputs = components[1].on_change
    assert [c.label for c in inputs] == ["Mode", "Map source"]
    shown = {o.label: u["visible"] for o, u in zip(outputs, fn("Soft inpaint", "Painted or uploaded"))}
    assert shown["Softness"] and not shown["Change map"] and not shown["Fan strengths"] and not shown["Map source"]
    shown = {o.label: u["visible"] for o, u in zip(outputs, fn("Strength fan", "Colour range"))}
    assert shown["Fan strengths"] and shown["Write strengths on the result"] and not shown["Softness"]
    assert not shown["Colour to change"], "a source's options belong to the change-map mode"
    built = {c.label: c.kwargs.get("visible", True) for c in components}
    assert built["Softness"] is False and built["Map source"] is not False and built["Reach (pixels)"] is False


def test_the_map_source_shows_only_its_own_options(script):
    module, _ = script
    components = module.Script().ui(True)
    source = next(c for c in components if c.label == "Map source")
    fn, inputs, outputs = source.on_change
    options = ("Colour to change", "Colour tolerance", "Reach (pixels)", "Point (x, y)")

    def shown(label: str) -> set[str]:
        visible = {o.label for o, u in zip(outputs, fn("Change map", label)) if u["visible"]}
        assert "Change map" in visible and "Map source" in visible
        return visible & set(options)

    assert shown("Painted or uploaded") == set() and shown("Brightness") == set()
    assert shown("Colour range") == {"Colour to change", "Colour tolerance"}
    assert shown("Near edges") == {"Reach (pixels)"}
    assert shown("Around a point") == {"Point (x, y)", "Reach (pixels)"}
    assert shown("Inpaint mask, from its edge in") == {"Reach (pixels)"}


def test_disabled_leaves_p_untouched(script):
    module, _ = script
    p = fake_p()
    init = p.init
    module.Script().process(p, False, "Change map", None)
    module.Script().process(p, {"enabled": False, "map": "garbage"})
    assert p.init is init and p.extra_generation_params == {} and p.mask_blur_x == 4


def test_a_disabled_cell_drops_what_an_earlier_xyz_cell_wrote_into_the_shared_infotext(script):
    module, _ = script
    shared_params = {"Steps": 20}
    first, second = fake_p(extra_generation_params=shared_params), fake_p(extra_generation_params=shared_params)
    module.Script().process(first, {"enabled": True, "invert": True, "map": png(np.full((8, 8), 255))})
    assert shared_params["Differential diffusion invert"] == "True"
    module.Script().process(second, {"enabled": False})
    assert shared_params == {"Steps": 20}


def test_a_painted_map_replaces_the_uploaded_one_and_is_read_like_an_upload(script):
    module, _ = script
    uploaded, painted = np.full((8, 8), 255), np.zeros((8, 8))
    painted[:, 4:] = 128
    positional = [True, "Change map", png(uploaded), False, 1.0, 16.0, "1", True, True]
    positional += [getattr(DiffDiffArgs(), s.name) for s in SETTINGS[len(positional) :]]
    seen = {}
    module.plan_run = lambda p, settings, *rest: seen.setdefault("map", settings.map)
    for extra, expected in (("", png(uploaded)), ("data:image/png;base64," + png(painted), None)):
        seen.clear()
        p = fake_p()
        module.Script().process(p, *positional, extra)
        with pytest.raises(AttributeError):  # the stand-in plan stops the run after the map was chosen
            p.init([], [], [])
        if expected is not None:
            assert seen["map"] == expected
        else:
            assert seen["map"].startswith("data:image/png;base64,")
            from lib_diffdiff import load_change_map

            np.testing.assert_array_equal(load_change_map(seen["map"]), load_change_map(png(painted)))


def test_bad_input_fails_from_p_init_with_http_422(script):
    module, _ = script
    p = fake_p()
    module.Script().process(p, {"enabled": True, "mode": "sideways"})
    with pytest.raises(module.DiffDiffInputError) as raised:
        p.init([], [], [])
    assert raised.value.status_code == 422 and "unknown Differential Diffusion mode" in raised.value.detail


def test_soft_inpaint_switches_off_the_webui_blur_and_widens_the_crop(script):
    module, _ = script
    p = fake_p(inpaint_full_res_padding=4)
    module.Script().process(p, {"enabled": True, "mode": "soft inpaint", "softness": 10})
    assert (p.mask_blur_x, p.mask_blur_y, p.mask_round) == (0, 0, False)
    assert p.inpaint_full_res_padding >= 30
    assert p.extra_generation_params["Differential diffusion mode"] == "soft inpaint"


class A1111Blur:
    """A1111 1.10 / Forge: mask_blur_x/_y fields behind a mask_blur property whose setter sets both."""

    mask_blur_x = 4
    mask_blur_y = 4

    @property
    def mask_blur(self):
        return self.mask_blur_x if self.mask_blur_x == self.mask_blur_y else None

    @mask_blur.setter
    def mask_blur(self, value):
        if isinstance(value, int):
            self.mask_blur_x = self.mask_blur_y = value


class NeoBlur:
    """Forge Neo: a mask_blur field, and mask_blur_x/_y read-only properties over it."""

    mask_blur = 4

    @property
    def mask_blur_x(self):
        return self.mask_blur

    @property
    def mask_blur_y(self):
        return self.mask_blur


@pytest.mark.parametrize("host", [A1111Blur, NeoBlur])
def test_soft_inpaint_turns_the_blur_off_on_each_hosts_layout(script, host):
    module, _ = script
    p = host()
    p.__dict__.update(vars(fake_p()))
    module.Script().process(p, {"enabled": True, "mode": "soft inpaint", "softness": 10})
    assert (p.mask_blur, p.mask_blur_x, p.mask_blur_y) == (0, 0, 0)
    assert p.extra_generation_params["Differential diffusion mode"] == "soft inpaint"


def test_an_unexpected_failure_while_setting_up_fails_the_generation_with_a_message(script):
    module, _ = script

    class Frozen(NeoBlur):
        def __setattr__(self, name, value):
            if name == "mask_round":
                raise AttributeError("mask_round is read-only on this host")
            super().__setattr__(name, value)

    p = Frozen()
    p.__dict__.update(vars(fake_p()))
    module.Script().process(p, {"enabled": True, "mode": "soft inpaint"})  # the WebUI would only log a raise here
    with pytest.raises(module.DiffDiffInputError, match="could not set up.*mask_round is read-only") as raised:
        p.init([], [], [])
    assert raised.value.status_code == 500 and p.init_calls == []


def test_builtin_soft_inpainting_is_refused(script):
    module, _ = script
    soft = SimpleNamespace(title=lambda: "Soft Inpainting", args_from=0)
    p = fake_p(scripts=SimpleNamespace(alwayson_scripts=[soft]), script_args=[True])
    module.Script().process(p, {"enabled": True, "map": png(np.full((8, 8), 255))})
    with pytest.raises(module.DiffDiffInputError, match="Soft Inpainting"):
        p.init([], [], [])


def test_xyz_override_turns_the_extension_on_for_one_cell(script):
    module, _ = script
    p = fake_p(diffdiff_xyz_enabled="True")
    init = p.init
    module.Script().process(p, False, "Change map", None)
    assert p.init is not init, "the cell's override enabled the run"


def test_xyz_axes_registered_before_the_ui(script):
    module, fakes = script
    xyz = fake_xyz()
    fakes["modules.scripts"].scripts_data.append(SimpleNamespace(path="/webui/scripts/xyz_grid.py", module=xyz))
    assert module.register_xyz_axes in fakes["modules.script_callbacks"].before_ui
    module.register_xyz_axes()
    module.register_xyz_axes()
    assert sum(a.label.startswith("DiffDiff ") for a in xyz.axis_options) == sum(s.xyz for s in SETTINGS)


# ---- the adapter's call sequence around a (fake) host sampler ----


class FakeDenoiser(torch.nn.Module):
    def __init__(self, fail_at=None):
        super().__init__()
        self.levels, self.inputs, self.fail_at = [], [], fail_at

    def forward(self, x, sigma, **kwargs):
        self.levels.append(float(sigma[0]))
        self.inputs.append(x.clone())  # what the model is handed, after the injection
        if self.fail_at is not None and len(self.levels) == self.fail_at:
            raise RuntimeError("model failed")
        return x * 0.3  # an x0 prediction


class FakeKDiffusionSampler:
    """The host's k-diffusion img2img call sequence: setup_img2img_steps, get_sigmas, Euler over the tail."""

    def __init__(self, fail_at=None):
        self.model_wrap_cfg = FakeDenoiser(fail_at)
        self.strength_seen = None

    def get_sigmas(self, p, steps):
        return karras_sigmas(steps).float()

    def sample_img2img(
        self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None
    ):
        self.strength_seen = p.denoising_strength
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)[steps - t_enc - 1 :]
        x = x + noise * sigmas[0]
        for i in range(len(sigmas) - 1):
            denoised = self.model_wrap_cfg(x, sigmas[i] * x.new_ones(x.shape[0]))
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x


def adapter_p(sampler, map_values, strength=0.8):
    init = Image.new("RGB", (64, 32))
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        init_images=[init],
        width=64,
        height=32,
        resize_mode=0,
        image_mask=None,
        paste_to=None,
        init_latent=torch.randn(1, 4, 4, 8, generator=g),
        denoising_strength=strength,
        steps=10,
        sampler=sampler,
        nmask=None,
    ), DiffDiffArgs(enabled=True, map=png(map_values))


def gradient_map():
    m = np.zeros((32, 64))
    m[:, 32:] = np.linspace(0, 255, 32)
    m[:, 56:] = 128  # the largest value is 255 * ... < 255: skipping
    return m


def test_sampling_runs_at_the_effective_strength_and_restores_everything():
    sampler = FakeKDiffusionSampler()
    p, args = adapter_p(sampler, gradient_map())
    plan = plan_run(p, args)
    DifferentialSampling(p, plan, setup_img2img_steps).install()
    noise = torch.randn_like(p.init_latent)
    out = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
    assert sampler.strength_seen == pytest.approx(0.8 * plan.latent_map.max()) and sampler.strength_seen < 0.8
    assert len(sampler.model_wrap_cfg.levels) == int(sampler.strength_seen * 10) + 1
    assert p.denoising_strength == 0.8
    assert "forward" not in sampler.model_wrap_cfg.__dict__
    keep = torch.from_numpy(plan.latent_map == 0).expand_as(out[0])
    assert torch.equal(out[0][keep], p.init_latent[0][keep])
    assert not torch.equal(out[0][~keep], p.init_latent[0][~keep])


def test_the_continuous_setting_reaches_the_schedule_and_keeps_black_and_constant_maps_exact():
    outs = {}
    for continuous in (False, True):
        sampler = FakeKDiffusionSampler()
        p, args = adapter_p(sampler, gradient_map())
        args = DiffDiffArgs(**{**vars(args), "continuous": continuous})
        sampling = DifferentialSampling(p, plan_run(p, args), setup_img2img_steps)
        sampling.install()
        noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(1))
        outs[continuous] = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
        assert (sampling.last_injector.schedule.partial_level is not None) == continuous
        keep = torch.from_numpy(sampling.plan.latent_map == 0).expand_as(outs[continuous][0])
        assert torch.equal(outs[continuous][0][keep], p.init_latent[0][keep])
    assert not torch.equal(outs[False], outs[True])  # the gradient's greys are treated differently
    constant = {}
    for continuous in (False, True):
        sampler = FakeKDiffusionSampler()
        p, args = adapter_p(sampler, np.full((32, 64), 153))
        DifferentialSampling(
            p, plan_run(p, DiffDiffArgs(**{**vars(args), "continuous": continuous})), setup_img2img_steps
        ).install()
        noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(1))
        constant[continuous] = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
    assert torch.equal(constant[False], constant[True])


def test_a_failure_inside_sampling_leaves_nothing_patched():
    sampler = FakeKDiffusionSampler(fail_at=2)
    p, args = adapter_p(sampler, gradient_map())
    DifferentialSampling(p, plan_run(p, args), setup_img2img_steps).install()
    with pytest.raises(RuntimeError, match="model failed"):
        p.sampler.sample_img2img(p, p.init_latent, torch.randn_like(p.init_latent), None, None)
    assert p.denoising_strength == 0.8 and "forward" not in sampler.model_wrap_cfg.__dict__


# The hosts' own start-latent noising, copied from their source as the oracle: held pixels must be noised exactly so.
def forge_noise_scaling(prediction_type):  # Forge backend/modules/k_prediction.py AbstractPrediction.noise_scaling
    def noise_scaling(sigma, noise, latent_image, max_denoise=False):
        if prediction_type == "const":
            return sigma * noise + (1.0 - sigma) * latent_image
        return noise * sigma + latent_image

    return noise_scaling


def a1111_sd3_add_noise_to_latent(x, noise, amount):  # A1111 1.10 modules/models/sd3/sd3_model.py
    return x * (1 - amount) + noise * amount


def forge_model(prediction_type):
    predictor = SimpleNamespace(prediction_type=prediction_type, noise_scaling=forge_noise_scaling(prediction_type))
    return SimpleNamespace(
        forge_objects=SimpleNamespace(unet=SimpleNamespace(model=SimpleNamespace(predictor=predictor)))
    )


HOST_MODELS = {
    "forge flux": (forge_model("const"), lambda sigma, noise, x: forge_noise_scaling("const")(sigma, noise, x)),
    "a1111 sd3": (
        SimpleNamespace(add_noise_to_latent=a1111_sd3_add_noise_to_latent),
        lambda sigma, noise, x: a1111_sd3_add_noise_to_latent(x, noise, sigma),
    ),
    "forge sd1.5": (forge_model("epsilon"), lambda sigma, noise, x: forge_noise_scaling("epsilon")(sigma, noise, x)),
    "a1111/reforge sd1.5": (SimpleNamespace(), lambda sigma, noise, x: x + noise * sigma),
}


class HostKDiffusionSampler(FakeKDiffusionSampler):
    """A host's k-diffusion img2img with that host's start noising, over a flow-style (0, 1] schedule when the model
    is a flow model."""

    def __init__(self, start_noising, flow):
        super().__init__()
        self.start_noising, self.flow = start_noising, flow

    def get_sigmas(self, p, steps):
        if not self.flow:
            return karras_sigmas(steps).float()
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        return (3.0 * t / (1 + 2.0 * t)).float()  # Flux-like shifted schedule, ending at 0

    def sample_img2img(self, p, x, noise, *args, steps=None, **kwargs):
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)[steps - t_enc - 1 :]
        x = self.start_noising(sigmas[0], noise, x)
        for i in range(len(sigmas) - 1):
            denoised = self.model_wrap_cfg(x, sigmas[i] * x.new_ones(x.shape[0]))
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x


@pytest.mark.parametrize("host", list(HOST_MODELS))
def test_held_pixels_are_noised_exactly_as_the_hosts_img2img_noises(host):
    model, start_noising = HOST_MODELS[host]
    flow = "sd1.5" not in host
    sampler = HostKDiffusionSampler(start_noising, flow)
    p, args = adapter_p(sampler, gradient_map())
    p.sd_model = model
    p.init_latent = torch.randn(1, 16 if flow else 4, 4, 8, generator=torch.Generator().manual_seed(3))
    plan = plan_run(p, args)
    DifferentialSampling(p, plan, setup_img2img_steps).install()
    noise = torch.randn_like(p.init_latent)
    out = p.sampler.sample_img2img(p, p.init_latent, noise, None, None)
    levels = sampler.model_wrap_cfg.levels
    assert len(levels) > 2
    # the first call sees the host's own start latent everywhere, so held and free pixels agree there
    assert torch.equal(sampler.model_wrap_cfg.inputs[0], start_noising(torch.tensor(levels[0]), noise, p.init_latent))
    keep = torch.from_numpy(plan.latent_map == 0).expand_as(out)
    for level, model_input in zip(levels, sampler.model_wrap_cfg.inputs, strict=True):
        expected = start_noising(torch.tensor(level), noise, p.init_latent)
        assert torch.equal(model_input[keep], expected[keep]), f"held pixels at level {level}"
    assert torch.equal(out[keep], p.init_latent[keep])
    assert not torch.equal(out[~keep], p.init_latent[~keep])


@pytest.mark.parametrize("host", ["forge flux", "a1111 sd3"])
def test_a_constant_map_on_a_flow_model_is_img2img_bit_for_bit(host):
    model, start_noising = HOST_MODELS[host]
    p, args = adapter_p(HostKDiffusionSampler(start_noising, True), np.full((32, 64), 153), strength=1.0)
    p.sd_model = model
    p.init_latent = torch.randn(1, 16, 4, 8, generator=torch.Generator().manual_seed(4))
    noise = torch.randn_like(p.init_latent)
    p.denoising_strength = 0.6
    plain = HostKDiffusionSampler(start_noising, True).sample_img2img(p, p.init_latent, noise, None, None)
    p.denoising_strength = 1.0
    DifferentialSampling(p, plan_run(p, args), setup_img2img_steps).install()
    assert torch.equal(p.sampler.sample_img2img(p, p.init_latent, noise, None, None), plain)


def test_plan_errors():
    p, _ = adapter_p(FakeKDiffusionSampler(), gradient_map())
    with pytest.raises(ChangeMapError, match="aspect ratio"):
        plan_run(p, DiffDiffArgs(enabled=True, map=png(np.full((64, 64), 255))))
    with pytest.raises(ChangeMapError, match="black everywhere"):
        plan_run(p, DiffDiffArgs(enabled=True, map=png(np.zeros((32, 64)))))
    with pytest.raises(ChangeMapError, match="needs an inpaint mask"):
        plan_run(p, DiffDiffArgs(enabled=True, mode="soft inpaint"))
    with pytest.raises(ChangeMapError, match="needs a change map"):
        plan_run(p, DiffDiffArgs(enabled=True))


@pytest.mark.parametrize("layout", ["[C, h, w] (A1111, Forge)", "[1, C, h, w] (Forge Neo)"])
def test_the_map_acts_inside_the_inpaint_mask_whatever_the_hosts_mask_layout(layout):
    p, args = adapter_p(FakeKDiffusionSampler(), np.full((32, 64), 255))
    inside = torch.zeros(4, 4, 8)
    inside[:, :, 2:5] = 1.0  # latent columns 2-4 are to be repainted
    p.image_mask = Image.new("L", (64, 32), 255)
    p.nmask = inside if layout.startswith("[C") else inside[None]
    plan = plan_run(p, args)
    assert plan.latent_map.shape == (4, 8)
    assert np.array_equal(plan.latent_map, inside[0].double().numpy())


def test_a_model_whose_img2img_ignores_the_init_image_is_refused_with_a_message():
    """Forge Neo's Wan starts img2img from an empty latent (one value per channel, [1, 16, T, h, w]) and passes the
    image only as a condition: nothing of the picture would be kept. A plain-coloured picture, whose latent is just
    as flat, still runs."""
    detailed = Image.fromarray(np.kron(np.eye(4, 8, dtype=np.uint8) * 200, np.ones((8, 8), np.uint8))).convert("RGB")
    flat_latent = torch.full((1, 16, 1, 4, 8), 0.3)
    p, args = adapter_p(FakeKDiffusionSampler(), gradient_map())
    p.init_images, p.init_latent = [detailed], flat_latent
    with pytest.raises(ChangeMapError, match="does not start from the init image"):
        plan_run(p, args)
    p.init_images = [Image.new("RGB", (64, 32), (90, 90, 90))]
    assert plan_run(p, args).latent_map.shape == (4, 8)
    p.init_images, p.init_latent = [detailed], torch.randn(1, 16, 1, 4, 8)
    assert plan_run(p, args).latent_map.shape == (4, 8)


@pytest.mark.parametrize("batch", [2, 3, 5])
def test_the_init_image_check_reads_a_batch_of_any_size(batch):
    """The check reads the batch's first latent: A1111 encodes one init latent per image of the batch, and a batch
    of 3 over a 4x8 latent once failed there (a reshape to the batch's shape), failing every such generation."""
    p, args = adapter_p(FakeKDiffusionSampler(), gradient_map())
    p.init_latent = torch.randn(batch, 4, 4, 8)
    assert plan_run(p, args).latent_map.shape == (4, 8)
    p.init_images = [Image.fromarray(np.kron(np.eye(4, 8, dtype=np.uint8) * 200, np.ones((8, 8), np.uint8)))]
    p.init_latent = torch.full((batch, 16, 1, 4, 8), 0.3)
    with pytest.raises(ChangeMapError, match="does not start from the init image"):
        plan_run(p, args)
