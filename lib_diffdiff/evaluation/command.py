"""``python -m lib_diffdiff evaluate-webui``: the paper's Table 1 and Fig. 11 for what a user runs, through the
API of one or more live WebUIs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .client import Cache, RequestFailed, WebUIClient
from .distance import choose
from .inputs import folder_images, synthetic_images
from .methods import DEFAULT_THRESHOLDS, METHODS, SCRIPTS, Settings
from .patterns import PATTERNS
from .protocol import Plan, run_generations, score
from .report import Progress, as_json, duration, figure, markdown


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from e
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError("thresholds are in (0, 1]")
    return values


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose among {', '.join(allowed)}; got {text!r}")
        return names

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "evaluate-webui",
        help="the paper's Table 1 and Fig. 11 for this extension and the WebUI's own methods, over its API",
        description=__doc__,
    )
    ev.add_argument("--url", action="append", required=True, help="a WebUI with --api; repeat to spread the work")
    ev.add_argument("--out", type=Path, required=True, help="folder for the report, the JSON and the cache")
    ev.add_argument("--api-auth", help="user:password, for WebUIs started with --api-auth")
    src = ev.add_mutually_exclusive_group()
    src.add_argument("--images", type=Path, help="a folder of input images (the paper: 1,000 ImageNet val images)")
    src.add_argument("--synthetic", type=int, default=None, help="use N built-in synthetic images (smoke runs)")
    ev.add_argument("--limit", type=int, help="use the first N images of --images")
    ev.add_argument("--seeds", type=int, default=1, help="seeds per image (seed 0, 1, ...)")
    ev.add_argument("--size", type=int, default=512, help="images are centre-cropped and resized to size x size")
    ev.add_argument("--steps", type=int, default=20)
    ev.add_argument("--sampler", default="Euler")
    ev.add_argument("--cfg-scale", type=float, default=7.0)
    ev.add_argument("--prompt", default="", help="the paper used an empty prompt")
    ev.add_argument("--patterns", type=_names(PATTERNS), default=list(PATTERNS))
    ev.add_argument("--methods", type=_names(METHODS), help=f"default: those of {', '.join(METHODS)} every WebUI has")
    ev.add_argument("--thresholds", type=_floats, default=list(DEFAULT_THRESHOLDS), help="inpaint's binarisations")
    ev.add_argument("--distance", choices=("auto", "lpips", "dssim"), default="auto")
    ev.add_argument("--retries", type=int, default=3, help="retries of a request that failed in a way that may pass")
    ev.add_argument("--retry-wait", type=float, default=2.0, help="seconds before the first retry (then doubling)")
    ev.add_argument("--extra", type=Path, help="a JSON object merged into every request (override_settings...)")
    ev.add_argument("--dry-run", action="store_true", help="say how many generations it takes, send nothing")
    ev.set_defaults(run=run_command)


def _methods(clients: list[WebUIClient], wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """The methods to run and notes on those left out (a method needs its script on every WebUI)."""
    scripts = [c.scripts() for c in clients]
    checkpoints = {c.url: c.checkpoint() for c in clients}
    if len(set(checkpoints.values())) > 1:
        raise ValueError(f"the WebUIs run different checkpoints: {checkpoints}; give them the same one")
    chosen, notes = [], []
    for method in wanted or METHODS:
        lacking = [c.url for c, have in zip(clients, scripts, strict=True) if SCRIPTS.get(method, "") not in have]
        if method in SCRIPTS and lacking:
            if wanted:
                raise ValueError(f"{method} needs the {SCRIPTS[method]!r} script, which {', '.join(lacking)} lacks")
            notes.append(f"{method} left out: no {SCRIPTS[method]!r} script on {', '.join(lacking)}")
            continue
        chosen.append(method)
    return chosen, notes


def run_command(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.images is not None:
        images = folder_images(args.images, args.size, args.limit)
        source = str(args.images)
    else:
        images = synthetic_images(args.synthetic or 4, args.size)
        source = f"{len(images)} built-in synthetic images (a smoke run: says nothing about real photographs)"
    extra = json.loads(args.extra.read_text()) if args.extra else {}
    if not isinstance(extra, dict):
        raise ValueError("--extra must hold a JSON object")
    clients = [WebUIClient(u, auth=args.api_auth) for u in args.url]
    settings = Settings(args.size, args.steps, args.sampler, args.cfg_scale, args.prompt)
    try:
        methods, notes = _methods(clients, args.methods)
    except RequestFailed as e:
        raise ValueError(f"the WebUI did not answer (is it started with --api?): {e}") from e
    plan = Plan(images, list(range(args.seeds)), settings, args.patterns, methods, args.thresholds, extra)
    cache = Cache(args.out / "cache")
    unique = {plan.key(job) for job in plan.jobs()}  # a threshold may cut a map into the all-change mask
    total, cached = len(unique), sum(cache.has(k) for k in unique)
    print(
        f"{total} generations ({cached} cached): {len(images)} images x {args.seeds} seeds x {len(methods)} methods "
        f"({', '.join(methods)}) over {len(clients)} WebUI(s)",
        file=sys.stderr,
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        return 0
    distance, distance_label = choose(args.distance)
    print(f"distance: {distance_label}", file=sys.stderr)

    progress = Progress(total, cached)
    try:
        keys, failures = run_generations(
            plan,
            clients,
            cache,
            retries=args.retries,
            backoff=args.retry_wait,
            on_done=lambda _key, ok: progress.update(ok),
        )
    except KeyboardInterrupt:
        progress.close()
        print(f"stopped with {progress.done} of {total} generations cached; the same command resumes", file=sys.stderr)
        return 130
    progress.close()
    results = score(plan, keys, cache, distance, notes)

    header = [
        f"WebUI(s): {', '.join(args.url)}; checkpoint: {clients[0].checkpoint() or 'unknown'}",
        f"images: {source}; {args.seeds} seed(s) each; {args.size} x {args.size}; {args.steps} steps, "
        f"{args.sampler}, CFG {args.cfg_scale:g}, prompt {args.prompt!r}",
        f"distance: {distance_label}; E_M = measurement of the map - measurement of the all-change map (5.2.1)",
        f"DAM: ||M - (a E_M + b)||_F with M in [0, 1] at {args.size} x {args.size} (divide by {args.size} for the "
        "per-pixel RMS); inpaint: the threshold giving the best value, as in the paper",
        f"failed requests: {len(failures)}" + (" (see results.json)" if failures else ""),
        *notes,
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(results, list(args.patterns), header)
    (args.out / "table.md").write_text(table)
    figure(results, list(args.patterns)).save(args.out / "measured_maps.png")
    report = {
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("run", "api_auth")
        },
        "checkpoint": clients[0].checkpoint(),
        "distance": distance_label,
        "images": [name for name, _ in images],
        "methods": methods,
        "notes": notes,
        "generations": total,
        "results": as_json(results),
        "failures": [vars(f) for f in failures],
        "seconds": round(time.monotonic() - started, 1),
    }
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    print(table)
    print(
        f"wrote {args.out / 'table.md'}, {args.out / 'measured_maps.png'}, {args.out / 'results.json'} "
        f"in {duration(time.monotonic() - started)}",
        file=sys.stderr,
    )
    if failures:
        print(f"{len(failures)} request(s) failed after retries; the scores leave them out:", file=sys.stderr)
        for f in failures[:10]:
            print(f"  {f.url}: {f.error}", file=sys.stderr)
        return 1
    return 0
