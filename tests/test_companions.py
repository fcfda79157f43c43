"""Scripts that run a generation in pieces (Loopback, SD upscale, Ultimate SD upscale, ADetailer's detail passes):
the map follows what is sampled, or the generation is refused with a message. Fakes of the WebUI objects, the real
adapter and the real script; the live checks are in tests/integration/test_robustness.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_webui import load_script, setup_img2img_steps
from PIL import Image
from test_glue import FakeKDiffusionSampler, fake_p, png

from lib_diffdiff import ChangeMapError
from lib_diffdiff.maps.alignment import fit_to_image, to_processing_frame
from lib_diffdiff.maps.reading import load_change_map
from lib_diffdiff.maps.transforms import crop, resize_to
from lib_diffdiff.webui.adapter import DifferentialSampling, check_model_calls, plan_run
from lib_diffdiff.webui.companions import map_source_size, record_source, refusal, selected_script_title
from lib_diffdiff.webui.settings import DiffDiffArgs


def runner(*titles: str) -> SimpleNamespace:
    return SimpleNamespace(selectable_scripts=[SimpleNamespace(title=lambda t=t: t) for t in titles])


@pytest.fixture
def script(monkeypatch):
    module, _ = load_script(monkeypatch)
    return module


@pytest.mark.parametrize(
    "index,expected",
    [(0, None), (1, "loopback"), (2, "sd upscale"), (3, "ultimate sd upscale"), (4, None), (None, None), (True, None)],
)
def test_the_selected_script_is_read_from_the_first_script_arg(index, expected):
    p = SimpleNamespace(scripts=runner("Loopback", "SD upscale", "Ultimate SD upscale"), script_args=[index, 1, 2])
    assert selected_script_title(p) == expected


def test_a_title_that_raises_reads_as_no_script():
    def broken():
        raise RuntimeError("third-party bug")

    p = SimpleNamespace(scripts=SimpleNamespace(selectable_scripts=[SimpleNamespace(title=broken)]), script_args=[1])
    assert selected_script_title(p) is None


def test_sd_upscale_is_refused_with_a_message_and_the_others_are_not(script):
    args = {"enabled": True, "map": png(np.full((8, 8), 255))}
    for title, refused in [("SD upscale", True), ("Ultimate SD upscale", False), ("Loopback", False)]:
        p = fake_p(scripts=runner(title), script_args=[1])
        script.Script().process(p, args)
        if refused:
            with pytest.raises(script.DiffDiffInputError, match="SD upscale samples tiles") as raised:
                p.init([], [], [])
            assert raised.value.status_code == 422
        else:
            assert refusal(p) is None


def test_a_disabled_extension_refuses_nothing(script):
    p = fake_p(scripts=runner("SD upscale"), script_args=[1])
    init = p.init
    script.Script().process(p, {"enabled": False})
    assert p.init is init


def test_adetailers_detail_pass_runs_without_the_map(script):
    p = fake_p(_ad_inner=True, scripts=runner("SD upscale"), script_args=[1])
    init = p.init
    script.Script().process(p, {"enabled": True, "map": png(np.full((8, 8), 255))})
    assert p.init is init, "the detail pass is left to ADetailer (and not refused for the parent's script)"


def test_process_on_the_same_object_again_wraps_the_host_init_once(script):
    """Loopback and the upscalers call process() for every pass on one object: each pass wraps the host's own init
    (stacked wrappers would patch the sampler once per earlier pass)."""
    planned = []

    def stand_in_plan(p, settings, source):
        planned.append(source)
        raise RuntimeError("planned")  # stops the pass here

    script.plan_run = stand_in_plan
    p = fake_p(scripts=runner("Loopback"), script_args=[1], init_images=[Image.new("RGB", (64, 32))])
    host_init = p.init
    script.Script().setup(p, {"enabled": True})
    args = {"enabled": True, "map": png(np.full((32, 64), 255))}
    for _ in range(3):
        script.Script().process(p, args)
        assert p.init.diffdiff_wraps is host_init
    with pytest.raises(RuntimeError, match="planned"):
        p.init([], [], [])
    assert len(p.init_calls) == 1 and planned == [(64, 32)], "fitted from the user's image, recorded in setup"


def test_a_refused_pass_then_a_good_one_does_not_stack(script):
    p = fake_p(init_images=[Image.new("RGB", (8, 8))])
    host_init = p.init
    script.Script().process(p, {"enabled": True, "mode": "sideways"})
    script.Script().process(p, {"enabled": True, "map": png(np.full((8, 8), 255))})
    assert p.init.diffdiff_wraps is host_init, "the good pass wraps the host's init, not the refusal"


def loopback_p(init_image: Image.Image, width: int, height: int, resize_mode: int):
    sampler = FakeKDiffusionSampler()
    return SimpleNamespace(
        init_images=[init_image],
        width=width,
        height=height,
        resize_mode=resize_mode,
        image_mask=None,
        paste_to=None,
        init_latent=torch.randn(1, 4, height // 8, width // 8, generator=torch.Generator().manual_seed(0)),
        denoising_strength=0.7,
        steps=8,
        sampler=sampler,
        nmask=None,
        scripts=runner("Loopback"),
        script_args=[1],
    )


@pytest.mark.parametrize("resize_mode", [0, 1, 2])
def test_every_loop_of_loopback_samples_the_first_loops_frame_map(resize_mode):
    values = np.zeros((32, 96), np.uint8)
    values[:, 40:] = 255  # the user's image is 96x32, sampled at 64x64
    args = DiffDiffArgs(enabled=True, map=png(values))
    first = loopback_p(Image.new("RGB", (96, 32)), 64, 64, resize_mode)
    record_source(first)
    loop_one = plan_run(first, args, map_source_size(first))
    later = first
    later.init_images = [Image.new("RGB", (64, 64))]  # the last output comes back as the init image
    loop_two = plan_run(later, args, map_source_size(later))
    np.testing.assert_array_equal(loop_two.frame_map, loop_one.frame_map)
    np.testing.assert_array_equal(loop_two.latent_map, loop_one.latent_map)
    with pytest.raises(ChangeMapError, match="96x32 but the image is 64x64"):
        plan_run(later, args)  # fitted to the fed-back output instead, the map would not fit at all


def test_an_ultimate_sd_upscale_tile_gets_its_crop_of_the_map():
    """A tile is an "only masked" pass over the whole canvas (the user's image stretched 2x): the map, fitted to the
    canvas, cut to the tile's box and fitted to the tile's frame."""
    values = np.zeros((32, 64), np.uint8)
    values[:, 24:40] = 255
    values[8:16, :] = 128
    args = DiffDiffArgs(enabled=True, map=png(values))
    canvas = Image.new("RGB", (128, 64))
    mask = Image.new("L", (128, 64))
    mask.paste(255, (64, 0, 128, 64))
    nmask = torch.zeros(1, 4, 8, 8)
    nmask[...] = 1.0
    p = SimpleNamespace(
        init_images=[canvas],
        width=64,
        height=64,
        resize_mode=0,
        image_mask=mask,
        paste_to=(64, 0, 64, 64),
        init_latent=torch.zeros(1, 4, 8, 8),
        denoising_strength=0.5,
        nmask=nmask,
        scripts=runner("Ultimate SD upscale"),
        script_args=[1],
    )
    plan = plan_run(p, args, map_source_size(p))
    expected = resize_to(crop(fit_to_image(load_change_map(png(values)), 128, 64), (64, 0, 128, 64)), 64, 64, 2)
    np.testing.assert_array_equal(plan.frame_map, expected)
    assert plan.frame_map[:, :16].max() > 0.9 and plan.frame_map[:, 24:].max() < 0.6  # the tile's own part


def test_a_tile_over_a_black_part_of_the_map_keeps_the_original_without_a_model_call():
    values = np.zeros((32, 64), np.uint8)
    values[:, :16] = 255  # only the left quarter changes; the tile below lies in the kept part
    sampler = FakeKDiffusionSampler()
    p = SimpleNamespace(
        init_images=[Image.new("RGB", (64, 32))],
        width=32,
        height=32,
        resize_mode=0,
        image_mask=Image.new("L", (64, 32)),
        paste_to=(32, 0, 32, 32),
        init_latent=torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2)),
        denoising_strength=0.8,
        steps=10,
        sampler=sampler,
        nmask=torch.ones(1, 4, 4, 4),
    )
    plan = plan_run(p, DiffDiffArgs(enabled=True, map=png(values)))
    assert not (plan.latent_map > 0).any()
    DifferentialSampling(p, plan, setup_img2img_steps).install()
    out = p.sampler.sample_img2img(p, p.init_latent, torch.randn_like(p.init_latent), None, None)
    assert torch.equal(out, p.init_latent) and out is not p.init_latent
    assert sampler.model_wrap_cfg.levels == []


def test_a_map_black_everywhere_is_still_refused():
    p = loopback_p(Image.new("RGB", (64, 64)), 64, 64, 0)
    with pytest.raises(ChangeMapError, match="black everywhere"):
        plan_run(p, DiffDiffArgs(enabled=True, map=png(np.zeros((64, 64)))))


def test_the_processing_frame_of_a_fed_back_image_is_the_frame_itself():
    """Why Loopback's rule holds: the host resizes a frame-sized init image to the frame, which changes nothing."""
    m = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    for mode in (0, 1, 2):
        np.testing.assert_array_equal(to_processing_frame(m, 64, 64, mode, None), m)


class FakeTimestepSampler(FakeKDiffusionSampler):
    """A WebUI timestep sampler (DDIM): img2img runs timesteps[:t_enc] and calls the model t_enc - 1 times."""

    config = SimpleNamespace(name="DDIM")

    def get_timesteps(self, p, steps):
        return torch.clip(torch.arange(0, 1000, 1000 // steps) + 1, 0, 999)


@pytest.mark.parametrize(
    "steps,strength,refused", [(2, 1.0, True), (3, 0.6, True), (3, 1.0, False), (10, 0.15, True), (10, 0.2, False)]
)
def test_a_timestep_sampler_run_without_a_model_call_is_refused(steps, strength, refused):
    values = np.zeros((32, 64), np.uint8)
    values[:, 32:] = 255
    p = loopback_p(Image.new("RGB", (64, 32)), 64, 32, 0)
    p.sampler, p.steps, p.denoising_strength = FakeTimestepSampler(), steps, strength
    plan = plan_run(p, DiffDiffArgs(enabled=True, map=png(values)))
    if refused:
        with pytest.raises(ChangeMapError, match=r"DDIM makes no model call.*raise the steps or the strength"):
            check_model_calls(p, plan, setup_img2img_steps)
    else:
        check_model_calls(p, plan, setup_img2img_steps)
    assert p.denoising_strength == strength
    p.sampler = FakeKDiffusionSampler()  # k-diffusion samplers call the model from t_enc = 1 on
    check_model_calls(p, plan, setup_img2img_steps)


def test_a_timestep_sampler_on_a_flow_model_is_refused():
    """The WebUI runs DDIM/PLMS/UniPC with SD's variance-preserving formulas, also on flow models (Forge Neo's
    CompVisSampler, A1111's SD3): refused with a message instead of a silently wrong run."""
    flow = SimpleNamespace(
        forge_objects=SimpleNamespace(
            unet=SimpleNamespace(model=SimpleNamespace(predictor=SimpleNamespace(prediction_type="const")))
        )
    )
    values = np.full((32, 64), 255, np.uint8)
    p = loopback_p(Image.new("RGB", (64, 32)), 64, 32, 0)
    p.sampler, p.steps, p.denoising_strength, p.sd_model = FakeTimestepSampler(), 10, 1.0, flow
    plan = plan_run(p, DiffDiffArgs(enabled=True, map=png(values)))
    with pytest.raises(ChangeMapError, match=r"DDIM is a timestep sampler.*do not fit this flow model"):
        check_model_calls(p, plan, setup_img2img_steps)
    p.sd_model = SimpleNamespace(add_noise_to_latent=lambda x, noise, amount: x)  # A1111's SD3
    with pytest.raises(ChangeMapError, match="flow model"):
        check_model_calls(p, plan, setup_img2img_steps)
    p.sampler = FakeKDiffusionSampler()
    check_model_calls(p, plan, setup_img2img_steps)  # k-diffusion samplers noise flow models the host's way
    p.sampler, p.sd_model = FakeTimestepSampler(), SimpleNamespace()  # an SD model: DDIM fits
    check_model_calls(p, plan, setup_img2img_steps)
