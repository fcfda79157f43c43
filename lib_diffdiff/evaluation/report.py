"""What an evaluation hands back: a Markdown table like the paper's Table 1, the measured maps as a picture like
its Fig. 11, a JSON file with every figure and setting, and a progress line with the time left."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import numpy as np
from PIL import Image, ImageDraw

from ..tools.drawing import centred_text, font
from .methods import LABELS
from .patterns import pattern
from .protocol import Score

Results = dict[str, dict[str, Score]]


def _number(x: float, digits: int) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def markdown(results: Results, patterns: list[str], header: list[str]) -> str:
    """Table 1: CAM (higher is better) and DAM (lower is better), method x pattern."""
    lines = [f"- {line}" for line in header] + [""]
    lines.append("| Metric | Method | " + " | ".join(p.capitalize() for p in patterns) + " |")
    lines.append("|---|---|" + "---|" * len(patterns))
    for metric, digits in (("CAM (↑)", 3), ("DAM (↓)", 2)):
        first = True
        for method, scores in results.items():
            cells = []
            for p in patterns:
                s = scores.get(p)
                if s is None:
                    cells.append("n/a")
                    continue
                value = s.cam if metric.startswith("CAM") else s.dam
                t = s.threshold if metric.startswith("CAM") else s.dam_threshold
                cells.append(_number(value, digits) + (f" (t={t:g})" if t is not None else ""))
            lines.append(f"| {metric if first else ''} | {LABELS.get(method, method)} | " + " | ".join(cells) + " |")
            first = False
    return "\n".join(lines) + "\n"


def figure(results: Results, patterns: list[str], tile: int = 160) -> Image.Image:
    """Fig. 11: the maps in the first row, under them each method's measured map (fitted to the map's units by
    DAM's affine fit, clipped to [0, 1]; white = changed most)."""
    rows = [("Change map", {p: pattern(p, tile) for p in patterns})]
    for method, scores in results.items():
        rows.append((LABELS.get(method, method), {p: s.measured for p, s in scores.items() if s.measured is not None}))
    label_w, head_h, gap = 190, 28, 6
    width = label_w + len(patterns) * (tile + gap) + gap
    height = head_h + len(rows) * (tile + gap) + gap
    canvas = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    typeface = font(14)
    for c, p in enumerate(patterns):
        centred_text(draw, (label_w + gap + c * (tile + gap) + tile / 2, head_h / 2), p.capitalize(), typeface, "white")
    for r, (label, maps) in enumerate(rows):
        top = head_h + gap + r * (tile + gap)
        centred_text(draw, (label_w / 2, top + tile / 2), label, typeface, "white")
        for c, p in enumerate(patterns):
            left = label_w + gap + c * (tile + gap)
            if p not in maps:
                centred_text(draw, (left + tile / 2, top + tile / 2), "n/a", typeface, "grey")
                continue
            grey = np.round(np.clip(np.asarray(maps[p], dtype=np.float64), 0, 1) * 255).astype(np.uint8)
            picture = Image.fromarray(grey, "L").resize((tile, tile), Image.Resampling.BILINEAR)
            canvas.paste(picture.convert("RGB"), (left, top))
    return canvas


def as_json(results: Results) -> dict:
    """Every figure (NaN as null)."""

    def clean(x):
        return None if isinstance(x, float) and math.isnan(x) else x

    out: dict = {}
    for method, scores in results.items():
        out[method] = {
            p: {
                "cam": clean(s.cam),
                "dam": clean(s.dam),
                "dam_per_pixel": clean(s.dam_per_pixel),
                "threshold_best_cam": s.threshold,
                "threshold_best_dam": s.dam_threshold,
                "pairs": s.pairs,
                "missing": s.missing,
                "by_threshold": {
                    f"{t:g}": {k: clean(v) for k, v in vals.items()} for t, vals in s.by_threshold.items()
                },
            }
            for p, s in scores.items()
        }
    return out


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


class Progress:
    """A one-line bar on the terminal: done of total, failures, the time a generation takes, the time left
    (from the generations made in this run, so cached ones do not make the estimate optimistic)."""

    def __init__(self, total: int, cached: int, stream: TextIO = sys.stderr, width: int = 30):
        self.total, self.done, self.made, self.failed = total, cached, 0, 0
        self.stream, self.width, self.started = stream, width, time.monotonic()
        self._last = 0.0

    def update(self, ok: bool) -> None:
        self.done += 1
        self.made += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if now - self._last >= 0.5 or self.done == self.total:
            self._last = now
            self.stream.write("\r" + self.line(now - self.started))
            self.stream.flush()

    def line(self, elapsed: float) -> str:
        filled = int(self.width * self.done / max(1, self.total))
        each = elapsed / self.made if self.made else math.nan
        left = each * (self.total - self.done) if self.made else math.nan
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} generations"
        if self.failed:
            text += f", {self.failed} failed"
        if self.made:
            text += f", {each:.1f} s each, {duration(left)} left"
        return text

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
