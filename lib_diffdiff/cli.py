"""``python -m lib_diffdiff``: make fan maps, preview a map's schedule, score outputs against their map, run the
paper's evaluation against live WebUIs.
Needs only torch, numpy and pillow."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ChangeMapError
from .evaluation.command import add_parser as add_evaluate_webui
from .maps.reading import load_change_map
from .maps.transforms import invert
from .sources import made_map
from .tools.fan import fan_map, fan_strengths, parse_strengths
from .tools.metrics import cam, dam, edit_strength_map
from .tools.preview import SCHEDULES, render_preview


def _save_map(m: np.ndarray, path: Path, bits: int) -> None:
    if bits == 16:
        Image.fromarray(np.round(m * 65535).astype(np.uint16)).save(path)  # Pillow writes a 16-bit grey PNG
    else:
        Image.fromarray(np.round(m * 255).astype(np.uint8), "L").save(path)


def _cmd_fan(args: argparse.Namespace) -> int:
    if args.strengths:
        strengths = parse_strengths(args.strengths)
    else:
        strengths = fan_strengths(args.min, args.max, args.count)
    _save_map(fan_map(strengths, args.width, args.height), args.output, args.bits)
    print(f"wrote {args.output}: {len(strengths)} columns, strengths {', '.join(f'{s:g}' for s in strengths)}")
    return 0


def _read_map(path: Path, inverted: bool) -> np.ndarray:
    m = load_change_map(path)
    return invert(m) if inverted else m


def _cmd_preview(args: argparse.Namespace) -> int:
    m = _read_map(args.map, args.invert)
    render_preview(m, args.strength, args.steps, args.schedule, tile=args.tile).save(args.output)
    print(f"wrote {args.output}")
    return 0


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except OSError as e:
        raise ChangeMapError(f"could not read the image {path}: {e}") from e


def _cmd_evaluate(args: argparse.Namespace) -> int:
    m = _read_map(args.map, args.invert)
    source = _open_rgb(args.input)
    pairs = [(source, _open_rgb(p)) for p in args.outputs]
    baseline = [(source, _open_rgb(p)) for p in args.baseline] if args.baseline else None
    for _, out in pairs + (baseline or []):
        if out.size != source.size:
            raise ChangeMapError(f"every output must have the input's size {source.size}, got {out.size}")
    edit = edit_strength_map(pairs, baseline)
    c, d = cam(m, edit), dam(m, edit)
    result = {
        "cam": None if math.isnan(c) else c,
        "dam": d,
        "dam_per_pixel": d / math.sqrt(edit.size),
        "pairs": len(pairs),
        "baseline_pairs": len(baseline or []),
        "distance": "dssim",
        "size": list(source.size),
    }
    print(json.dumps(result, indent=2))
    return 0


def _cmd_source(args: argparse.Namespace) -> int:
    image = _open_rgb(args.image)
    mask = load_change_map(args.mask, what="inpaint mask") if args.mask else None
    m = made_map(
        args.source, image, mask=mask, colour=args.colour, tolerance=args.tolerance, reach=args.reach, point=args.point
    )
    _save_map(invert(m) if args.invert else m, args.output, args.bits)
    print(f"wrote {args.output}: {args.source} map of {args.image}, values {m.min():.3g}-{m.max():.3g}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib_diffdiff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    fan = sub.add_parser("fan", help="write a strength-fan change map (columns of strengths, left to right)")
    fan.add_argument("--strengths", help="comma-separated strengths in [0, 1], e.g. 0.2,0.4,0.6")
    fan.add_argument("--min", type=float, default=0.2, help="first strength (with --count)")
    fan.add_argument("--max", type=float, default=1.0, help="last strength (with --count)")
    fan.add_argument("--count", type=int, default=5, help="number of columns")
    fan.add_argument("--width", type=int, default=512)
    fan.add_argument("--height", type=int, default=512)
    fan.add_argument("--bits", type=int, choices=(8, 16), default=16, help="PNG bit depth (16 keeps strengths finer)")
    fan.add_argument("-o", "--output", type=Path, required=True)
    fan.set_defaults(run=_cmd_fan)

    preview = sub.add_parser("preview", help="picture of the held/free regions at each step (paper Fig. 2)")
    preview.add_argument("map", type=Path, help="change map image (white = change)")
    preview.add_argument("--steps", type=int, default=20)
    preview.add_argument("--strength", type=float, default=1.0, help="denoising strength multiplying the map")
    preview.add_argument("--schedule", choices=SCHEDULES, default="karras")
    preview.add_argument("--invert", action="store_true", help="read the map as black = change")
    preview.add_argument("--tile", type=int, default=160, help="tile size in pixels")
    preview.add_argument("-o", "--output", type=Path, required=True)
    preview.set_defaults(run=_cmd_preview)

    ev = sub.add_parser("evaluate", help="CAM and DAM of outputs against their change map, as JSON")
    ev.add_argument("--map", type=Path, required=True, help="the change map the outputs were made with")
    ev.add_argument("--input", type=Path, required=True, help="the edited image")
    ev.add_argument("--outputs", type=Path, nargs="+", required=True, help="results made with the map")
    ev.add_argument("--baseline", type=Path, nargs="*", help="results made with an all-change map (bias removal)")
    ev.add_argument("--invert", action="store_true", help="read the map as black = change")
    ev.set_defaults(run=_cmd_evaluate)

    source = sub.add_parser("source", help="make a change map from an image (the WebUI's Map source, offline)")
    source.add_argument("image", type=Path, help="the image the map is made from")
    source.add_argument(
        "--source", required=True, choices=("luminance", "saturation", "colour", "edges", "point", "mask edge")
    )
    source.add_argument("--colour", default="#808080", help="colour: the colour that changes fully (#rrggbb)")
    source.add_argument("--tolerance", type=float, default=0.25, help="colour: distance where the change ends")
    source.add_argument("--reach", type=float, default=64.0, help="edges, point, mask edge: pixels of fall-off")
    source.add_argument("--point", default="0.5,0.5", help="point: x,y as shares of the width and height")
    source.add_argument("--mask", type=Path, help="mask edge: the inpaint mask (white = inpainted)")
    source.add_argument("--invert", action="store_true", help="swap change and keep")
    source.add_argument("--bits", type=int, choices=(8, 16), default=8, help="PNG bit depth")
    source.add_argument("-o", "--output", type=Path, required=True)
    source.set_defaults(run=_cmd_source)

    add_evaluate_webui(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ChangeMapError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
