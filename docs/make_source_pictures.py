"""Make docs/sources-depth.png: the scene of docs/sources.png, a depth estimate of it, and the change maps the depth and
brightness sources make from them, through the same library calls the WebUI runs.

The depth here is drawn by hand from the scene's flat colours (sky and sun far, hills behind the house, the ground
nearing the viewer towards the bottom edge), near = bright as ControlNet's depth preprocessors return it: the test
WebUIs carry only random-weight estimators, whose depth would be noise. In the WebUI the estimator's output takes its
place. Run from the repository root: ``.venv/bin/python docs/make_source_pictures.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lib_diffdiff.maps.transforms import MapShape
from lib_diffdiff.sources import depth_map, made_map

DOCS = Path(__file__).resolve().parent


def hand_depth(scene: np.ndarray) -> np.ndarray:
    """Near = 255: the scene's regions by colour, each at a plausible depth."""
    h, w = scene.shape[:2]
    r, g, b = (scene[..., i].astype(int) for i in range(3))
    rows = np.repeat(np.arange(h)[:, None] / (h - 1), w, axis=1)
    depth = np.zeros((h, w))  # sky and sun: farthest
    hills = (g > r + 40) & (g > b + 40) & (g >= 125)
    ground = (g > r + 40) & (g > b + 40) & (g < 125)
    house = (r > g + 40) | ((r < 80) & (g < 50))  # walls, roof, door
    house |= (r > 200) & (g > 200) & (b > 150) & (rows > 0.4)  # the window, low in the picture (the sun is high)
    depth[hills] = (0.25 + 0.2 * rows)[hills]
    top = rows[ground].min()
    depth[ground] = (0.55 + 0.45 * (rows - top) / (1 - top))[ground]
    depth[house] = 0.62
    return np.rint(depth * 255).astype(np.uint8)


def main() -> None:
    scene = np.asarray(Image.open(DOCS / "sources-scene.png").convert("RGB"))
    h, w = scene.shape[:2]
    estimate = hand_depth(scene)
    near = depth_map(estimate, w, h)  # the depth source: near = change
    maps = [
        near,
        MapShape(quantize=3).apply(near),  # three distinct strengths
        1.0 - near,  # Invert map: far = change
        made_map("luminance", scene),  # the brightness source
    ]
    gap = 6
    tiles = [scene, np.repeat(estimate[..., None], 3, axis=2)]
    tiles += [np.repeat(np.rint(m * 255).astype(np.uint8)[..., None], 3, axis=2) for m in maps]
    out = np.full((h, len(tiles) * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        out[:, i * (w + gap) : i * (w + gap) + w] = tile
    Image.fromarray(out).save(DOCS / "sources-depth.png", optimize=True)
    print(f"wrote {DOCS / 'sources-depth.png'}")


if __name__ == "__main__":
    main()
