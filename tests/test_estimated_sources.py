"""Depth and segmentation map sources: the maps made from an estimate (against hand-computed ones), the estimate
cache, and the glue to the WebUI's estimators (ControlNet's preprocessors), exercised with registries shaped as
Forge's and as sd-webui-controlnet's: discovery, choice, the run and the preview sharing one estimate, unloading,
clear messages for a missing estimator, and downloads refused while an estimator runs."""

from __future__ import annotations

import base64
import io
import os
import sys
import types

import numpy as np
import pytest
import torch
from fake_webui import load_script
from PIL import Image
from test_map_source_glue import assert_sampling_keeps_black_exact, png_url, processing
from test_webui_preview import Host, euler, request

from lib_diffdiff import ChangeMapError
from lib_diffdiff.sources import EstimateCache, depth_map, image_key, made_map, segment_map
from lib_diffdiff.webui import estimators
from lib_diffdiff.webui.adapter import plan_run
from lib_diffdiff.webui.foresee import foresee
from lib_diffdiff.webui.infotext import infotext_params, ui_value
from lib_diffdiff.webui.script_args import parse_named
from lib_diffdiff.webui.settings import SETTINGS, DiffDiffArgs

# ---- the maps, by hand ----


def test_a_depth_estimate_becomes_near_changes_stretched_to_black_and_white():
    estimate = np.array([[51, 255], [102, 153]], np.uint8)  # near = bright, as the preprocessors return it
    expected = (estimate - 51.0) / 204.0
    np.testing.assert_allclose(depth_map(estimate, 2, 2), expected, atol=1e-7)
    np.testing.assert_allclose(depth_map(np.repeat(estimate[..., None], 3, axis=2), 2, 2), expected, atol=1e-7)
    assert depth_map(estimate, 2, 2).dtype == np.float32


def test_a_depth_estimate_at_the_estimators_resolution_is_scaled_to_the_image():
    ramp = np.tile(np.linspace(0, 255, 16), (8, 1))  # 16x8, left far, right near
    m = depth_map(ramp, 64, 32)
    assert m.shape == (32, 64) and m.min() >= 0 and m.max() <= 1
    assert (np.diff(m, axis=1) >= -1e-6).all(), "the ramp stays a ramp"
    assert m[:, 0].max() < 0.05 and m[:, -1].min() > 0.95


@pytest.mark.parametrize(
    "estimate, message",
    [
        (np.full((4, 4), 90, np.uint8), "flat"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.zeros((2, 2, 2, 2)), "shape"),
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_a_depth_estimate_that_makes_no_map_is_refused(estimate, message):
    with pytest.raises(ChangeMapError, match=message):
        depth_map(estimate, 4, 4)


def segmentation() -> np.ndarray:
    """Three classes; class A (red) has two disconnected parts."""
    seg = np.zeros((8, 8, 3), np.uint8)
    seg[:, :] = (0, 0, 255)  # B
    seg[0:3, 0:3] = (255, 0, 0)  # A, top left
    seg[5:8, 5:8] = (255, 0, 0)  # A, bottom right
    seg[0:2, 5:8] = (0, 255, 0)  # C
    return seg


def test_the_segment_under_the_point_changes_wherever_its_class_is():
    seg = segmentation()
    a = (seg == (255, 0, 0)).all(axis=2)
    m = segment_map(seg, 8, 8, (0.1, 0.1))
    np.testing.assert_array_equal(m, a.astype(np.float32))
    assert m[6, 6] == 1, "the disconnected part of the class changes too"
    np.testing.assert_array_equal(segment_map(seg, 8, 8, (0.5, 0.5)), (seg == (0, 0, 255)).all(axis=2))
    big = segment_map(seg, 32, 32, (0.99, 0.0))  # C, scaled by nearest neighbour: hard edges stay hard
    np.testing.assert_array_equal(big, np.kron((seg == (0, 255, 0)).all(axis=2), np.ones((4, 4))))


def test_made_map_runs_the_estimate_on_the_rgb_image_and_refuses_without_one():
    image = Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1)), "L")
    seen = []

    def estimate(im):
        seen.append(im.mode)
        return np.asarray(im)[..., 1]

    np.testing.assert_allclose(made_map("depth", image, estimate=estimate), np.tile(np.arange(16) / 15, (4, 1)))
    assert seen == ["RGB"]
    with pytest.raises(ChangeMapError, match="'depth' needs one of the WebUI's depth estimators"):
        made_map("depth", image)


