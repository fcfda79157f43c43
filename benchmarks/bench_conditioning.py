"""The cost of per-step conditioning on inpainting checkpoints, measured side by side on a live WebUI.

For each checkpoint, step count and map (a left-to-right gradient, a radial map, a 4-level quantised gradient), the
same request (strength 1, so every step is sampled) runs as:

- ``host``: per-step conditioning off (``step_conditioning: false``): the WebUI's single conditioning, the run an
  inpainting checkpoint costs without the extension's conditioning;
- ``blended``: the default, the host's conditioning and the image's latent blended per latent pixel;
- ``exact`` (for the maps named by --exact): ``exact_conditioning: true``, one VAE encode per distinct free set.

Requests are interleaved, in reverse order every other repeat (host, blended, exact, exact, blended, host, ...), so
drift hits all alike; the ratios to ``host`` use the medians. The number of distinct conditionings comes from the
infotext, and the output of ``blended`` is compared with ``exact``'s (same seed): mean and largest difference in
8-bit pixel values. The conditioning latent's own error needs the VAE's tensors:
``benchmarks/bench_conditioning_error.py``.

Two runs compared cannot show a cost of a few per cent on a machine whose requests move by ±5 %: a WebUI started with
``DIFFDIFF_PROFILE=1`` also writes the seconds the per-step conditioning took inside each run into its infotext, and
the ``in-run`` ratio divides the run by the run without them, ``t / (t - own)``: the same run, with the host's
conditioning instead (the model calls, the host's own encode and everything else are the same either way).

Usage (load nothing first; each checkpoint is loaded in turn):
    DIFFDIFF_WEBUI_URL=http://127.0.0.1:7860 python benchmarks/bench_conditioning.py \\
        --checkpoints random-sd15-inpaint@256,random-sdxl-inpaint@128 [--steps 16,30] [--maps gradient,radial,levels]
        [--repeat 1] [--exact gradient] [--cfg 5] [--pid WEBUI_PID]
(start the WebUI with DIFFDIFF_PROFILE=1 for the in-run ratios)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib_diffdiff.webui.infotext import CONDITIONING_SECONDS, INPAINT_CONDITIONINGS  # noqa: E402
from tests.integration.test_model_families import checkpoint_title, current_checkpoint, load_checkpoint  # noqa: E402
from tests.integration.webui import WebUI, b64, block_image, decode, payload, webui_url  # noqa: E402


def maps(size: int) -> dict[str, np.ndarray]:
    """The three maps of the issue, 8-bit: a linear gradient frees pixels at every step, a radial map frees rings,
    a 4-level map frees four regions."""
    ramp = np.tile(np.linspace(0, 255, size), (size, 1))
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    radial = np.clip(1 - np.hypot(xx, yy) / 0.7071, 0, 1) * 255
    levels = np.round(ramp / 255 * 3) / 3 * 255
    return {"gradient": ramp, "radial": radial, "levels": levels}


def run(webui: WebUI, body: dict) -> tuple[float, np.ndarray, str]:
    t0 = time.perf_counter()
    status, out = webui.request("POST", "/sdapi/v1/img2img", body, timeout=3600)
    elapsed = time.perf_counter() - t0
    if status != 200:
        raise SystemExit(f"request failed: {status} {out}")
    return elapsed, decode(out["images"][0]), json.loads(out["info"])["infotexts"][0]


def cpu_seconds(pid: int | None) -> float:
    """The WebUI process's CPU time (user + system, all its threads; /proc/PID/stat), or 0 without a pid. On a shared
    machine it moves far less than the wall clock when something else computes: what the request itself cost."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def infotext_value(info: str, key: str) -> str | None:
    """The value of ``key`` in an infotext, or None where the run did not write it."""
    return info.split(f"{key}: ")[-1].split(",")[0] if f"{key}: " in info else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", required=True, help="name@size,... (a part of each checkpoint's title)")
    parser.add_argument("--steps", default="16,30")
    parser.add_argument("--maps", default="gradient,radial,levels")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--exact", default="", help="maps to time the exact conditioning on too (e.g. gradient)")
    parser.add_argument("--vae", default=None, help="VAE name (default: the checkpoint's own)")
    parser.add_argument(
        "--pid", type=int, default=None, help="the WebUI's process id (same machine): also time each request's CPU"
    )
    parser.add_argument(
        "--no-host",
        action="store_true",
        help="skip the host's runs: only the in-run ratios (the WebUI started with DIFFDIFF_PROFILE=1), half the time",
    )
    args = parser.parse_args()
    url = webui_url()
    if not url:
        raise SystemExit("set DIFFDIFF_WEBUI_URL to a running WebUI with --api")
    webui = WebUI(url)
    own = {"forge_additional_modules": []} if webui.is_forge() else "None"  # the checkpoint's own VAE
    vae = webui.vae_settings(args.vae) if args.vae else own
    before = current_checkpoint(webui)
    variants = {"host": {"step_conditioning": False}, "blended": {}, "exact": {"exact_conditioning": True}}
    print(
        f"CFG {args.cfg:g}, Euler, strength 1, {args.repeat} interleaved repeat(s); ratios of medians to 'host'; "
        "in-run: t / (t - the conditioning's own seconds in that run)"
    )
    worst: dict[str, float] = {}
    try:
        for spec in args.checkpoints.split(","):
            name, size = spec.split("@")
            load_checkpoint(webui, checkpoint_title(webui, name))
            image = block_image(int(size), int(size))
            warm = False
            for steps in (int(s) for s in args.steps.split(",")):
                for map_name in args.maps.split(","):
                    change_map = b64(Image.fromarray(maps(int(size))[map_name].astype(np.uint8), "L"))
                    bodies = {
                        v: payload(
                            image,
                            vae,
                            {"enabled": True, "map": change_map, **extra},
                            steps=steps,
                            denoising_strength=1.0,
                            cfg_scale=args.cfg,
                        )
                        for v, extra in variants.items()
                        if (v != "exact" or map_name in args.exact.split(",")) and (v != "host" or not args.no_host)
                    }
                    for body in bodies.values():  # A1111's SDXL previews would download a model
                        body["override_settings"]["live_previews_enable"] = False
                    if not warm:
                        run(webui, {**next(iter(bodies.values())), "steps": 2})  # warm-up, once per checkpoint
                        warm = True
                    times = {v: [] for v in bodies}
                    cpu = {v: [] for v in bodies}
                    in_runs = {v: [] for v in bodies}
                    own_s = {}
                    images, infos = {}, {}
                    for r in range(args.repeat):
                        order = list(bodies) if r % 2 == 0 else list(bodies)[::-1]  # ABBA: drift cancels
                        for v in order:
                            body = bodies[v]
                            c0 = cpu_seconds(args.pid)
                            t, images[v], infos[v] = run(webui, body)
                            times[v].append(t)
                            seconds = infotext_value(infos[v], CONDITIONING_SECONDS)
                            if seconds is not None:  # a WebUI run with DIFFDIFF_PROFILE
                                own_s[v] = float(seconds)
                                in_runs[v].append(t / (t - own_s[v]))
                            cpu[v].append(cpu_seconds(args.pid) - c0)
                    med = {v: statistics.median(t) for v, t in times.items()}
                    med_cpu = {v: statistics.median(c) for v, c in cpu.items()}
                    line = f"{name} {size}x{size}, {steps} steps, {map_name:8s}"
                    for v in bodies:
                        line += f" | {v} {med[v]:6.1f} s"
                        if v == "host":
                            line += f" (CPU {med_cpu[v]:6.1f} s)" if args.pid else ""
                            continue
                        if "host" in bodies:
                            line += f" = {med[v] / med['host']:.3f}x"
                            line += f" CPU {med_cpu[v] / med_cpu['host']:.3f}x" if args.pid else ""
                        line += f" ({infotext_value(infos[v], INPAINT_CONDITIONINGS) or '-'} cond.)"
                        if in_runs[v]:
                            in_run = statistics.median(in_runs[v])
                            worst[v] = max(worst.get(v, 0.0), in_run)
                            line += f" own {own_s[v]:.3f} s: in-run {in_run:.3f}x"
                    if "exact" in images:
                        diff = np.abs(images["blended"].astype(int) - images["exact"].astype(int))
                        line += f" | blended vs exact output: mean {diff.mean():.2f}, max {diff.max()}"
                    print(line, flush=True)
    finally:
        load_checkpoint(webui, before)
    if worst:
        print("largest in-run cost: " + ", ".join(f"{v} {r:.3f}x" for v, r in worst.items()))
    else:
        print(f"no in-run ratios: start the WebUI with DIFFDIFF_PROFILE=1 to have runs report {CONDITIONING_SECONDS!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
