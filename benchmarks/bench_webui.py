"""Speed on a live WebUI, measured side by side in one run (requests interleaved, so drift hits both alike).

1. Overhead: img2img at strength s without the extension, against the extension with an all-white map (every pixel
   free from the first step: the same sampling work), at the same strength. Target: within 1 %.
2. Skipping: the extension with a map whose largest value is m, against the same img2img at full strength s.
   Target: about m of the time (of the sampling part; the VAE and request overhead stay).
3. With --families (flow families, e.g. ``flux-dev=random-flux-dev,flux-schnell=random-flux-schnell``, the names and
   request settings of tests/integration/test_flow_families.py): 1 and 2 for each family's checkpoint in turn, with
   its schedule type, CFG and own VAE, plus the steps each run sampled (the host's progress state after the
   request: every host sets ``sampling_steps`` to t_enc + 1 in sample_img2img), because a tiny test model's time
   is mostly the VAE's and says little about skipping.

Usage: DIFFDIFF_WEBUI_URL=http://127.0.0.1:7860 python benchmarks/bench_webui.py [--size 128] [--steps 16] [--repeat 3]
       [--families flux-dev=random-flux-dev,...]
The per-step conditioning of inpainting checkpoints has its own benchmark: benchmarks/bench_conditioning.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.webui import WebUI, b64, block_image, payload, webui_url  # noqa: E402


def timed(webui: WebUI, body: dict) -> float:
    t0 = time.perf_counter()
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    if status != 200:
        raise SystemExit(f"request failed: {status} {out}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--vae", default=None, help="VAE name (default: the transparent one, else the model's)")
    parser.add_argument("--families", default=None, help="flow families to measure, family=checkpoint,...")
    args = parser.parse_args()
    url = webui_url()
    if not url:
        raise SystemExit("set DIFFDIFF_WEBUI_URL to a running WebUI with --api")
    webui = WebUI(url)
    if args.families:
        return bench_families(webui, args)
    vae = args.vae or webui.vae_name() or "None"
    image = block_image(args.size, args.size)
    white = b64(Image.new("L", image.size, 255))
    half = np.zeros((args.size, args.size), np.uint8)
    half[:, : args.size // 2] = 128  # largest value 128/255 ~ 0.5
    half_map = b64(Image.fromarray(half, "L"))
    base = dict(steps=args.steps, denoising_strength=1.0)
    variants = {
        "plain": payload(image, vae, **base),
        "white map": payload(image, vae, {"enabled": True, "map": white}, **base),
        "map max 0.5": payload(image, vae, {"enabled": True, "map": half_map}, **base),
    }
    timed(webui, variants["plain"])  # warm-up
    times = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, body in variants.items():
            times[name].append(timed(webui, body))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.size}x{args.size}, {args.steps} steps, strength 1, {args.repeat} interleaved repeats (median s)")
    for name, t in times.items():
        print(f"   {name:12s} {median[name]:7.2f} s   ({', '.join(f'{x:.2f}' for x in t)})")
    print(f"overhead, white map / plain: {median['white map'] / median['plain']:.4f} (target <= 1.01)")
    print(f"skipping, max 0.5 / plain:   {median['map max 0.5'] / median['plain']:.3f} (sampling ~0.5 of the steps)")
    return 0


def sampled_steps(webui: WebUI) -> int:
    """The steps the last request sampled: the hosts set ``state.sampling_steps`` to t_enc + 1 for img2img and keep
    it after the job."""
    return int(webui.get("/sdapi/v1/progress")["state"]["sampling_steps"]) - 1


def bench_families(webui: WebUI, args: argparse.Namespace) -> int:
    """Overhead and skipping for each flow family, side by side (interleaved) within each family."""
    from tests.integration import test_flow_families as flow
    from tests.integration.test_model_families import checkpoint_title, current_checkpoint, load_checkpoint

    pairs = dict(p.split("=", 1) for p in args.families.split(","))
    before = current_checkpoint(webui)
    image = block_image(args.size, args.size)
    white = b64(Image.new("L", image.size, 255))
    half = np.zeros((args.size, args.size), np.uint8)
    half[:, : args.size // 2] = 128  # largest value 128/255 ~ 0.5
    print(f"{args.size}x{args.size}, {args.steps} steps, strength 1, {args.repeat} interleaved repeats (median s)")
    for name, wanted in pairs.items():
        family = flow.FAMILIES[name]
        load_checkpoint(webui, checkpoint_title(webui, wanted))
        run = flow.Run(name, family, webui, flow.baked_vae(webui), image)
        base = dict(steps=args.steps, denoising_strength=1.0)
        variants = {
            "plain": run.request(**base),
            "white map": run.request({"enabled": True, "map": white}, **base),
            "map max 0.5": run.request({"enabled": True, "map": b64(Image.fromarray(half, "L"))}, **base),
        }
        timed(webui, variants["plain"])  # warm-up (text encoder, caches)
        times = {v: [] for v in variants}
        steps = {}
        for _ in range(args.repeat):
            for v, body in variants.items():
                times[v].append(timed(webui, body))
                steps[v] = sampled_steps(webui)
        median = {v: statistics.median(t) for v, t in times.items()}
        print(f"{name} ({family.scheduler}, CFG {family.cfg:g}):")
        for v, t in times.items():
            print(f"   {v:12s} {median[v]:7.3f} s   {steps[v]:3d} steps sampled   ({', '.join(f'{x:.3f}' for x in t)})")
        paired = sorted(w / p for w, p in zip(times["white map"], times["plain"]))
        print(
            f"   overhead, white map / plain: {median['white map'] / median['plain']:.4f} of the medians, "
            f"{statistics.median(paired):.4f} the median of the {len(paired)} side-by-side pairs "
            f"(range {paired[0]:.4f}-{paired[-1]:.4f}; target <= 1.01)"
        )
        print(
            f"   skipping, max 0.5 / plain: {steps['map max 0.5'] / steps['plain']:.3f} of the steps, "
            f"{median['map max 0.5'] / median['plain']:.3f} of the time"
        )
    load_checkpoint(webui, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
