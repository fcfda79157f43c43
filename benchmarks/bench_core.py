"""Benchmarks of lib_diffdiff's own cost, printed as ratios measured side by side in one run.

1. Injection per model call (before_model + after_model, with held pixels present) against one call of a
   UNet-sized conv stack on the same latent (batch 2, as with CFG), for SD 512 (64x64) and SD 1024 (128x128)
   latents. Target: <= 1 %.
2. Map preparation for a 4096x4096 map: decoded picture -> float map -> latent map -> schedule -> injector.
   Target: <= 100 ms.
3. Skipping: model calls of a differential run against plain img2img, for maps whose largest value is m.
4. The run preview (what POST /diffdiff/v1/preview computes) for a 1024x1024 map sent as a PNG data URL, on a
   20-step Euler run: plain, with every shaping transform, and inside an inpaint mask with "Only masked".
   Target: <= 200 ms (the preview updates while the user edits).

Usage: python benchmarks/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib_diffdiff import (  # noqa: E402
    DifferentialInjector,
    SigmaSpace,
    img2img_t_enc,
    kdiffusion_start_levels,
    load_change_map,
    pixel_strengths,
    plan_schedule,
    resize_to,
    to_latent,
)
from lib_diffdiff.core.noise_schedules import karras_sigmas  # noqa: E402


class UNetSizedStack(torch.nn.Module):
    """Convolutions with SD1.5 UNet widths (320/640/1280/1280 at full, 1/2, 1/4, 1/8 resolution), two per level
    on the way down and up: the same order of work per call as the real UNet, without attention."""

    def __init__(self):
        super().__init__()
        widths = [320, 640, 1280, 1280]
        self.conv_in = torch.nn.Conv2d(4, 320, 3, padding=1)

        def block(c_in: int, c_out: int) -> torch.nn.Module:
            return torch.nn.Sequential(
                torch.nn.Conv2d(c_in, c_out, 3, padding=1),
                torch.nn.SiLU(),
                torch.nn.Conv2d(c_out, c_out, 3, padding=1),
                torch.nn.SiLU(),
            )

        ins = [320, *widths[:-1]]
        self.down = torch.nn.ModuleList(block(c_in, w) for c_in, w in zip(ins, widths))
        outs = list(reversed(widths))
        self.up = torch.nn.ModuleList(block(c_in, w) for c_in, w in zip([widths[-1], *outs[:-1]], outs))
        self.conv_out = torch.nn.Conv2d(320, 4, 3, padding=1)

    @torch.no_grad()
    def forward(self, x):
        h = self.conv_in(x)
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else torch.nn.functional.avg_pool2d(h, 2))
        for i, block in enumerate(self.up):
            h = block(h if i == 0 else torch.nn.functional.interpolate(h, scale_factor=2.0))
        return self.conv_out(h)


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` runs after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def bench_injection(side: int, model_repeat: int) -> tuple[float, float]:
    torch.manual_seed(0)
    steps = 20
    sigmas = karras_sigmas(steps).float()
    x0, noise = torch.randn(1, 4, side, side), torch.randn(1, 4, side, side)
    gradient = np.tile(np.linspace(0, 1, side), (side, 1))
    schedule = plan_schedule(pixel_strengths(gradient, 1.0), kdiffusion_start_levels(sigmas, steps), steps)
    sigma = sigmas[steps // 2].reshape(1)
    x = x0 + noise * sigma
    unet = UNetSizedStack().eval()

    def model_call():
        unet(torch.cat([x, x]))  # CFG: cond and uncond in one batch

    def injection():
        injector = DifferentialInjector(x0, noise, schedule, SigmaSpace())
        for _ in range(20):  # one sampling run's worth of calls, the injector made once as in a generation
            x_in = injector.before_model(x, sigma)
            injector.after_model(x_in, x, sigma)

    per_call = timed(injection, 25) / 20
    return per_call, timed(model_call, model_repeat)


def bench_map_preparation() -> dict[str, float]:
    rng = np.random.default_rng(0)
    big = Image.fromarray((rng.random((4096, 4096)) * 255).astype(np.uint8), "L")
    x0, noise = torch.zeros(1, 4, 512, 512), torch.zeros(1, 4, 512, 512)
    levels = kdiffusion_start_levels(karras_sigmas(30), 30)
    stages = {}

    def prepare():
        t0 = time.perf_counter()
        m = load_change_map(big)
        t1 = time.perf_counter()
        m = resize_to(m, 4096, 4096)
        c = to_latent(m, 512, 512)
        t2 = time.perf_counter()
        schedule = plan_schedule(pixel_strengths(c, 0.8), levels, 30)
        DifferentialInjector(x0, noise, schedule, SigmaSpace()).held_mask()
        t3 = time.perf_counter()
        stages.update(load=t1 - t0, latent=t2 - t1, schedule=t3 - t2)

    total = timed(prepare, 5)
    return {"total": total, **stages}


def euler_calls(
    x0: torch.Tensor,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    strength: float,
    steps: int,
    injector: DifferentialInjector | None,
) -> int:
    """Run img2img with Euler (a stand-in denoiser) the WebUI's way and count the model calls."""
    calls = 0
    tail = sigmas[steps - img2img_t_enc(strength, steps) - 1 :]
    x = x0 + noise * tail[0]
    for i in range(len(tail) - 1):
        x_in = x if injector is None else injector.before_model(x, tail[i])
        denoised = x_in * 0.5
        calls += 1
        if injector is not None:
            denoised = injector.after_model(denoised, x, tail[i])
        x = x + (x - denoised) / tail[i] * (tail[i + 1] - tail[i])
    return calls


