"""Inpainting models (9-channel UNets) conditioned per model call, through the adapter and real sampling loops.

The host here is a stand-in for A1111's / Forge's img2img: ``init`` computes ``image_conditioning`` with
``img2img_image_conditioning`` -> ``inpainting_image_conditioning`` (copied from the hosts' modules/processing.py, the
oracle of what the host builds for a mask), with a small real encoder; the sampler passes it as ``image_cond`` to a
CFG-denoiser-shaped forward, and a real 9-channel network consumes it and records what it was given.
"""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fake_webui import setup_img2img_steps
from PIL import Image
from sampling_loops import TinyNet, sample_euler, sample_heun

from lib_diffdiff.core import conditioning as conditioning_module
from lib_diffdiff.core.conditioning import InpaintConditioning, is_inpainting_conditioning
from lib_diffdiff.core.noise_schedules import karras_sigmas
from lib_diffdiff.core.schedule import img2img_t_enc
from lib_diffdiff.webui.adapter import DifferentialSampling, plan_run
from lib_diffdiff.webui.infotext import CONDITIONING_SECONDS, INPAINT_CONDITIONINGS
from lib_diffdiff.webui.inpainting import PROFILE_VARIABLE, ConditioningRecorder, device_synchronize
from lib_diffdiff.webui.settings import DiffDiffArgs

W, H = 64, 48  # image pixels; the latent is 8 x 6
STEPS = 10


def png(values: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(values, dtype=np.uint8), "L").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Encoder(torch.nn.Module):
    """A VAE-encoder stand-in: 8x8 average pool and a random 1x1 conv to 4 channels (not linear in the blanking,
    so a wrong mask shows)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.weight = torch.randn(4, 3, 1, 1, generator=g)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.conv2d(F.avg_pool2d(image, 8), self.weight))


ENCODER = Encoder()


class WideEncoder(Encoder):
    """An encoder whose latent pixel sees its 3x3 neighbourhood of blocks (receptive radius: 1 latent pixel), as a
    VAE's convolutions see past their own block."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(8)
        self.spread = torch.randn(4, 4, 3, 3, generator=g) / 3

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.conv2d(super().forward(image), self.spread, padding=1))


class InpaintModel:
    """A 9-channel network behind the hosts' CFG denoiser signature; records the image_cond of every call."""

    def __init__(self):
        self.net = TinyNet(channels=9, seed=3)
        self.image_conds: list[torch.Tensor] = []
        self.levels: list[float] = []

    def forward(self, x, sigma, uncond=None, cond=None, cond_scale=None, s_min_uncond=None, image_cond=None):
        self.image_conds.append(image_cond)
        self.levels.append(float(sigma.reshape(-1)[0]))
        s = sigma.reshape(-1, 1, 1, 1)
        inp = torch.cat([x / (s**2 + 1).sqrt(), image_cond.expand(x.shape[0], -1, -1, -1)], dim=1)
        return x - self.net(inp, sigma.log())[:, :4] * s


class Denoiser:
    """``p.sampler.model_wrap_cfg``: forward is looked up on the class, as the adapter does."""

    def __init__(self, model: InpaintModel):
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model.forward(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class Sampler:
    """The hosts' k-diffusion img2img: sigmas tail, start noising, extra_args with image_cond as keyword (or
    positionally, as a host could)."""

    def __init__(self, loop=sample_euler, positional=False):
        self.model = InpaintModel()
        self.model_wrap_cfg = Denoiser(self.model)
        self.loop, self.positional = loop, positional

    def get_sigmas(self, p, steps):
        return karras_sigmas(steps).float()

    def sample_img2img(
        self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None
    ):
        steps, t_enc = setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)[steps - t_enc - 1 :]
        xt = x + noise * sigmas[0]
        if self.positional:
            model = lambda z, s: self.model_wrap_cfg(z, s, None, None, 7.0, 0.0, image_conditioning)  # noqa: E731
        else:
            model = lambda z, s: self.model_wrap_cfg(z, s, image_cond=image_conditioning)  # noqa: E731
        return self.loop(model, xt, sigmas)


