"""`python -m lib_diffdiff`: each subcommand on small inputs, checking what the written files contain."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff import load_change_map
from lib_diffdiff.tools.preview import HELD_COLOUR, step_views

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "lib_diffdiff", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_fan_writes_the_columns(tmp_path):
    out = tmp_path / "fan.png"
    cli("fan", "--strengths", "0.25,0.5,0.75,1", "--width", "256", "--height", "64", "-o", out)
    m = load_change_map(out)
    assert m.shape == (64, 256)
    np.testing.assert_allclose(
        m[0, [0, 63, 64, 127, 128, 191, 192, 255]], [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1], atol=1 / 65535
    )
    cli("fan", "--min", "0", "--max", "1", "--count", "3", "--bits", "8", "--width", "48", "--height", "8", "-o", out)
    assert Image.open(out).mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(out))[0, [0, 15, 16, 31, 32, 47]], [0, 0, 128, 128, 255, 255])


def test_fan_rejects_bad_strengths(tmp_path):
    result = cli("fan", "--strengths", "0.5,1.5", "-o", tmp_path / "x.png", check=False)
    assert result.returncode == 2 and "[0, 1]" in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("schedule", ["karras", "ddim"])
def test_preview_shows_the_held_regions_of_each_call(tmp_path, schedule):
    gradient = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (32, 1))
    Image.fromarray(gradient, "L").save(tmp_path / "map.png")
    out = tmp_path / "preview.png"
    cli(
        "preview",
        tmp_path / "map.png",
        "--steps",
        "8",
        "--strength",
        "1",
        "--schedule",
        schedule,
        "--tile",
        "64",
        "-o",
        out,
    )
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    views = step_views(gradient / 255.0, 1.0, 8, schedule)
    tw, th, label = 64, 32, 18
    columns = min(6, len(views))
    for i, view in enumerate(views):
        x, y = 4 + (i % columns) * (tw + 4), 24 + (i // columns) * (th + label + 4) + label
        tile = sheet[y : y + th, x : x + tw]
        bluish = (tile[:, :, 2] - tile[:, :, 0]) > 40  # held pixels are tinted blue, free ones are grey
        assert bluish.mean() == pytest.approx(view.held.mean(), abs=0.05), f"call {i}"
    held_share = [v.held.mean() for v in views]
    assert held_share == sorted(held_share, reverse=True) and held_share[0] > 0.5 and held_share[-1] <= 0.25
    assert HELD_COLOUR[2] > HELD_COLOUR[0]


def test_evaluate_scores_a_followed_map_above_an_ignored_one(tmp_path):
    rng = np.random.default_rng(0)
    m = np.tile(np.linspace(0, 1, 64), (64, 1))
    Image.fromarray((m * 255).round().astype(np.uint8), "L").save(tmp_path / "map.png")
    src = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(src).save(tmp_path / "in.png")
    followed, ignored = [], []
    for s in range(3):
        new = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        blend = (src * (1 - m[:, :, None]) + new * m[:, :, None]).round().astype(np.uint8)
        Image.fromarray(blend).save(tmp_path / f"f{s}.png")
        Image.fromarray(new).save(tmp_path / f"i{s}.png")
        followed.append(tmp_path / f"f{s}.png")
        ignored.append(tmp_path / f"i{s}.png")
    good = json.loads(
        cli("evaluate", "--map", tmp_path / "map.png", "--input", tmp_path / "in.png", "--outputs", *followed).stdout
    )
    bad = json.loads(
        cli("evaluate", "--map", tmp_path / "map.png", "--input", tmp_path / "in.png", "--outputs", *ignored).stdout
    )
    assert good["cam"] > 0.9 and abs(bad["cam"]) < 0.3
    assert good["dam"] < bad["dam"] and good["pairs"] == 3
    debiased = json.loads(
        cli(
            "evaluate",
            "--map",
            tmp_path / "map.png",
            "--input",
            tmp_path / "in.png",
            "--outputs",
            *followed,
            "--baseline",
            *ignored,
        ).stdout
    )
    assert debiased["baseline_pairs"] == 3 and debiased["cam"] > 0.9


def test_evaluate_reports_bad_files(tmp_path):
    (tmp_path / "map.png").write_bytes(b"nope")
    result = cli(
        "evaluate",
        "--map",
        tmp_path / "map.png",
        "--input",
        tmp_path / "map.png",
        "--outputs",
        tmp_path / "map.png",
        check=False,
    )
    assert result.returncode == 2 and "could not be decoded" in result.stderr


def test_source_makes_the_webuis_map_from_an_image(tmp_path):
    from lib_diffdiff.sources import made_map

    a = np.zeros((24, 40, 3), np.uint8)
    a[:, 20:] = (200, 30, 30)
    Image.fromarray(a, "RGB").save(tmp_path / "in.png")
    out = tmp_path / "map.png"
    args = ["source", tmp_path / "in.png", "--source", "colour", "--colour", "#c81e1e", "--tolerance", "0.4"]
    cli(*args, "-o", out)
    m = np.asarray(Image.open(out), dtype=np.float64) / 255
    assert (m[:, 20:] == 1).all() and (m[:, :20] == 0).all()
    expected = made_map("colour", a, colour="#c81e1e", tolerance=0.4)
    assert np.abs(m - expected).max() <= 0.5 / 255 + 1e-9
    cli(*args, "--invert", "-o", out)
    assert (np.asarray(Image.open(out))[:, 20:] == 0).all()
    refused = cli("source", tmp_path / "in.png", "--source", "mask edge", "-o", out, check=False)
    assert refused.returncode == 2 and "needs an inpaint mask" in refused.stderr
