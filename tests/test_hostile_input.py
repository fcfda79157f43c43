"""Hostile input: fuzzed API payloads against the parsing code, and map files built to attack the reader.

Whatever arrives, the only exception that may escape is ChangeMapError (the glue turns it into HTTP 422 and a UI
message), nothing takes over a second, and no map costs more memory than reading.BYTES_PER_PIXEL a pixel."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from lib_diffdiff import ChangeMapError, load_change_map
from lib_diffdiff.maps import reading
from lib_diffdiff.webui.script_args import parse_script_args
from lib_diffdiff.webui.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
FIELDS = [s.name for s in SETTINGS]
FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, 2**64 + 1])  # valid JSON; float() of them overflows
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["map", "soft inpaint", "fan", "Change map", "0.2, 0.4", "true", "1e309", "-0", "NaN"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=24,
)
payload_dicts = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=12) | st.integers(), json_values, max_size=12
)


def sane(outcome_of, *args):
    """Call; any exception other than ChangeMapError fails the test."""
    try:
        return outcome_of(*args)
    except ChangeMapError as e:
        assert str(e), "a ChangeMapError must carry a message"
        return None


@FUZZ
@given(payload_dicts, st.booleans())
def test_fuzzed_named_args_parse_or_fail_with_our_error(payload, enabled):
    payload = {**payload, "enabled": payload.get("enabled", enabled)}
    sane(parse_script_args, [payload])


@FUZZ
@given(st.lists(json_values, max_size=len(FIELDS) + 2))
def test_fuzzed_positional_args_parse_or_fail_with_our_error(args):
    sane(parse_script_args, [True, *args])


@FUZZ
@given(json_values)
def test_fuzzed_json_map_values_read_or_fail_with_our_error(value):
    out = sane(load_change_map, value)
    if out is not None:
        assert out.dtype == np.float32 and out.ndim == 2
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def sample_files() -> list[bytes]:
    """Small valid files of every accepted format, for mutation."""
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), "RGB")
    out = []
    for fmt, image in [
        ("PNG", picture),
        ("PNG", picture.convert("LA")),
        ("JPEG", picture),
        ("WEBP", picture),
        ("GIF", picture.convert("P")),
        ("BMP", picture),
        ("TIFF", picture.convert("I;16")),
        ("TIFF", picture.convert("F").point(lambda v: v / 255.0)),
    ]:
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


SAMPLES = sample_files()


@FUZZ
@given(
    st.sampled_from(range(len(SAMPLES))),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    st.integers(0, 10**6),
)
def test_mutated_image_files_read_or_fail_with_our_error(index, flips, cut):
    data = bytearray(SAMPLES[index])
    for position, byte in flips:
        data[position % len(data)] = byte
    data = bytes(data[: max(1, len(data) - cut % len(data))])
    for form in (data, base64.b64encode(data).decode()):
        out = sane(load_change_map, form)
        if out is not None:
            assert out.dtype == np.float32 and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_read_or_fail_with_our_error(data):
    sane(load_change_map, data)
    sane(load_change_map, base64.b64encode(data).decode())


# -- map files that attack the reader -------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def png_claiming(width: int, height: int, rows: int = 4) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height grey pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"\0" * (rows * (width + 1)), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("pillow_limit", [True, False], ids=["pillow-limit", "host-lifted-pillow-limit"])
def test_decompression_bomb_is_refused_from_its_header(monkeypatch, pillow_limit):
    bomb = png_claiming(50_000, 50_000)
    assert len(bomb) < 200_000
    if not pillow_limit:  # a host may lift Pillow's own guard; ours does not depend on it
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for form in (bomb, base64.b64encode(bomb).decode(), "data:image/png;base64," + base64.b64encode(bomb).decode()):
        with pytest.raises(ChangeMapError, match="too large|pixels in all|per side"):
            load_change_map(form)


def test_truncated_files_are_refused():
    picture = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (64, 1)), "L")
    for fmt in ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"):
        data = encoded(picture, fmt)
        with pytest.raises(ChangeMapError, match="decoded|truncated|could not"):
            load_change_map(data[: len(data) // 2])


def two_frames(fmt: str) -> bytes:
    black, white = Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)
    if fmt == "GIF":
        black, white = black.convert("P"), white.convert("P")
    return encoded(black, fmt, save_all=True, append_images=[white], duration=100, loop=0)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animated_and_multi_page_files_are_read_from_their_first_frame(fmt):
    data = two_frames(fmt)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2, "the file really has two frames"
    m = load_change_map(data)
    assert m.shape == (8, 8) and float(m.max()) < 0.02  # the black first frame, not the white second


def test_cmyk_and_progressive_jpeg_read_as_their_grey():
    grey = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    picture = Image.fromarray(grey, "L")
    expected = grey / 255.0
    for image, options in [(picture.convert("CMYK"), {}), (picture.convert("RGB"), {"progressive": True})]:
        data = encoded(image, "JPEG", quality=100, **options)
        m = load_change_map(data)
        assert np.abs(m - expected).max() < 0.03, image.mode


def test_exif_orientation_turns_the_map_as_it_turns_the_image():
    left_white = np.zeros((4, 6), np.uint8)
    left_white[:, :3] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left half becomes the top half
    data = encoded(Image.fromarray(left_white, "L"), "PNG", exif=exif.tobytes())
    m = load_change_map(data)
    assert m.shape == (6, 4)
    assert m[:3].min() == 1.0 and m[3:].max() == 0.0


def test_16bit_and_float_tiff():
    levels = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    m16 = load_change_map(encoded(Image.fromarray(levels), "TIFF"))
    np.testing.assert_array_equal(m16, (levels / 65535.0).astype(np.float32))
    values = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    mf = load_change_map(encoded(Image.fromarray(values, "F"), "TIFF"))
    np.testing.assert_array_equal(mf, values)
    with pytest.raises(ChangeMapError, match=r"\[0, 1\]"):
        load_change_map(encoded(Image.fromarray(values * 255, "F"), "TIFF"))


@pytest.mark.parametrize(
    "data,message",
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>', "SVG"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", "EPS format, which is not accepted"),
        (encoded(Image.new("RGB", (8, 8)), "PPM"), "PPM format, which is not accepted"),
        (encoded(Image.new("RGB", (8, 8)), "ICO"), "ICO format, which is not accepted"),
        (b"PK\x03\x04" + bytes(60), "could not be decoded"),
    ],
)
def test_unaccepted_formats_are_refused_by_name(data, message):
    with pytest.raises(ChangeMapError, match=message):
        load_change_map(data)
    with pytest.raises(ChangeMapError, match=message):
        load_change_map(base64.b64encode(data).decode())


def test_data_urls_are_read_by_their_bytes_whatever_their_mime_type():
    levels = np.array([[0, 128, 255]], np.uint8)
    b64 = base64.b64encode(encoded(Image.fromarray(levels, "L"), "PNG")).decode()
    for header in (
        "data:image/png;base64,",
        "data:image/jpeg;base64,",
        "data:text/plain;base64,",
        "DATA:IMAGE/PNG;BASE64,",
    ):
        np.testing.assert_array_equal(load_change_map(header + b64), (levels / 255.0).astype(np.float32))


def test_base64_with_whitespace_or_the_url_safe_alphabet():
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (16, 16), dtype=np.uint8)  # noise: its base64 has '+' and '/' in it
    data = encoded(Image.fromarray(levels, "L"), "PNG")
    standard = base64.b64encode(data).decode()
    assert "+" in standard and "/" in standard
    expected = (levels / 255.0).astype(np.float32)
    wrapped = "\n".join(standard[i : i + 76] for i in range(0, len(standard), 76))
    for text in (wrapped, " \t" + standard + "\r\n", base64.urlsafe_b64encode(data).decode().rstrip("=")):
        np.testing.assert_array_equal(load_change_map(text), expected)


@pytest.mark.parametrize(
    "text,message",
    [
        ("http://127.0.0.1:9/map.png", "URL"),
        ("https://example.com/map.png", "URL"),
        ("file:///etc/passwd", "URL"),
        ("ftp://example.com/m.png", "URL"),
        ("/etc/passwd", "file path"),
        ("~/map.png", "file path"),
        ("../../etc/hosts", "file path"),
        ("C:\\maps\\map.png", "file path"),
        ("/tmp/map_1.png", "file path"),
    ],
)
def test_a_string_is_never_fetched_or_opened(monkeypatch, tmp_path, text, message):
    def no_network(*args, **kwargs):
        raise AssertionError("a map string opened a network connection")

    opened: list[str] = []
    real_open = open

    def watch_open(file, *args, **kwargs):
        opened.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else repr(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr("builtins.open", watch_open)
    with pytest.raises(ChangeMapError, match=message):
        load_change_map(text)
    assert opened == []


def test_a_real_file_behind_a_path_string_is_not_read(tmp_path):
    target = tmp_path / "map.png"
    Image.new("L", (4, 4), 255).save(target)
    with pytest.raises(ChangeMapError, match="file path"):
        load_change_map(str(target))


@pytest.mark.parametrize(
    "value",
    [
        {"path": "/etc/passwd"},
        {"name": "/tmp/map.png", "data": None, "is_file": True},
        {"url": "http://127.0.0.1:9/map.png", "path": "map.png"},
        {"composite": {"path": "/etc/passwd"}},
        {"image": {"image": {"image": None}}},
        {"background": None, "layers": "/etc/passwd"},
        {"background": None, "layers": 7},
        {"background": None, "layers": [None] * 1000},
    ],
)
def test_gradio_file_references_and_nesting_are_refused(value):
    with pytest.raises(ChangeMapError):
        load_change_map(value)


def test_deeply_nested_payload_does_not_recurse():
    value: object = "x"
    for _ in range(5000):
        value = {"composite": value}
    with pytest.raises(ChangeMapError, match="another dict"):
        load_change_map(value)


# -- the memory bound -----------------------------------------------------------------------------------------------

MEASURE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from lib_diffdiff import ChangeMapError, load_change_map

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])

    data = Path(sys.argv[2]).read_bytes()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the present resident size
    except OSError as e:
        print(json.dumps({"skip": f"cannot reset the peak resident size here ({e})"}))
        sys.exit(0)
    before = status("VmRSS")
    try:
        m = load_change_map(data)
        shape = list(m.shape)
    except ChangeMapError as e:
        shape = str(e)
    print(json.dumps({"peak_kb": status("VmHWM") - before, "shape": shape}))
    """
)


