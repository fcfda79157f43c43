"""Smooth strength at few steps, on a live WebUI: the step rule against the continuous mode, side by side.

A left-to-right linear ramp map (0 to 1) on a 256x64 image of 8x8 blocks, denoising strength 1, at 4, 6 and 8 steps,
a batch of 3 seeds, with a transparent VAE (a latent pixel decodes to its own 8x8 block, so the change of a latent
column is the mean change of its 8 pixel columns): by default the one built with gain 16, which keeps a random
model's output from clipping (tests/tools/make_transparent_vae.py; --vae picks another, e.g. the unit-gain one).
For each mode it prints the overall slope of change against map value, the slope within each band of columns that the
step rule starts at the same call, the mean band slope over the overall slope, and Spearman's rank correlation
(lib_diffdiff.tools.smoothness). The bar for the continuous mode: every band slope positive, mean band slope >= half
the overall slope, Spearman >= 0.99. At 30 steps it prints how closely the two modes agree: the mean and largest
difference of the column changes, relative to the mean change.

With --save DIR it writes smooth-strength.png there: the map, the change of each mode at the fewest steps as grey
pictures, and the change per column against the map value (the README's figure).

Usage: DIFFDIFF_WEBUI_URL=http://127.0.0.1:7860 python benchmarks/bench_smooth.py [--sampler Euler]
       [--scheduler Automatic] [--cfg 5] [--steps 4 6 8] [--save docs]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib_diffdiff.tools.drawing import font  # noqa: E402
from lib_diffdiff.tools.smoothness import (  # noqa: E402
    column_change,
    column_values,
    ramp_fit,
    ramp_image_map,
    step_bands,
)
from tests.integration.webui import WebUI, b64, block_image, decode, payload, webui_url  # noqa: E402

W, H = 256, 64
MODES = {False: "step rule", True: "continuous"}


def run(webui: WebUI, vae, image, ramp: np.ndarray, continuous: bool, steps: int, args) -> list[np.ndarray]:
    body = payload(
        image,
        vae,
        {"enabled": True, "map": b64(Image.fromarray(ramp, "L")), "preserve": False, "continuous": continuous},
        denoising_strength=1.0,
        steps=steps,
        batch_size=args.seeds,
        sampler_name=args.sampler,
        scheduler=args.scheduler,
        cfg_scale=args.cfg,
    )
    status, out = webui.request("POST", "/sdapi/v1/img2img", body)
    if status != 200:
        raise SystemExit(f"request failed: HTTP {status} {out}")
    info = json.loads(out["info"])["infotexts"][0]
    if ("Differential diffusion continuous: True" in info) != continuous:
        raise SystemExit("the infotext does not report the mode asked for: is the extension up to date?")
    return [decode(i) for i in out["images"][: args.seeds]]


def figure(ramp, source, outputs, changes, values, steps: int, path: Path, zoom: int = 2) -> None:
    """Map, the change of each mode (grey, brighter = more change), and change against value per column (on a
    square-root scale, so the small changes of the dark end stay visible)."""
    label_h, gap, chart_h = 18, 8, 220
    width, height = W * zoom, H * zoom
    rows = [("change map: a ramp from 0 (left) to 1 (right)", np.repeat(ramp[:, :, None], 3, axis=2))]
    scale = max(float(np.abs(o[0] - source).mean(axis=2).max()) for o in outputs.values())
    for continuous, outs in outputs.items():
        diff = np.abs(outs[0] - source).mean(axis=2) / max(scale, 1e-9) * 255.0
        label = f"change, {MODES[continuous]}, {steps} steps (brighter = more)"
        rows.append((label, np.repeat(diff[:, :, None], 3, axis=2)))
    sheet_h = len(rows) * (height + label_h + gap) + chart_h + 2 * label_h + 2 * gap
    sheet = Image.new("RGB", (width + 2 * gap, sheet_h), "white")
    draw = ImageDraw.Draw(sheet)
    typeface = font(13)
    y = gap
    for text, pixels in rows:
        draw.text((gap, y), text, fill=(0, 0, 0), font=typeface)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").resize((width, height), 0)
        sheet.paste(picture, (gap, y + label_h))
        y += height + label_h + gap
    draw.text((gap, y), "mean change per latent column against its map value", fill=(0, 0, 0), font=typeface)
    note = "(square-root scale; random weights, transparent VAE)"
    draw.text((gap, y + label_h), note, fill=(90, 90, 90), font=typeface)
    top, bottom = y + 2 * label_h + 4, y + 2 * label_h + chart_h - 4
    draw.rectangle((gap, top, gap + width - 1, bottom), outline=(160, 160, 160))
    peak = max(float(c.max()) for c in changes.values()) ** 0.5
    colours = {False: (200, 60, 40), True: (40, 90, 200)}
    for continuous, change in changes.items():
        points = [
            (gap + v * (width - 1), bottom - max(c, 0.0) ** 0.5 / peak * (bottom - top - 4))
            for v, c in zip(values, change)
        ]
        draw.line(points, fill=colours[continuous], width=2)
        draw.text((gap + 8, top + 6 + 16 * continuous), MODES[continuous], fill=colours[continuous], font=typeface)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sampler", default="Euler")
    parser.add_argument("--scheduler", default="Automatic")
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--long", type=int, default=30, help="step count at which the modes are compared (0: none)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--vae", default=None, help="VAE name (default: the gain-16 transparent one)")
    parser.add_argument("--save", type=Path, default=None, help="folder for smooth-strength.png")
    args = parser.parse_args()
    url = webui_url()
    if not url:
        raise SystemExit("set DIFFDIFF_WEBUI_URL to a running WebUI with --api")
    webui = WebUI(url)
    name = args.vae or webui.gain_vae_name()
    if name is None:
        raise SystemExit("no gain-16 transparent VAE on this WebUI (tests/tools/make_transparent_vae.py --gain 16)")
    vae = webui.vae_settings(name)
    image = block_image(W, H, seed=3)
    source = np.asarray(image).astype(np.int16)
    ramp = np.round(ramp_image_map(W, H) * 255.0).astype(np.uint8)
    values = column_values(ramp / 255.0)
    print(f"{args.sampler}, schedule {args.scheduler}, CFG {args.cfg:g}, {W}x{H}, {args.seeds} seeds, VAE {name}")
    verdicts = []
    for steps in [*args.steps, *([args.long] if args.long > 0 else [])]:
        bands = step_bands(values, 1.0, steps)
        changes, outputs = {}, {}
        for continuous in (False, True):
            outs = outputs[continuous] = run(webui, vae, image, ramp, continuous, steps, args)
            changes[continuous] = np.mean([column_change(source, o) for o in outs], axis=0)
            fit = ramp_fit(values, changes[continuous], bands)
            ok = fit.smooth()
            if continuous and steps != args.long:
                verdicts.append(ok)
            print(f"{steps:3d} steps  {MODES[continuous]:10s}  {'meets' if ok else 'misses'} the bar  {fit.line()}")
        if steps == args.long:
            diff = np.abs(changes[True] - changes[False])
            mean = changes[False].mean()
            print(
                f"{steps:3d} steps  agreement: mean |difference| {diff.mean():.3g} = {diff.mean() / mean:.1%} of the "
                f"mean change; largest column {diff.max():.3g} = {diff.max() / mean:.1%}"
            )
        if args.save is not None and steps == min(args.steps):
            figure(ramp, source, outputs, changes, values, steps, args.save / "smooth-strength.png")
    print("continuous mode meets the bar at every step count" if all(verdicts) else "continuous mode MISSES the bar")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
