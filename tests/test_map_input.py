"""Every form a change map can arrive in, and every bad input, read by load_change_map."""

import base64
import io
import zlib

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff import ChangeMapError, load_change_map
from lib_diffdiff.maps.reading import MAX_SIDE

LEVELS = np.array([[0, 51, 128], [200, 254, 255]], dtype=np.uint8)
EXPECTED = (LEVELS / 255.0).astype(np.float32)


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def check(m: np.ndarray, expected: np.ndarray = EXPECTED) -> None:
    assert m.dtype == np.float32 and m.shape == expected.shape
    np.testing.assert_array_equal(m, expected)


def test_grey_8bit_reads_k_over_255_exactly():
    check(load_change_map(Image.fromarray(LEVELS, "L")))


def test_grey_colours_read_as_their_grey():
    rgb = np.repeat(LEVELS[:, :, None], 3, axis=2)
    check(load_change_map(Image.fromarray(rgb, "RGB")))
    check(load_change_map(rgb))


def test_colour_reads_as_luminance():
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    np.testing.assert_allclose(load_change_map(rgb)[0], [0.299, 0.587, 0.114], rtol=1e-6)


def test_alpha_multiplies_transparent_is_keep():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = LEVELS
    check(load_change_map(Image.fromarray(rgba, "RGBA")))
    la = np.stack([np.full_like(LEVELS, 255), LEVELS], axis=2)
    check(load_change_map(Image.fromarray(la, "LA")))
    check(load_change_map(la))


def test_palette_image_with_transparency():
    image = Image.fromarray(LEVELS, "L").convert("P")
    check(load_change_map(image))
    rgba = Image.new("RGBA", (2, 1), (255, 255, 255, 255))
    rgba.putpixel((1, 0), (255, 255, 255, 0))
    pal = rgba.convert("P")
    np.testing.assert_array_equal(load_change_map(Image.open(io.BytesIO(png_bytes(pal))))[0], [1.0, 0.0])


def test_16bit_png_reads_k_over_65535():
    values = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    reopened = Image.open(io.BytesIO(png_bytes(image)))
    assert reopened.mode in ("I", "I;16")  # how Pillow opens a 16-bit grey PNG
    expected = (values / 65535.0).astype(np.float32)
    check(load_change_map(reopened), expected)
    check(load_change_map(values), expected)


def test_float_and_bilevel_and_bool():
    f = EXPECTED.astype(np.float64)
    check(load_change_map(Image.fromarray(EXPECTED, "F")))
    check(load_change_map(f))
    bits = np.array([[True, False]])
    check(load_change_map(bits), np.array([[1.0, 0.0]], dtype=np.float32))
    check(load_change_map(Image.fromarray(bits)), np.array([[1.0, 0.0]], dtype=np.float32))


def test_hw1_array_and_uint16_rgb():
    check(load_change_map(LEVELS[:, :, None]))
    rgb16 = np.repeat((LEVELS.astype(np.uint16) * 257)[:, :, None], 3, axis=2)
    check(load_change_map(rgb16))


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_base64_with_and_without_data_url(prefix):
    text = prefix + base64.b64encode(png_bytes(Image.fromarray(LEVELS, "L"))).decode()
    check(load_change_map(text))
    check(load_change_map("  " + text[: len(text) // 2] + "\n" + text[len(text) // 2 :] + "\n"))


def test_bytes_and_path(tmp_path):
    data = png_bytes(Image.fromarray(LEVELS, "L"))
    check(load_change_map(data))
    path = tmp_path / "map.png"
    path.write_bytes(data)
    check(load_change_map(path))


def test_a_str_is_never_a_file_path(tmp_path):
    path = tmp_path / "map.png"
    Image.fromarray(LEVELS, "L").save(path)
    with pytest.raises(ChangeMapError, match="base64"):
        load_change_map(str(path))


def test_gradio3_dict_image_plus_strokes():
    image = Image.fromarray(np.full((2, 3), 51, np.uint8), "L")
    strokes = Image.fromarray(np.array([[0, 255, 0], [0, 0, 0]], np.uint8), "L")
    m = load_change_map({"image": image, "mask": strokes})
    np.testing.assert_array_equal(m, np.array([[0.2, 1.0, 0.2], [0.2, 0.2, 0.2]], dtype=np.float32))
    check(load_change_map({"image": Image.fromarray(LEVELS, "L"), "mask": None}))


def test_gradio4_editor_dict_composite_and_layers():
    check(load_change_map({"background": None, "layers": [], "composite": Image.fromarray(LEVELS, "L")}))
    background = Image.new("RGBA", (3, 2), (0, 0, 0, 255))
    layer = Image.new("RGBA", (3, 2), (0, 0, 0, 0))
    layer.putpixel((2, 1), (255, 255, 255, 255))
    m = load_change_map({"background": background, "layers": [layer], "composite": None})
    assert m[1, 2] == 1.0 and m.sum() == 1.0
    painted_only = load_change_map({"background": None, "layers": [layer], "composite": None})
    assert painted_only[1, 2] == 1.0 and painted_only.sum() == 1.0


def test_exif_orientation_is_applied():
    image = Image.fromarray(np.array([[0, 255]], np.uint8), "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes(), quality=100)
    m = load_change_map(buf.getvalue())
    assert m.shape == (2, 1)


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge size (the pixel data is never reached)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "bad,message",
    [
        (None, "no change map"),
        ("", "empty"),
        ("data:image/png;base64,", "empty"),
        ("not base64 at all!!", "base64"),
        ("data:text/plain,hello", "data URL"),
        (base64.b64encode(b"definitely not an image").decode(), "decoded"),
        (b"", "empty"),
        (png_bytes(Image.new("L", (64, 64)))[:60], "decoded"),  # truncated PNG
        (huge_png(MAX_SIDE + 1, 8), "per side"),
        (huge_png(50000, 50000), "too large|per side"),
        (huge_png(9000, 9000), "pixels in all"),
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[0.5, np.inf]]), "NaN or infinite"),
        (np.array([[0.0, 255.0]]), r"\[0, 1\]"),
        (np.array([[-0.5, 0.5]]), r"\[0, 1\]"),
        (np.zeros((2, 2), np.int64), "dtype"),
        (np.zeros((2, 2, 5), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 2), np.uint8), "shape"),
        ({"foo": 1}, "keys"),
        ({"image": None, "mask": None}, "no change map"),
        ({"background": None, "layers": [], "composite": None}, "empty"),
        (12345, "unsupported type"),
        (Image.fromarray(np.array([[70000]], dtype=np.int32), "I"), "0..65535"),
        (Image.fromarray(np.array([[2.0]], dtype=np.float32), "F"), r"\[0, 1\]"),
    ],
)
def test_bad_input_raises_one_error_type_with_a_message(bad, message):
    with pytest.raises(ChangeMapError, match=message):
        load_change_map(bad)


def test_missing_file_is_a_change_map_error(tmp_path):
    with pytest.raises(ChangeMapError, match="could not read"):
        load_change_map(tmp_path / "nope.png")


def test_error_names_the_input():
    with pytest.raises(ChangeMapError, match="inpaint mask"):
        load_change_map("%%%", what="inpaint mask")


def test_change_map_error_is_a_value_error():
    assert issubclass(ChangeMapError, ValueError)