def peak_reading(path: Path) -> dict:
    """Read a map file in a fresh process; how far the reading raised the process's peak resident memory (Linux)."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(ROOT), str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


@pytest.mark.parametrize(
    "mode,fmt,exif",
    [("RGBA", "PNG", False), ("RGB", "JPEG", True), ("I;16", "PNG", False), ("P", "GIF", False)],
)
def test_reading_a_large_map_stays_within_the_stated_memory(tmp_path, mode, fmt, exif):
    side = 3072
    ramp = np.tile(np.linspace(0, 255, side).astype(np.uint8), (side, 1))
    image = Image.fromarray(ramp, "L")
    image = image.convert("I").point(lambda v: v * 257).convert("I;16") if mode == "I;16" else image.convert(mode)
    options = {}
    if exif:
        tags = Image.Exif()
        tags[0x0112] = 8
        options["exif"] = tags.tobytes()
    path = tmp_path / f"big.{fmt.lower()}"
    image.save(path, format=fmt, **options)
    result = peak_reading(path)
    assert result["shape"] == [side, side]
    bound_kb = reading.BYTES_PER_PIXEL * side * side / 1024
    assert result["peak_kb"] <= bound_kb, (
        f"{mode} {fmt}: reading raised the peak by {result['peak_kb'] / 1024:.0f} MB, over the stated "
        f"{reading.BYTES_PER_PIXEL} bytes a pixel ({bound_kb / 1024:.0f} MB)"
    )


def test_a_bomb_is_refused_before_it_costs_memory(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(12_000, 9_000, rows=64))  # under Pillow's own limit, over ours
    result = peak_reading(path)
    assert isinstance(result["shape"], str) and "pixels in all" in result["shape"]
    assert result["peak_kb"] < 16 * 1024


def test_a_patched_image_open_is_never_reached(monkeypatch):
    """Other extensions patch PIL.Image.open (ADetailer's ultralytics pip-installs a HEIF plugin on the first
    unidentified file): reading a map, good or hostile, goes through Pillow's plugin table instead."""
    calls = []

    def patched(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("a companion's patched Image.open was called")

    monkeypatch.setattr(Image, "open", patched)
    levels = np.array([[0, 128, 255]], np.uint8)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        m = load_change_map(encoded(Image.fromarray(levels, "L"), fmt, **({"quality": 100} if fmt == "JPEG" else {})))
        assert m.shape == (1, 3)
    for hostile in (b"not an image", b"<svg/>", encoded(Image.new("RGB", (4, 4)), "PPM"), png_claiming(50_000, 50_000)):
        with pytest.raises(ChangeMapError):
            load_change_map(hostile)
    assert calls == []


PREVIEW_FIELDS = ["settings", "init_width", "init_height", "width", "height", "steps", "denoising_strength"]
PREVIEW_FIELDS += ["sampler_name", "scheduler", "mask", "mask_blur", "mask_invert", "only_masked", "padding"]


@FUZZ
@given(st.dictionaries(st.sampled_from(PREVIEW_FIELDS), json_values, max_size=6), st.booleans())
@example({"settings": [1, 2]}, True)
@example({"settings": "map"}, True)
@example({"steps": 10**400}, True)
def test_fuzzed_preview_requests_answer_or_fail_with_our_error(fields, on_a_valid_base):
    """POST /diffdiff/v1/preview bodies (the fields over a valid request, or alone) against the preview's parsing
    and planning, on the stand-in host of the preview tests."""
    from test_webui_preview import Host, data_url, euler, gradient, request

    body = {**request({"mode": "map", "map": data_url(gradient(16))}, width=64, height=64, steps=4), **fields}
    if not on_a_valid_base:
        body = dict(fields)
    if isinstance(body.get("width"), int) and isinstance(body.get("height"), int):
        body["width"], body["height"] = min(body["width"], 256), min(body["height"], 256)  # the deadline is for parsing
    if isinstance(body.get("steps"), int):
        body["steps"] = min(body["steps"], 50)
    from lib_diffdiff.webui.foresee import foresee

    sane(foresee, body, Host(euler))
