"""Soak a live WebUI: a fixed number of mixed img2img requests (loopback only), each checked, with the WebUI's
resident memory measured after warm-up and at the end.

The mix (reproducible from --seed): change maps that keep one half (exact kept pixels on the transparent VAE, the
rest changed), strength fans "0, 1", soft inpaint, the extension off (disabled args or none: plain img2img, no
infotext), hostile requests (bombs, SVG, URL and path strings, wrong aspect, out-of-range numbers...: each must get
a 4xx naming the extension), groups of 2-3 requests sent at once from as many clients (each must keep its own map),
and requests interrupted or skipped from a second client at the first model call, the last one, the middle or
inside a batch, each followed by a fixed map request that must equal a fresh run of it bit for bit. Every sampler
the host lists (but DPM adaptive), random schedulers, 2-4 steps (5-6 on timestep samplers), 64-128 px, batch size
and count 1-4 (at most 4 images a request). A fixed plain request before and after the soak must come back
bit-identical.

Resident memory is read every 25 requests (a leak climbs with the count; an allocator's pools level off) and the
report names the malloc the WebUI runs on: its webui.sh preloads tcmalloc when the system has it (Debian:
libtcmalloc-minimal4); started without it, on glibc malloc, the resident size wanders by a GB with request sizes.

With --control the same mix goes out with the extension left out (hostile ones as plain requests), each needing
only its images: the host's own memory under the same load, to tell the host's growth from the extension's.

Usage: DIFFDIFF_WEBUI_URL=http://127.0.0.1:7860 python benchmarks/soak.py [--requests 500] [--time-limit 3600]
       [--seed 0] [--pid PID] [--report soak.json] [--control]
Exit status 0 when every check held and resident memory grew at most --max-growth MB (50).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import random
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.robustness import (  # noqa: E402
    SIZES,
    TIMESTEP_SAMPLERS,
    Maker,
    Request,
    allocator,
    images_of,
    listening_pid,
    map_probe,
    plain_probe,
    resident_mb,
    send_stopped,
    send_together,
)
from tests.integration.webui import SCRIPT, WebUI, decode, webui_url  # noqa: E402

KINDS = [("map", 34), ("fan", 8), ("soft inpaint", 8), ("off", 12), ("bad", 18), ("together", 6), ("stopped", 14)]
"""Each kind's share of the draws, in per cent (a "together" draw sends 2-3 requests)."""
POINTS = ["first", "last", "middle", "batch"]


def images_key(answer: dict) -> list[bytes]:
    """The pixels of every image of an answer (PNG bytes could differ in metadata alone)."""
    return [decode(text).tobytes() for text in answer.get("images") or []]


def difference(answer: dict, reference: dict) -> dict:
    """How two answers' images differ (a failure's notes): pixel values that differ and the largest difference."""
    got, want = answer.get("images") or [], reference.get("images") or []
    if len(got) != len(want):
        return {"images": len(got), "expected": len(want)}
    pairs = [(np.asarray(decode(a), dtype=np.int16), np.asarray(decode(b), dtype=np.int16)) for a, b in zip(got, want)]
    if any(a.shape != b.shape for a, b in pairs):
        return {"shapes": [a.shape for a, _ in pairs], "expected": [b.shape for _, b in pairs]}
    return {
        "values_differing": [int((a != b).sum()) for a, b in pairs],
        "largest_difference": max(int(np.abs(a - b).max()) for a, b in pairs),
    }


def without_extension(body: dict) -> dict:
    """The same request with the extension's args left out (the control soak)."""
    scripts = {k: v for k, v in body.get("alwayson_scripts", {}).items() if k != SCRIPT}
    return {**body, "alwayson_scripts": scripts}


class Control:
    """The soak's mix of requests (the same kinds in the same order) with the extension left out: the host's own
    memory under the same load, to tell growth of the host from growth caused by the extension. A request passes
    with its images; a hostile one is sent as a plain one."""

    def __init__(self, maker: Maker) -> None:
        self.maker = maker

    def __getattr__(self, name: str):
        if not name.endswith("_request"):
            return getattr(self.maker, name)
        make = getattr(self.maker, "off_request" if name == "bad_request" else name)

        def made(*args, **kwargs) -> Request:
            request = make(*args, **kwargs)
            body = without_extension(request.body)
            width, height, images = body["width"], body["height"], body["batch_size"] * body["n_iter"]

            def check(status: int, answer: dict) -> str:
                if status != 200:
                    return f"HTTP {status}: {str(answer)[:200]}"
                got = len(images_of(answer, width, height))
                return "" if got == images else f"{got} images, expected {images}"

            return Request(request.kind, body, check, request.notes)

        return made


