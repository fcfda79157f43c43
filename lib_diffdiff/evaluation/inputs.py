"""The images an evaluation edits: a user's folder (the paper used 1,000 ImageNet validation images) or a small
built-in synthetic set for smoke runs."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def square(image: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square, then resize: every method sees the same size x size RGB picture."""
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image.resize((size, size), Image.Resampling.LANCZOS) if side != size else image


def folder_images(folder: Path, size: int, limit: int | None = None) -> list[tuple[str, Callable[[], Image.Image]]]:
    """(name, loader) for the images of a folder, sorted by name, the first ``limit`` of them: a thousand
    pictures are read when needed rather than held."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise ValueError(f"no images ({', '.join(SUFFIXES)}) in {folder}")

    def load(path: Path) -> Image.Image:
        try:
            with Image.open(path) as im:
                return square(im, size)
        except OSError as e:
            raise ValueError(f"could not read {path}: {e}") from e

    return [(path.name, partial(load, path)) for path in paths]


def synthetic_image(seed: int, size: int) -> Image.Image:
    """A picture with smooth colour fields, edges and texture at every scale, from a seed: enough structure for a
    perceptual distance to see changes everywhere, nothing to license."""
    rng = np.random.default_rng(seed)
    c = np.linspace(0.0, 1.0, size)
    x, y = np.meshgrid(c, c)
    image = np.zeros((size, size, 3))
    for _ in range(6):  # smooth waves
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
        image += rng.uniform(-1, 1, 3) * np.sin(2 * np.pi * (fx * x + fy * y) + phase)[..., None]
    for _ in range(8):  # discs with hard edges
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        image[(x - cx) ** 2 + (y - cy) ** 2 < r * r] += rng.uniform(-1.5, 1.5, 3)
    image = (image - image.min()) / (np.ptp(image) or 1.0)
    image = 0.1 + 0.8 * image + rng.normal(0, 0.03, image.shape)  # fine texture
    return Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), "RGB")


def synthetic_images(count: int, size: int) -> list[tuple[str, Image.Image]]:
    return [(f"synthetic-{n:03d}", synthetic_image(n, size)) for n in range(count)]