def skipping_calls(steps: int = 20) -> list[tuple[float, int, int]]:
    sigmas = karras_sigmas(steps).float()
    x0, noise = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)
    full = euler_calls(x0, noise, sigmas, 1.0, steps, None)
    rows = []
    for top in (1.0, 0.8, 0.6, 0.4, 0.2):
        m = np.tile(np.linspace(0, top, 16), (16, 1))
        schedule = plan_schedule(pixel_strengths(m, 1.0), kdiffusion_start_levels(sigmas, steps), steps)
        injector = DifferentialInjector(x0, noise, schedule, SigmaSpace())
        rows.append((top, euler_calls(x0, noise, sigmas, schedule.effective_strength, steps, injector), full))
    return rows


class _PreviewSampler:
    """A host's k-diffusion sampler, as much as the preview uses: its schedule and its (Euler) loop."""

    def __init__(self):
        self.model_wrap_cfg = None

    def get_sigmas(self, p, steps):
        return karras_sigmas(steps).float()

    @staticmethod
    def func(model, x, sigmas, extra_args=None, callback=None, disable=None):
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * x.new_ones(x.shape[0]))
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x


class _PreviewHost:
    sd_model = None

    def create_sampler(self, name):
        return _PreviewSampler()

    def setup_img2img_steps(self, p, steps):
        return p.steps, img2img_t_enc(p.denoising_strength, p.steps)

    def crop_region(self, mask, padding, width, height):
        x1, y1, x2, y2 = mask.getbbox()
        return max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, mask.width), min(y2 + padding, mask.height)


def bench_preview() -> dict[str, float]:
    import base64
    import io

    from lib_diffdiff.webui.foresee import foresee

    def data_url(a: np.ndarray) -> str:
        buf = io.BytesIO()
        Image.fromarray(a.astype(np.uint8), "L").save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    side = 1024
    y, x = np.mgrid[0:side, 0:side]
    radial = np.clip(255 - np.hypot(x - 600, y - 400) / 2, 0, 255)
    noise = np.random.default_rng(0).integers(0, 30, (side, side))
    change_map = data_url(np.clip(radial + noise, 0, 255))
    mask = np.zeros((side, side))
    mask[300:700, 200:800] = 255
    base = {
        "init_width": side,
        "init_height": side,
        "width": side,
        "height": side,
        "steps": 20,
        "denoising_strength": 0.8,
        "sampler_name": "Euler",
    }
    shaping = {
        "equalize": True,
        "black_point": 0.1,
        "white_point": 0.9,
        "gamma": 1.5,
        "blur": 8.0,
        "quantize": 6,
        "range_low": 0.1,
        "range_high": 0.9,
    }
    cases = {
        "map": {**base, "settings": {"map": change_map}},
        "map + all shaping": {**base, "settings": {"map": change_map, **shaping}},
        "map in a mask, only masked": {
            **base,
            "settings": {"map": change_map},
            "mask": data_url(mask),
            "only_masked": True,
            "padding": 32,
            "mask_blur": 4,
        },
    }
    scene = Image.open(Path(__file__).resolve().parents[1] / "docs" / "sources-scene.png").convert("RGB")
    buf = io.BytesIO()
    scene.resize((side, side), Image.BICUBIC).save(buf, format="PNG")
    image = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    for source, options in (
        ("luminance", {}),
        ("saturation", {}),
        ("colour", {"source_colour": "#4682d2", "source_tolerance": 0.3}),
        ("edges", {"source_reach": 24}),
        ("point", {"source_point": [0.8, 0.2], "source_reach": 300}),
    ):
        cases[f"source {source} (the 1024x1024 init image in)"] = {
            **base,
            "settings": {"source": source, **options},
            "init_image": image,
        }
    host = _PreviewHost()
    return {name: timed(lambda body=body: foresee(body, host), 5) for name, body in cases.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64x64 latent only, fewer repeats")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("\n1. injection per model call vs one UNet-sized model call (batch 2)")
    for side in (64,) if args.quick else (64, 128):
        inj, model = bench_injection(side, 2 if args.quick or side == 128 else 3)
        print(
            f"   latent {side}x{side}: injection {inj * 1e3:.3f} ms, model {model * 1e3:.0f} ms, "
            f"ratio {inj / model * 100:.3f} % (target <= 1 %)"
        )
    print("\n2. map preparation, 4096x4096 map -> 512x512 latent schedule")
    prep = bench_map_preparation()
    print(
        f"   total {prep['total'] * 1e3:.1f} ms (target <= 100 ms): read {prep['load'] * 1e3:.1f} ms, "
        f"to latent {prep['latent'] * 1e3:.1f} ms, schedule+injector {prep['schedule'] * 1e3:.1f} ms"
    )
    print("\n3. skipping, 20 steps, Euler: model calls for a gradient map whose largest value is m")
    for top, diff, full in skipping_calls():
        print(f"   m = {top:.1f}: {diff} calls vs {full} at full strength, ratio {diff / full:.2f}")
    print("\n4. run preview of a 1024x1024 map (PNG data URL in, JSON out), 20 steps, Euler")
    for name, seconds in bench_preview().items():
        print(f"   {name}: {seconds * 1e3:.0f} ms, {seconds / 0.2:.2f} of the 200 ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