def host_broken_samplers(webui: WebUI, vae: str, samplers: list[str]) -> dict[str, str]:
    """The samplers whose plain img2img, without the extension, fails or comes back blank on this host (Forge Neo's
    and reForge's RF samplers on SD1.5): what they return says nothing about the extension, so the soak leaves them
    out and reports them."""
    broken = {}
    for sampler in samplers:
        body = {**plain_probe(webui, vae), "sampler_name": sampler}
        body["steps"] = 5 if sampler in TIMESTEP_SAMPLERS else 3
        status, answer = webui.request("POST", "/sdapi/v1/img2img", body)
        if status != 200:
            broken[sampler] = f"HTTP {status}"
        elif any(decode(text).std() == 0 for text in answer.get("images") or []):
            broken[sampler] = "blank image"
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds; stop sending after it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pid", type=int, help="the WebUI process (default: the one listening on the URL's port)")
    parser.add_argument("--max-growth", type=float, default=50.0, help="MB of resident memory growth allowed")
    parser.add_argument("--verbose", action="store_true", help="print every request's time")
    parser.add_argument("--report", type=Path, help="write the figures and every failure as JSON")
    parser.add_argument(
        "--control", action="store_true", help="the same load with the extension left out: the host's own memory"
    )
    args = parser.parse_args()

    url = webui_url()
    if url is None:
        raise SystemExit("set DIFFDIFF_WEBUI_URL to the live WebUI (for example http://127.0.0.1:7860)")
    parsed = urllib.parse.urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the soak runs against a loopback WebUI only, not {parsed.hostname}")
    webui = WebUI(url)
    pid = args.pid or listening_pid(parsed.port or 80)
    if pid is None:
        raise SystemExit("could not find the WebUI process; pass --pid")
    vae = webui.vae_name()
    if vae is None:
        raise SystemExit("the soak needs the transparent VAE (tests/tools/make_transparent_vae.py) in the WebUI")
    listed = [s["name"] for s in webui.get("/sdapi/v1/samplers")]
    broken = host_broken_samplers(webui, vae, listed)
    if broken:
        print("left out, failing or blank in the host itself without the extension:", broken, flush=True)
    samplers = [s for s in listed if s not in broken]
    schedulers = [s["label"] for s in webui.get("/sdapi/v1/schedulers")]
    maker = Maker(webui, vae, samplers, schedulers, seed=args.seed)
    if args.control:
        maker = Control(maker)
    rng = random.Random(args.seed + 1)
    kinds, weights = zip(*KINDS, strict=True)

    started = time.monotonic()
    sent = 0
    counts: collections.Counter = collections.Counter()
    failures: list[dict] = []
    memory: dict[str, float] = {"start": resident_mb(pid)}
    series: list[tuple[int, float]] = []
    """(requests sent, resident MB) every 25 requests after warm-up: a leak climbs with the count, a pool levels."""

    def post(body: dict) -> tuple[int, dict]:
        nonlocal sent
        sent += 1
        t0 = time.monotonic()
        out = webui.request("POST", "/sdapi/v1/img2img", body)
        if args.verbose:
            shape = f"{body['width']}x{body['height']} {body['batch_size']}x{body['n_iter']} {body['steps']} steps"
            print(f"  #{sent} {time.monotonic() - t0:5.1f} s {body['sampler_name']} {shape}", flush=True)
        return out

    def record(kind: str, problem: str, notes: dict) -> None:
        counts[kind] += 1
        if problem:
            failures.append({"request": sent, "kind": kind, "problem": problem, **notes})
            print(f"  FAIL #{sent} {kind}: {problem} {notes}", flush=True)

    plain = plain_probe(webui, vae)
    status, before = post(plain)
    assert status == 200, before
    probe = map_probe(webui, vae)
    if args.control:
        probe = without_extension(probe)
    status, fresh = post(probe)
    assert status == 200, fresh

    # warm-up: every sampler once at the largest size and batch, so that the host's caches and the allocator's
    # pools reach the sizes the soak needs before the memory baseline is taken
    for sampler in maker.samplers:
        steps = 5 if sampler in TIMESTEP_SAMPLERS else 2
        request = maker.map_request(size=(128, 128), sampler_name=sampler, steps=steps, batch_size=4, n_iter=1)
        status, answer = post(request.body)
        record("warm-up", request.check(status, answer), request.notes)
    for request in (maker.soft_inpaint_request(), maker.fan_request(), maker.off_request()):
        status, answer = post(request.body)
        record("warm-up", request.check(status, answer), request.notes)
    phases = {"samplers": round(resident_mb(pid), 1)}
    # every image shape the soak sends, at the largest batch: the CPU kernels and buffers are cached per shape, and
    # a first soak on Forge climbed 100 MB over its first 300 requests as new shapes came, then stayed flat
    for width, height in itertools.product(SIZES, SIZES):
        request = maker.map_request(size=(width, height), sampler_name="Euler", steps=2, batch_size=4, n_iter=1)
        status, answer = post(request.body)
        record("warm-up", request.check(status, answer), request.notes)
    phases["shapes"] = round(resident_mb(pid), 1)
    # requests sent at once (served by several threads) and stopped runs, at the largest size and batch, several
    # times: the host's threads and their allocator caches reach their high-water here, not inside the soak (a
    # --control soak on Forge Neo rose 117 MB in one such group with the extension left out, and a soak whose
    # warm-up sent a single group stepped up by that much much later, in its own groups)
    for sides in (("left", "right", "top"), ("bottom", "left", "right"), ("top", "bottom", "left")):
        group = [maker.map_request(keep=side, size=(128, 128), batch_size=4) for side in sides]
        sent += len(group)
        for request, (status, answer) in zip(group, send_together(webui, group), strict=True):
            record("warm-up", request.check(status, answer), request.notes)
    for point, action in zip(POINTS, ["interrupt", "skip", "interrupt", "skip"], strict=True):
        request = maker.map_request(size=(128, 128), batch_size=2, n_iter=2, steps=4)
        sent += 1
        status, answer, _ = send_stopped(webui, request, point, action)
        record("warm-up", "" if status == 200 else f"HTTP {status}: {str(answer)[:200]}", request.notes)
    memory["warm"] = resident_mb(pid)
    phases["together and stopped"] = round(memory["warm"], 1)
    print("resident MB after the warm-up phases:", phases, flush=True)
    series.append((sent, round(memory["warm"], 1)))

    rises: collections.Counter = collections.Counter()
    """MB the resident size rose across each kind's draws (falls not netted): where a step up happened."""
    while sent < args.requests and time.monotonic() - started < args.time_limit:
        kind = rng.choices(kinds, weights)[0]
        resident_before = resident_mb(pid)
        if kind == "map":
            request = maker.map_request()
        elif kind == "fan":
            request = maker.fan_request()
        elif kind == "soft inpaint":
            request = maker.soft_inpaint_request()
        elif kind == "off":
            request = maker.off_request()
        elif kind == "bad":
            request = maker.bad_request()
        if kind in ("map", "fan", "soft inpaint", "off", "bad"):
            status, answer = post(request.body)
            record(kind, request.check(status, answer), request.notes)
        elif kind == "together":
            group = [maker.map_request(keep=side) for side in rng.sample(["left", "right", "top", "bottom"], 3)]
            group = group[: rng.choice([2, 3])]
            answers = send_together(webui, group)
            sent += len(group)
            for request, (status, answer) in zip(group, answers, strict=True):
                record("together", request.check(status, answer), request.notes)
        else:
            point, action = rng.choice(POINTS), rng.choice(["interrupt", "skip"])
            request = maker.map_request()
            if point == "batch":
                request.body["n_iter"] = max(2, request.body["n_iter"])
            request.body["steps"] = max(4, request.body["steps"])  # a point to stop at, and time to reach it
            sent += 1
            status, answer, seen = send_stopped(webui, request, point, action)
            problem = "" if status == 200 else f"HTTP {status}: {str(answer)[:200]}"
            # a run that ended before the point was seen is counted apart: it was not stopped
            record(
                f"{action} at {point}" if seen else "ended before its stop", problem, {**request.notes, "seen": seen}
            )
            status, again = post(probe)
            same = status == 200 and images_key(again) == images_key(fresh)
            notes = {} if same or status != 200 else difference(again, fresh)
            stopped = {"after": f"{action} at {point}", "seen": seen}
            record("after a stop", "" if same else "the next generation differs from a fresh one", {**stopped, **notes})
        rises[kind] += max(0.0, resident_mb(pid) - resident_before)
        if sent // 25 > series[-1][0] // 25:
            series.append((sent, round(resident_mb(pid), 1)))
            elapsed = time.monotonic() - started
            print(f"{sent} requests, {elapsed:.0f} s, {series[-1][1]:.0f} MB, {len(failures)} failures", flush=True)

    status, after = post(plain)
    plain_identical = status == 200 and images_key(after) == images_key(before)
    plain_difference = {} if plain_identical or status != 200 else difference(after, before)
    memory["end"] = resident_mb(pid)
    series.append((sent, round(memory["end"], 1)))
    growth = memory["end"] - memory["warm"]
    elapsed = time.monotonic() - started
    report = {
        "url": url,
        "control": args.control,
        "requests": sent,
        "seconds": round(elapsed),
        "counts": dict(counts),
        "failures": failures,
        "allocator": allocator(pid),
        "resident_mb": {k: round(v, 1) for k, v in memory.items()},
        "resident_mb_after_warm_up_phases": phases,
        "growth_after_warm_up_mb": round(growth, 1),
        "resident_mb_series": series,
        "resident_mb_rises_by_kind": {k: round(v, 1) for k, v in rises.most_common()},
        "plain_request_bit_identical_after_soak": plain_identical,
        "plain_request_difference": plain_difference,
        "samplers_left_out": broken,
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("failures", "resident_mb_series")}, indent=1))
    print("resident MB by requests sent:", " ".join(f"{n}:{mb:.0f}" for n, mb in series))
    print("resident MB risen during each kind's draws:", report["resident_mb_rises_by_kind"])
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    ok = not failures and plain_identical and growth <= args.max_growth and sent >= args.requests
    print(
        f"{'PASS' if ok else 'FAIL'}: {sent} requests in {elapsed / 60:.1f} min, {len(failures)} failures, "
        f"resident memory ({report['allocator']}) {memory['warm']:.0f} -> {memory['end']:.0f} MB after warm-up "
        f"({growth:+.1f} MB, highest {max(mb for _, mb in series):.0f}), "
        f"plain request {'bit-identical' if plain_identical else 'CHANGED'} after the soak"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