# ---- the cache ----


def test_the_cache_runs_an_estimator_once_per_image_and_keeps_a_few():
    calls = []

    def compute(im):
        calls.append(im.size)
        return np.asarray(im)[..., 0].copy()

    cache = EstimateCache(size=2)
    a = Image.fromarray(np.full((4, 4, 3), 10, np.uint8))
    same = Image.fromarray(np.full((4, 4, 3), 10, np.uint8))
    changed = np.full((4, 4, 3), 10, np.uint8)
    changed[3, 3] = 11
    changed = Image.fromarray(changed)
    first = cache.get("e", a, compute)
    assert cache.get("e", same, compute) is first and len(calls) == 1, "the same pixels: no second run"
    assert image_key(a) == image_key(same) != image_key(changed)
    cache.get("e", changed, compute)
    cache.get("other", a, compute)
    assert len(calls) == 3, "another image or estimator runs again"
    cache.get("e", a, compute)
    assert len(calls) == 4, "bounded: the oldest entry went"
    with pytest.raises(ValueError):
        first[0, 0] = 0  # read-only: no caller changes what the next one gets


# ---- the WebUI's estimators, in registries shaped as the hosts' ----


class Parameter:
    """A1111's PreprocessorParameter keeps its default in ``value``."""

    def __init__(self, value):
        self.value = value


class ForgeParameter:
    """Forge's keeps it in ``gradio_update_kwargs``."""

    def __init__(self, value):
        self.gradio_update_kwargs = {"value": value, "visible": True}