class Img2ImgP:
    """The processing object: init builds the image conditioning the way both hosts do (Img2Img.init)."""

    def __init__(self, sampler, image: torch.Tensor, mask: Image.Image | None, args: DiffDiffArgs, inpaint=True):
        self.sampler, self.image, self.image_mask, self.inpaint = sampler, image, mask, inpaint
        self.init_images = [Image.new("RGB", (W, H))]
        self.width, self.height, self.resize_mode, self.paste_to = W, H, 0, None
        self.denoising_strength, self.steps, self.mask_round = 0.8, STEPS, True
        self.inpainting_mask_weight = 1.0
        self.inpainting_fill = 1  # original
        self.extra_generation_params: dict = {}
        self.args = args
        self.encodes = 0
        self.encoder = ENCODER

    def init(self):
        # as the hosts' Img2Img.init: an approximate encoder (TAESD) for the init latent when asked, which then
        # changes inside the mask with latent noise (fill 2) or latent nothing (fill 3); latent upscale (resize 3)
        approximate = "VAE Encoder" in self.extra_generation_params
        self.init_latent = self.encoder(self.image * 2 - 1) * (0.9 if approximate else 1.0)
        if self.resize_mode == 3:  # latent upscale: the latent is resized, not encoded at this size
            small = F.interpolate(self.init_latent, scale_factor=0.5, mode="bilinear")
            self.init_latent = F.interpolate(small, size=self.init_latent.shape[-2:], mode="bilinear")
        self.nmask = None
        if self.image_mask is not None:
            latmask = np.asarray(self.image_mask.convert("L").resize((W // 8, H // 8)), dtype=np.float32) / 255
            self.nmask = torch.from_numpy(np.around(latmask))[None].expand(4, -1, -1)
            if self.inpainting_fill == 2:
                noise = torch.randn(self.init_latent.shape, generator=torch.Generator().manual_seed(3))
                self.init_latent = self.init_latent * (1 - self.nmask) + noise * self.nmask
            elif self.inpainting_fill == 3:
                self.init_latent = self.init_latent * (1 - self.nmask)
        self.image_conditioning = self.img2img_image_conditioning(
            self.image * 2 - 1, self.init_latent, self.image_mask, self.mask_round
        )

    def img2img_image_conditioning(self, source_image, latent_image, image_mask=None, round_image_mask=True):
        if self.inpaint:
            return self.inpainting_image_conditioning(source_image, latent_image, image_mask, round_image_mask)
        return latent_image.new_zeros(latent_image.shape[0], 5, 1, 1)

    def inpainting_image_conditioning(self, source_image, latent_image, image_mask=None, round_image_mask=True):
        # A1111 1.10 / Forge modules/processing.py, with ENCODER as the first stage
        self.encodes += 1
        if image_mask is not None:
            if torch.is_tensor(image_mask):
                conditioning_mask = image_mask
            else:
                conditioning_mask = np.array(image_mask.convert("L"))
                conditioning_mask = conditioning_mask.astype(np.float32) / 255.0
                conditioning_mask = torch.from_numpy(conditioning_mask[None, None])
                if round_image_mask:
                    conditioning_mask = torch.round(conditioning_mask)
        else:
            conditioning_mask = source_image.new_ones(1, 1, *source_image.shape[-2:])
        conditioning_mask = conditioning_mask.to(device=source_image.device, dtype=source_image.dtype)
        conditioning_image = torch.lerp(
            source_image, source_image * (1.0 - conditioning_mask), self.inpainting_mask_weight
        )
        conditioning_image = self.encoder(conditioning_image)
        conditioning_mask = F.interpolate(conditioning_mask, size=latent_image.shape[-2:])
        conditioning_mask = conditioning_mask.expand(conditioning_image.shape[0], -1, -1, -1)
        return torch.cat([conditioning_mask, conditioning_image], dim=1)


def block_image(seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, H // 8, W // 8, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)


def gradient() -> np.ndarray:
    m = np.zeros((H, W))
    m[:, 8:] = np.linspace(20, 255, W - 8)
    return m


def run(
    change_map, loop=sample_euler, mask=None, inpaint=True, positional=False, encoder=ENCODER, host=None, **settings
):
    """One differential generation, as the script drives it (``host``: attributes of ``p``); returns (p, sampler,
    output latent, plan)."""
    sampler = Sampler(loop, positional)
    args = DiffDiffArgs(enabled=True, map=png(change_map), **settings)
    p = Img2ImgP(sampler, block_image(), mask, args, inpaint)
    p.encoder = encoder
    for name, value in (host or {}).items():
        setattr(p, name, value)
    with ConditioningRecorder(p) as recorder:
        p.init()
    assert "img2img_image_conditioning" not in p.__dict__  # the recorder restored the host's method
    plan = plan_run(p, args)
    conditioning = recorder.inpaint_conditioning(args.exact_conditioning)
    DifferentialSampling(p, plan, setup_img2img_steps, conditioning).install()
    noise = torch.randn(p.init_latent.shape, generator=torch.Generator().manual_seed(5))
    out = p.sampler.sample_img2img(p, p.init_latent, noise, None, None, image_conditioning=p.image_conditioning)
    return p, sampler, out, plan, noise


def free_at(level: float, plan, strength=0.8) -> torch.Tensor:
    """The oracle, in the WebUI's own terms: a pixel of strength s starts at img2img's first sigma for s,
    sigmas[steps - t_enc(s) - 1], and is free at every call at or below that sigma."""
    sigmas = karras_sigmas(STEPS).float()
    j = int(torch.argmin((sigmas - level).abs()))
    t_enc = np.vectorize(lambda s: img2img_t_enc(float(s), STEPS))(plan.latent_map * strength)
    return torch.from_numpy((STEPS - t_enc - 1 <= j) & (plan.latent_map > 0))[None, None]


def expected_conditioning(p, free: torch.Tensor) -> torch.Tensor:
    mask = F.interpolate(free.float(), size=(H, W), mode="nearest")
    region = (
        torch.ones_like(mask)
        if p.image_mask is None
        else torch.round(torch.from_numpy(np.asarray(p.image_mask.convert("L"), dtype=np.float32) / 255)[None, None])
    )
    mask = mask * region
    source = p.image * 2 - 1
    return torch.cat([F.interpolate(mask, size=(H // 8, W // 8)), p.encoder(source * (1 - mask))], dim=1)


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "blended"])
@pytest.mark.parametrize("loop", [sample_euler, sample_heun], ids=["euler", "heun"])
def test_each_call_is_told_its_free_pixels_and_shown_the_original_elsewhere(loop, exact):
    """The stand-in encoder sees only each latent pixel's own block, so the blend is exact here too."""
    p, sampler, _, plan, _ = run(gradient(), loop, exact_conditioning=exact)
    calls = sampler.model.image_conds
    assert len(calls) > STEPS // 2
    masks = []
    for level, cond in zip(sampler.model.levels, calls, strict=True):
        free = free_at(level, plan)
        assert torch.equal(cond[:, :1] > 0.5, free), f"mask channel at sigma {level}"
        torch.testing.assert_close(cond, expected_conditioning(p, free), rtol=0, atol=1e-6)
        masks.append(free)
    # the free set grows during the run, and the model saw it grow
    assert not torch.equal(masks[0], masks[-1]) and bool((masks[-1] >= masks[0]).all())
    distinct = len({m.numpy().tobytes() for m in masks})
    assert distinct > 3
    # exact: one encode per distinct free set (the host's own encode in init, plus one for each new set);
    # blended: the host's alone, whatever the number of sets (the original's latent is the host's init latent)
    assert p.encodes == (1 + distinct if exact else 1)
    assert p.extra_generation_params[INPAINT_CONDITIONINGS] == distinct


WIDE = WideEncoder()


def test_exact_conditioning_encodes_each_free_set_with_an_encoder_that_sees_past_its_block():
    p, sampler, _, plan, _ = run(gradient(), encoder=WIDE, exact_conditioning=True)
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        torch.testing.assert_close(cond, expected_conditioning(p, free_at(level, plan)), rtol=0, atol=1e-6)


def test_the_blend_is_exact_wherever_the_encoders_field_lies_on_one_side_of_the_free_sets_edge():
    """The blend's claim: the mask channel is exact everywhere, and a latent pixel is exact when every pixel its
    encoder sees (here its 3x3 blocks) is held or every one is free; only the edge between them differs."""
    p, sampler, _, plan, _ = run(gradient(), encoder=WIDE)
    assert p.encodes == 1
    edge_seen = False
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        free = free_at(level, plan)
        exact = expected_conditioning(p, free)
        assert torch.equal(cond[:, :1], exact[:, :1])
        f = free.float()
        all_free = -F.max_pool2d(-F.pad(f, (1, 1, 1, 1), mode="replicate"), 3, stride=1) > 0.5
        all_held = F.max_pool2d(F.pad(f, (1, 1, 1, 1), mode="replicate"), 3, stride=1) < 0.5
        one_side = (all_free | all_held).expand_as(cond[:, 1:])
        torch.testing.assert_close(cond[:, 1:][one_side], exact[:, 1:][one_side], rtol=0, atol=1e-6)
        edge_seen |= not torch.allclose(cond[:, 1:][~one_side], exact[:, 1:][~one_side], atol=1e-3)
    assert edge_seen, "this encoder sees past its block, so some edge pixel must differ (else the test proves nothing)"


def test_a_constant_map_keeps_the_hosts_conditioning_and_is_img2img_bit_for_bit():
    p, sampler, out, _, noise = run(np.full((H, W), 255))
    assert all(c is p.image_conditioning for c in sampler.model.image_conds)
    assert p.encodes == 1 and p.extra_generation_params[INPAINT_CONDITIONINGS] == 1
    plain = Sampler()
    plain_p = Img2ImgP(plain, block_image(), None, DiffDiffArgs())
    plain_p.init()
    expected = plain.sample_img2img(
        plain_p, plain_p.init_latent, noise, None, None, image_conditioning=plain_p.image_conditioning
    )
    assert torch.equal(out, expected)


def test_inside_an_inpaint_mask_only_the_masks_free_pixels_are_repainted_and_the_rest_is_shown():
    mask = np.zeros((H, W), np.uint8)
    mask[:, 19:] = 255  # not on the 8-pixel grid: the latent block at x = 16..23 is partly inside
    p, sampler, _, plan, _ = run(gradient(), mask=Image.fromarray(mask, "L"))
    region = p.nmask[:1][None] > 0.5
    assert region[..., 2].all()  # that block is inside the latent mask, but only its pixels 19..23 may be blanked
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        free = free_at(level, plan)
        assert not (free & ~region).any()  # the map acts inside the mask
        # the mask channel samples the image mask at each block's corner, as the host's own does
        assert torch.equal(cond[:, :1] > 0.5, free & (p.image_conditioning[:, :1] > 0.5))
        torch.testing.assert_close(cond, expected_conditioning(p, free), rtol=0, atol=1e-6)


def test_the_image_cond_may_come_positionally():
    p, sampler, _, plan, _ = run(gradient(), positional=True)
    assert not all(c is p.image_conditioning for c in sampler.model.image_conds)
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        assert torch.equal(cond[:, :1] > 0.5, free_at(level, plan))


def test_switched_off_the_model_gets_the_hosts_conditioning_at_every_call():
    p, sampler, _, _, _ = run(gradient(), step_conditioning=False)
    assert all(c is p.image_conditioning for c in sampler.model.image_conds)
    assert p.encodes == 1 and INPAINT_CONDITIONINGS not in p.extra_generation_params


def test_per_step_conditioning_changes_what_the_free_pixels_become():
    _, _, per_step, plan, _ = run(gradient())
    _, _, static, _, _ = run(gradient(), step_conditioning=False)
    keep = torch.from_numpy(plan.latent_map == 0).expand_as(per_step[0])
    assert torch.equal(per_step[0][keep], static[0][keep])  # held pixels: the original either way
    assert not torch.allclose(per_step[0][~keep], static[0][~keep])


def test_other_models_are_untouched():
    sampler = Sampler()
    p = Img2ImgP(sampler, block_image(), None, DiffDiffArgs(enabled=True, map=png(gradient())), inpaint=False)
    with ConditioningRecorder(p) as recorder:
        p.init()
    assert recorder.inpaint_conditioning() is None
    # a processing object without the method (or a model the host conditions otherwise) records nothing
    bare = SimpleNamespace()
    with ConditioningRecorder(bare) as recorder:
        pass
    assert recorder.inpaint_conditioning() is None and not vars(bare)


def test_the_conditioning_shape_tells_inpainting_models_apart():
    latent = torch.zeros(2, 4, 6, 8)
    assert is_inpainting_conditioning(torch.zeros(2, 5, 6, 8), latent)
    assert not is_inpainting_conditioning(torch.zeros(2, 5, 1, 1), latent)  # the dummy of other models
    assert not is_inpainting_conditioning(torch.zeros(2, 4, 6, 8), latent)  # instruct-pix2pix: a bare latent
    assert not is_inpainting_conditioning(None, latent)


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "blended"])
def test_a_batch_of_maps_gets_one_mask_per_image(exact):
    host = torch.zeros(2, 5, 2, 2)
    host[:, :1] = 1.0
    seen = []

    def encode(mask):
        seen.append(mask)
        return torch.cat([F.interpolate(mask, size=(2, 2)).expand(2, -1, -1, -1), torch.zeros(2, 4, 2, 2)], 1)

    conditioning = InpaintConditioning(host, torch.ones(1, 1, 16, 16), encode, exact)
    held = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    assert conditioning.for_call(held) is host  # all free: the host's own
    held[0, 0, 0, 0] = True
    out = conditioning.for_call(held)
    assert out[0, 0, 0, 0] == 0 and out[1, 0, 0, 0] == 1 and out.shape == host.shape
    # exact: the batch's two masks in one encode; blended: the original (nothing blanked) once
    assert seen[-1].shape == ((2, 1, 16, 16) if exact else (1, 1, 16, 16)) and bool(seen[-1].any()) == exact
    assert conditioning.for_call(held.clone()) is out and conditioning.encodes == 1  # same set: no new encode


def test_a_strength_fan_conditions_each_call_on_its_columns_free_pixels():
    p, sampler, _, plan, _ = run(np.zeros((H, W)), mode="fan", fan_strengths=(0.3, 0.6, 1.0), fan_labels=False)
    masks = []
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        free = free_at(level, plan, strength=1.0)  # a fan's map holds the strengths themselves
        assert torch.equal(cond[:, :1] > 0.5, free), f"mask channel at sigma {level}"
        torch.testing.assert_close(cond, expected_conditioning(p, free), rtol=0, atol=1e-6)
        masks.append(free)
    assert len({m.numpy().tobytes() for m in masks}) == 3  # one free set per column start


def test_in_continuous_mode_a_partly_free_pixel_is_conditioned_as_free():
    """Oracle by call index (Euler: one call per step): a pixel of strength v sits at u = M (1 - v / v_max) on the
    run's M calls and is changed, so shown as free, from call floor(u) on."""
    p, sampler, _, plan, _ = run(gradient(), continuous=True)
    v = plan.latent_map * 0.8
    calls = sampler.model.image_conds
    u = len(calls) * (1.0 - v / v.max())
    partly = False
    for k, cond in enumerate(calls):
        free = torch.from_numpy((np.floor(u) <= k) & (v > 0))[None, None]
        assert torch.equal(cond[:, :1] > 0.5, free), f"mask channel at call {k}"
        torch.testing.assert_close(cond, expected_conditioning(p, free), rtol=0, atol=1e-6)
        partly |= bool(((np.floor(u) == k) & (u % 1 > 0)).any())
    assert partly, "the gradient must put pixels between two calls"


class StepClock:
    """A clock that moves only when the encoder runs (one second an encode), so the conditioning's own timing is
    read without timing anything real: its seconds must equal the encodes it made itself."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def encoder(self, image: torch.Tensor) -> torch.Tensor:
        self.now += 1.0
        return ENCODER(image)


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "blended"])
@pytest.mark.parametrize("profile", ["1", "", "0"])
def test_profiling_reports_the_conditionings_own_time_and_nothing_else(monkeypatch, exact, profile):
    """What bench_conditioning.py divides a run by: the time of the extension's own encodes, not the host's single
    encode in p.init (the clock moves 1 s there too) nor the model calls. Off (unset or 0), no key is written."""
    clock = StepClock()
    monkeypatch.setattr(conditioning_module, "time", clock)
    monkeypatch.setenv(PROFILE_VARIABLE, profile)
    p, _, _, _, _ = run(gradient(), encoder=clock.encoder, exact_conditioning=exact)
    own = p.encodes - 1  # all but the host's own in init
    assert own == (p.extra_generation_params[INPAINT_CONDITIONINGS] if exact else 0)
    assert clock.now == p.encodes + 1  # init's encode of the init latent moved the clock too
    if profile == "1":
        assert p.extra_generation_params[CONDITIONING_SECONDS] == own
    else:
        assert CONDITIONING_SECONDS not in p.extra_generation_params


def test_on_an_asynchronous_device_each_calls_work_is_timed_between_two_waits():
    """The model's queued work before a call is waited for before the clock starts, the call's own after."""
    events = []
    host = torch.ones(1, 5, 2, 2)

    def encode(mask):
        events.append("encode")
        return torch.zeros(1, 5, 2, 2)

    conditioning = InpaintConditioning(host, torch.ones(1, 1, 16, 16), encode, synchronize=lambda: events.append("s"))
    held = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    held[..., 0, 0] = True
    conditioning.for_call(held)
    conditioning.for_call(held)
    assert events == ["s", "encode", "s", "s", "s"]
    assert device_synchronize(torch.device("cpu")) is None


INPAINT_MASK = np.zeros((H, W), np.uint8)
INPAINT_MASK[:, 16:] = 255


@pytest.mark.parametrize(
    "host, encodes",
    [
        ({}, 1),
        ({"inpainting_fill": 2}, 2),
        ({"inpainting_fill": 3}, 2),
        ({"extra_generation_params": {"VAE Encoder": "TAESD"}}, 2),
        ({"resize_mode": 3}, 2),
    ],
    ids=["original", "latent noise", "latent nothing", "approximate encoder", "latent upscale"],
)
def test_the_blend_takes_the_original_from_the_init_latent_only_where_the_host_left_it_the_images_encode(host, encodes):
    """Held pixels are shown the image itself, never the latent noise, zeros or approximate encode the host put into
    its init latent: then the blend encodes the original once; else it encodes nothing."""
    p, sampler, _, plan, _ = run(gradient(), mask=Image.fromarray(INPAINT_MASK, "L"), host=host)
    assert p.encodes == encodes
    for level, cond in zip(sampler.model.levels, sampler.model.image_conds, strict=True):
        torch.testing.assert_close(cond, expected_conditioning(p, free_at(level, plan)), rtol=0, atol=1e-6)


def test_an_init_latent_that_fits_is_the_original_and_one_that_does_not_is_encoded_instead():
    """A batch of 2 whose host handed over a latent of the batch (used, no encode) or of one image (not used: the
    original is encoded once, so every image of the batch gets its own)."""
    host = torch.zeros(2, 5, 2, 2)
    host[:, :1] = 1.0

    def encode(mask):
        return torch.cat([torch.zeros(2, 1, 2, 2), torch.full((2, 4, 2, 2), 7.0)], dim=1)  # nothing blanked

    held = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    held[..., 0, 0] = True
    for latent, encodes, value in ((torch.full((2, 4, 2, 2), 3.0), 0, 3.0), (torch.full((1, 4, 2, 2), 3.0), 1, 7.0)):
        conditioning = InpaintConditioning(host, torch.ones(1, 1, 16, 16), encode, original_latent=latent)
        out = conditioning.for_call(held)
        assert conditioning.encodes == encodes and bool((out[:, 1:, 0, 0] == value).all())
        assert bool((out[:, 0, 0, 0] == 0).all()) and bool((out[:, :, 1, 1] == host[:, :, 1, 1]).all())