class DepthPreprocessor:
    """An estimator: "depth" = the image's red channel (near = bright), returned at the preprocessor's resolution
    (its shorter side), as HWC3 uint8, as the hosts' preprocessors return it."""

    def __init__(self, name="depth_midas", parameter=ForgeParameter, resolution=16):
        self.name, self.tags = name, ["Depth"]
        self.slider_resolution = parameter(resolution)
        self.slider_1 = parameter(6.28)
        self.calls: list[tuple] = []
        self.unloads = 0

    def __call__(self, input_image, resolution, slider_1=None, slider_2=None, slider_3=None, **kwargs):
        assert isinstance(input_image, np.ndarray) and input_image.dtype == np.uint8 and input_image.shape[2] == 3
        self.calls.append((input_image.shape, resolution, slider_1, slider_2))
        h, w = input_image.shape[:2]
        size = (resolution * w // min(w, h), resolution * h // min(w, h))
        red = Image.fromarray(input_image[..., 0]).resize(size, Image.BILINEAR)
        return np.repeat(np.asarray(red)[..., None], 3, axis=2)


class A1111Depth(DepthPreprocessor):
    def __init__(self, name="depth_midas"):
        super().__init__(name, Parameter)

    def unload(self):
        self.unloads += 1
        return True


class SegPreprocessor(DepthPreprocessor):
    """Segments: left half one colour, right half another."""

    def __init__(self, name="seg_ufade20k"):
        super().__init__(name)
        self.tags = ["Segmentation"]

    def __call__(self, input_image, resolution, **kwargs):
        self.calls.append((input_image.shape, resolution))
        out = np.zeros_like(input_image)
        out[:, : input_image.shape[1] // 2] = (120, 120, 80)
        out[:, input_image.shape[1] // 2 :] = (6, 230, 230)
        return out


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(estimators, "_CACHE", EstimateCache())


@pytest.fixture
def forge(monkeypatch):
    """``modules_forge.shared.supported_preprocessors`` as Forge, reForge and Neo fill it."""
    shared = types.ModuleType("modules_forge.shared")
    shared.supported_preprocessors = {
        "canny": types.SimpleNamespace(tags=["Canny"], __call__=None),
        "depth_midas": DepthPreprocessor(),
        "depth_anything_v2": DepthPreprocessor("depth_anything_v2"),
        "seg_ufade20k": SegPreprocessor(),
    }
    monkeypatch.setitem(sys.modules, "modules_forge.shared", shared)
    return shared.supported_preprocessors


@pytest.fixture
def controlnet(monkeypatch):
    """sd-webui-controlnet's registry on A1111: ``Preprocessor.all_processors_by_name``."""
    module = types.ModuleType("scripts.supported_preprocessor")

    segment = SegPreprocessor("anime_face_segment")  # registered by name, shown by label

    class Preprocessor:
        all_processors = {"depth_midas": A1111Depth(), "depth_zoe": A1111Depth("depth_zoe"), "seg_anime_face": segment}
        all_processors_by_name = {"depth_midas": all_processors["depth_midas"], "anime_face_segment": segment}

    module.Preprocessor = Preprocessor
    monkeypatch.setitem(sys.modules, "scripts.supported_preprocessor", module)
    return Preprocessor.all_processors


def test_the_installed_estimators_of_each_kind_are_found_best_first(forge, controlnet):
    assert list(estimators.installed("depth")) == ["depth_anything_v2", "depth_midas", "depth_zoe"]
    assert list(estimators.installed("segmentation")) == ["seg_ufade20k", "seg_anime_face"]
    assert estimators.choose("segmentation", "anime_face_segment")[0] == "seg_anime_face", "A1111's name: an alias"
    assert estimators.choose("depth", "auto")[0] == "depth_anything_v2"
    assert estimators.choose("depth", "depth_zoe")[1] is controlnet["depth_zoe"]
    assert estimators.estimator_choices("segmentation") == ["auto", "seg_ufade20k", "seg_anime_face"]
    assert estimators.installed_estimators() == {
        "depth": ["depth_anything_v2", "depth_midas", "depth_zoe"],
        "segmentation": ["seg_ufade20k", "seg_anime_face"],
    }
    with pytest.raises(
        ChangeMapError,
        match="'depth_leres' is not an installed depth estimator; installed: depth_anything_v2, depth_midas, depth_zoe",
    ):
        estimators.choose("depth", "depth_leres")
    with pytest.raises(ChangeMapError, match="not an installed segmentation estimator"):
        estimators.choose("segmentation", "depth_midas")


def test_without_an_estimator_the_message_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "modules_forge.shared", raising=False)
    for name in [n for n in sys.modules if n.endswith("supported_preprocessor")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ChangeMapError, match="needs a depth estimator, and this WebUI has none.*sd-webui-controlnet"):
        plan_run(processing(Image.new("RGB", (64, 32), "red")), DiffDiffArgs(enabled=True, source="depth"))
    assert estimators.estimator_choices("depth") == ["auto"]


def ramp_image(width=64, height=32) -> Image.Image:
    a = np.zeros((height, width, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, width).round().astype(np.uint8)
    return Image.fromarray(a, "RGB")


def test_a_depth_map_reaches_the_run_shaped_once_per_image_and_keeps_its_black_exact(forge):
    image = ramp_image()
    args = DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_midas", white_point=0.5, quantize=3)
    plan = plan_run(processing(image), args)
    midas = forge["depth_midas"]
    assert len(midas.calls) == 1 and midas.calls[0][1:3] == (16, 6.28), "its default resolution and sliders"
    raw = midas(np.asarray(image), 16)
    expected = np.round(np.clip(depth_map(raw, 64, 32) / 0.5, 0, 1) * 2) / 2  # white point 0.5, 3 levels
    np.testing.assert_allclose(plan.image_map, expected, atol=1e-6)
    assert (plan.image_map[:, :8] == 0).all() and (plan.image_map[:, -16:] == 1).all()
    plan_run(processing(image.copy()), args)
    assert len(midas.calls) == 2, "the same image again: the estimate comes from the cache (2 = the test's own call)"

    assert_sampling_keeps_black_exact(image, plan)


def test_invert_makes_far_change(forge):
    image = ramp_image()
    near = plan_run(processing(image), DiffDiffArgs(enabled=True, source="depth")).image_map
    far = plan_run(processing(image), DiffDiffArgs(enabled=True, source="depth", invert=True)).image_map
    np.testing.assert_allclose(far, 1 - near, atol=1e-6)
    assert near[:, -1].min() > 0.95 and far[:, 0].min() > 0.95


def test_the_segment_under_the_point_is_the_map(forge):
    image = ramp_image()
    right = plan_run(processing(image), DiffDiffArgs(enabled=True, source="segmentation", source_point=(0.9, 0.5)))
    expected = np.zeros((32, 64), np.float32)
    expected[:, 32:] = 1
    np.testing.assert_array_equal(right.image_map, expected)
    left = plan_run(processing(image), DiffDiffArgs(enabled=True, source="segmentation", source_point=(0.1, 0.5)))
    np.testing.assert_array_equal(left.image_map, 1 - expected)


def test_a1111s_preprocessors_are_unloaded_after_use_as_controlnet_does(controlnet):
    plan_run(processing(ramp_image()), DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_zoe"))
    assert controlnet["depth_zoe"].unloads == 1 and controlnet["depth_midas"].unloads == 0
    assert controlnet["depth_zoe"].calls[0][1:3] == (16, 6.28), "A1111's slider defaults are read too"


def test_an_estimator_that_fails_is_a_clear_error_and_still_unloaded(controlnet):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    controlnet["depth_zoe"].__class__ = type("Broken", (A1111Depth,), {"__call__": broken})
    with pytest.raises(ChangeMapError, match="estimator 'depth_zoe' failed on this image: RuntimeError: CUDA out"):
        plan_run(processing(ramp_image()), DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_zoe"))
    assert controlnet["depth_zoe"].unloads == 1


def test_the_preview_shows_the_runs_map_from_the_same_estimate(forge):
    image = ramp_image(64, 64)
    settings = {"source": "depth", "source_estimator": "depth_anything_v2", "quantize": 4}
    out = foresee(request(settings, init_image=png_url(image)), Host(euler))
    foresee(request(settings, init_image=png_url(image)), Host(euler))  # a second poll
    plan = plan_run(processing(image), parse_named({"enabled": True, **settings}))
    assert len(forge["depth_anything_v2"].calls) == 1, "two polls and the run: one estimate"
    assert out["summary"] and out["calls"] > 0
    assert infotext_params(plan.args, plan.summary)["Differential diffusion map"] == plan.summary
    with pytest.raises(ChangeMapError, match="needs the init image"):
        foresee(request(settings), Host(euler))


# ---- settings and the panel ----


def test_the_panel_offers_the_installed_estimators_of_the_chosen_source(monkeypatch, forge):
    module, _ = load_script(monkeypatch)
    components = module.Script().ui(True)
    estimator = next(c for c in components if c.label == "Estimator")
    source = next(c for c in components if c.label == "Map source")
    assert estimator.args[0] == ["auto", "depth_anything_v2", "depth_midas", "seg_ufade20k"]
    assert estimator.kwargs["visible"] is False, "shown for the depth and segmentation sources only"
    visibility = source.changes[0][0]
    shown = {
        o.label for o, u in zip(source.changes[0][2], visibility("Change map", "Depth (near = change)")) if u["visible"]
    }
    assert {"Estimator"} <= shown and "Point (x, y)" not in shown
    update, inputs, outputs = source.changes[1]
    assert outputs == [estimator] and inputs == [source, estimator]
    assert update("Depth (near = change)", "seg_ufade20k") == {
        "choices": ["auto", "depth_anything_v2", "depth_midas"],
        "value": "auto",
    }
    assert update("Segment under the point", "seg_ufade20k")["value"] == "seg_ufade20k"


# ---- settings ----


def test_the_estimator_setting_is_parsed_written_and_read_back():
    assert parse_named({"enabled": True}).source_estimator == "auto"
    args = parse_named({"enabled": True, "source": "depth", "source_estimator": " depth_zoe "})
    assert args.source_estimator == "depth_zoe"
    params = infotext_params(args)
    assert params["Differential diffusion source estimator"] == "depth_zoe"
    restored = {s.name: ui_value(s.name, params) for s in SETTINGS}
    assert restored["source"] == "Depth (near = change)" and restored["source_estimator"] == "depth_zoe"
    assert "Differential diffusion source estimator" not in infotext_params(
        DiffDiffArgs(enabled=True, source="luminance", source_estimator="depth_zoe")
    ), "written only for the sources that use it"
    for bad in ("", "   ", "x" * 101, 3, "a\nb"):
        with pytest.raises(ChangeMapError, match="'source_estimator' must be an estimator's name"):
            parse_named({"enabled": True, "source_estimator": bad})


# ---- no downloads ----


def make_host_loader(monkeypatch, tmp_path):
    """A host's ``load_file_from_url`` (that would download: here it writes the file) in ``modules.modelloader``,
    and an annotator module that bound it by name at import, as the hosts' annotators do."""
    fetched = []

    def load_file_from_url(url, *, model_dir, progress=True, file_name=None):
        path = os.path.join(model_dir, file_name or os.path.basename(url))
        if not os.path.exists(path):
            fetched.append(url)
            with open(path, "wb") as f:
                f.write(b"weights")
        return path

    modelloader = types.ModuleType("modules.modelloader")
    modelloader.load_file_from_url = load_file_from_url
    annotator = types.ModuleType("annotator_under_test")
    annotator.load_file_from_url = load_file_from_url
    monkeypatch.setitem(sys.modules, "modules.modelloader", modelloader)
    monkeypatch.setitem(sys.modules, "annotator_under_test", annotator)
    return annotator, fetched


class Downloading(DepthPreprocessor):
    """Loads its weights through the annotator's bound ``load_file_from_url`` first."""

    def __init__(self, annotator, folder):
        super().__init__("depth_leres")
        self.annotator, self.folder = annotator, folder

    def __call__(self, input_image, resolution, **kwargs):
        self.annotator.load_file_from_url("https://example.org/res101.pth", model_dir=str(self.folder))
        return super().__call__(input_image, resolution, **kwargs)


def test_missing_weights_are_named_never_downloaded(monkeypatch, tmp_path, forge):
    annotator, fetched = make_host_loader(monkeypatch, tmp_path)
    original = annotator.load_file_from_url
    forge["depth_leres"] = Downloading(annotator, tmp_path)
    args = DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_leres")
    with pytest.raises(ChangeMapError) as e:
        plan_run(processing(ramp_image()), args)
    message = str(e.value)
    assert "'depth_leres' needs res101.pth, which is not on disk" in message
    assert "https://example.org/res101.pth" in message and str(tmp_path) in message
    assert fetched == [] and not (tmp_path / "res101.pth").exists()
    assert annotator.load_file_from_url is original, "the host's function is back after the call"
    assert sys.modules["modules.modelloader"].load_file_from_url is original
    # the host fetches it (the user ran the preprocessor in ControlNet): now it loads from disk
    original("https://example.org/res101.pth", model_dir=str(tmp_path))
    assert plan_run(processing(ramp_image()), args).image_map.max() == 1


def test_torch_hub_downloads_are_refused_too(monkeypatch, tmp_path, forge):
    class HubLoading(DepthPreprocessor):
        def __call__(self, input_image, resolution, **kwargs):
            torch.hub.download_url_to_file("https://example.org/dpt.pt", str(tmp_path / "dpt.pt"))
            return super().__call__(input_image, resolution, **kwargs)

    original = torch.hub.download_url_to_file
    forge["depth_midas"] = HubLoading()
    with pytest.raises(ChangeMapError, match="needs dpt.pt, which is not on disk.*https://example.org/dpt.pt"):
        plan_run(processing(ramp_image()), DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_midas"))
    assert torch.hub.download_url_to_file is original and not (tmp_path / "dpt.pt").exists()


def test_auto_takes_the_best_estimator_that_can_run_here(monkeypatch, tmp_path, forge):
    annotator, fetched = make_host_loader(monkeypatch, tmp_path)

    class NotInstalled(DepthPreprocessor):
        def __call__(self, *args, **kwargs):
            raise ModuleNotFoundError("No module named 'depth_anything_v2'")

    forge["depth_anything_v2"] = NotInstalled("depth_anything_v2")
    forge["depth_anything"] = Downloading(annotator, tmp_path)  # its weights are not on disk
    args = DiffDiffArgs(enabled=True, source="depth")
    plan = plan_run(processing(ramp_image()), args)
    assert len(forge["depth_midas"].calls) == 1 and fetched == [], "the third choice ran; nothing was fetched"
    raw = forge["depth_midas"](np.asarray(ramp_image()), 16)
    np.testing.assert_allclose(plan.image_map, depth_map(raw, 64, 32), atol=1e-6)
    with pytest.raises(ChangeMapError, match="'depth_anything_v2' cannot be loaded: No module named"):
        plan_run(
            processing(ramp_image()), DiffDiffArgs(enabled=True, source="depth", source_estimator="depth_anything_v2")
        )
    for name in ("depth_midas",):
        forge[name] = NotInstalled(name)
    with pytest.raises(
        ChangeMapError,
        match="none of this WebUI's depth estimators can run .*the first: the estimator "
        "'depth_anything_v2' cannot be loaded",
    ):
        plan_run(processing(ramp_image().rotate(90, expand=True).resize((64, 32))), args)


# ---- the made map, opened in the editor ----


def picture(out: dict) -> np.ndarray:
    raw = base64.b64decode(out["map"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)))


def test_the_made_map_opens_at_the_images_size_and_plans_like_the_source_once_painted(forge):
    from lib_diffdiff.webui.made_maps import made_map_picture

    image = ramp_image()
    settings = {"source": "Depth (near = change)", "source_estimator": "depth_midas", "quantize": 4, "gamma": 0.8}
    out = made_map_picture({"settings": settings, "init_image": png_url(image)})
    seen = picture(out)
    assert (out["width"], out["height"], out["source"]) == (64, 32, "depth") and seen.shape == (32, 64)
    made = plan_run(processing(image), parse_named({"enabled": True, **settings}))
    np.testing.assert_array_equal(
        seen,
        np.rint(made_map("depth", image, estimate=estimators.host_estimate("depth", "depth_midas")) * 255),
        err_msg="before Invert and shaping",
    )
    painted = {**settings, "source": "painted", "map": out["map"]}
    np.testing.assert_array_equal(
        plan_run(processing(image), parse_named({"enabled": True, **painted})).latent_map, made.latent_map
    )
    assert len(forge["depth_midas"].calls) == 1, "the editor's map and the run share the estimate"


def test_the_made_map_of_the_mask_source_reads_the_mask_and_bad_requests_say_why():
    from lib_diffdiff.webui.made_maps import made_map_picture

    mask = np.zeros((32, 64), np.uint8)
    mask[8:24, 16:48] = 255
    url = png_url(Image.fromarray(mask, "L"))
    seen = picture(made_map_picture({"settings": {"source": "mask edge", "source_reach": 4}, "mask": url}))
    assert (seen[mask == 0] == 0).all() and seen[16, 32] == 255
    inverted = picture(made_map_picture({"settings": {"source": "mask edge"}, "mask": url, "mask_invert": True}))
    assert (inverted[mask > 0] == 0).all()
    for body, message in (
        ({"settings": {}}, "no map source is chosen"),
        ({"settings": {"source": "luminance"}}, "made from the init image: send it as 'init_image'"),
        ({"settings": {"source": "mask edge"}}, "needs an inpaint mask: send it as 'mask'"),
        ({"settings": "luminance"}, "'settings' must be an object"),
        ({"settings": {"source": "luminance", "gamma": -1}, "init_image": url}, "'gamma'"),
    ):
        with pytest.raises(ChangeMapError, match=message):
            made_map_picture(body)


def test_the_panels_hidden_button_switches_the_source_to_painted(monkeypatch):
    module, _ = load_script(monkeypatch)
    module.Script().ui(True)
    button = next(c for c in module.gr.Button.made if c.kwargs.get("elem_id") == "diffdiff_use_painted")
    fn, _, outputs = button.on_click
    assert [o.label for o in outputs] == ["Map source"] and fn() == {"value": "Painted or uploaded"}
