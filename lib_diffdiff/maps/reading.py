"""Turn whatever a user, the UI or the API hands over into one change map: float32, HxW, values in [0, 1].

How a picture is read (white = change, black = keep):
- grey modes are read as they are: 8-bit ``L`` as k/255, 16-bit (``I;16``, and ``I``, which is how Pillow opens a
  16-bit PNG) as k/65535, ``F`` (float) as is and must lie in [0, 1], ``1`` (bilevel) as 0 or 1;
- colour is read as luminance with the ITU-R 601 weights Pillow uses (0.299 R + 0.587 G + 0.114 B); a grey colour
  (R = G = B = k) reads exactly as the grey k;
- alpha multiplies: a transparent pixel reads as black (keep), so strokes painted on an empty layer are the map;
- a palette image is read through its palette (with its transparency);
- EXIF orientation is applied, as the WebUI does for the image being edited;
- an animated GIF, APNG or WebP, or a multi-page TIFF, is read from its first frame (the one a browser shows first).

What is refused, and the memory a map can cost (hostile input, see tests/test_hostile_input.py):
- only PNG, JPEG (also CMYK, progressive and multi-picture), WebP, GIF, BMP and TIFF are opened; any other format
  (SVG, EPS, PSD, ...) is refused by name, so no format plugin that runs an external program is ever reached;
- the size is checked from the file's header, before one pixel is decoded: at most :data:`MAX_SIDE` per side and
  :data:`MAX_PIXELS` in all, so a few-KB file claiming 50 000 x 50 000 pixels is refused at once;
- decoding then takes the picture in Pillow's own form (at most 4 bytes a pixel, twice with an EXIF rotation), and
  the conversion to the float32 map (4 bytes a pixel) works in bands of rows: reading costs at most
  :data:`BYTES_PER_PIXEL` bytes a pixel on top of the file, about 800 MB for the largest map accepted;
- a string is base64 (standard or URL-safe alphabet, whitespace ignored) or a ``data:`` URL whose MIME type is
  ignored (the bytes decide, as in the WebUI's own decoding); it is never a URL to fetch or a server path to read,
  and one that looks like either is refused as such.

Integer inputs are turned into floats with exact integer arithmetic, so a grey level k gives the same float as k/255
computed in float64 and then rounded to float32.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ChangeMapError

MAX_SIDE = 16384
"""Largest width or height accepted: larger is no image a WebUI generates, and decoding it could exhaust memory."""
MAX_PIXELS = 8192 * 8192
"""Largest pixel count accepted (a 64-megapixel map already takes 256 MB as float32)."""
BYTES_PER_PIXEL = 12
"""Bound on the memory reading a map takes, per pixel: Pillow's decoded picture (4, and 4 more for an EXIF rotation)
plus the float32 map (4); the conversion's own temporaries are limited to bands of :data:`BAND_PIXELS`."""
BAND_PIXELS = 1 << 18
"""Pixels converted at a time (the int64 temporaries of a band take a few tens of MB)."""
MAX_LAYERS = 64
"""Most layers a gradio 4 image editor value may bring."""
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
"""The image formats a map may come in: what browsers and image editors write; nothing that runs a helper program."""

MapSource = Image.Image | np.ndarray | str | bytes | os.PathLike | Mapping

_LUMA = (299, 587, 114)  # Pillow's "L" conversion weights, in thousandths


def load_change_map(source: MapSource, *, what: str = "change map") -> np.ndarray:
    """Read a change map from any supported form (see the module docstring) into float32 HxW in [0, 1].

    ``str`` is always base64 (optionally a data URL), never a file path: the API must not be able to read server
    files. Pass a ``pathlib.Path`` for a file. ``what`` names the input in error messages.
    """
    if source is None:
        raise ChangeMapError(f"no {what} was given")
    if isinstance(source, Mapping):
        return _from_gradio_dict(source, what)
    if isinstance(source, Image.Image):
        return _from_pil(source, what)
    if isinstance(source, np.ndarray):
        return _from_array(source, what)
    if isinstance(source, str):
        return _from_pil(_open_text(source, what), what)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_pil(_open_image(bytes(source), what), what)
    if isinstance(source, os.PathLike):
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ChangeMapError(f"could not read the {what} file {os.fspath(source)!r}: {e.strerror or e}") from e
        return _from_pil(_open_image(data, what), what)
    raise ChangeMapError(
        f"the {what} has an unsupported type {type(source).__name__}; give an image, a numpy array, "
        "base64 text or a data URL"
    )


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _decode_base64(text: str, what: str) -> bytes:
    original = text = text.strip()
    if text[:5].lower() == "data:":
        header, sep, text = text.partition(",")
        if not sep or ";base64" not in header.lower():
            raise ChangeMapError(f"the {what} is a data URL without base64 content")
    text = "".join(text.split())
    if not text:
        raise ChangeMapError(f"the {what} is an empty string")
    if "-" in text or "_" in text:  # the URL-safe alphabet (RFC 4648 section 5)
        text = text.replace("-", "+").replace("_", "/")
    if not _BASE64.issuperset(text):
        raise ChangeMapError(_not_base64_message(original, what))
    text = text.rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ChangeMapError(f"the {what} is not valid base64 ({e})") from e


_PATH_MESSAGE = (
    "the {what} looks like a file path; maps are sent as base64 image data, a path on the server is never read"
)


def _looks_like_path(text: str) -> bool:
    """A short string shaped like a POSIX, home, relative or Windows path (base64 of any image is longer)."""
    text = text.strip()
    if len(text) > 1024 or "\n" in text:
        return False
    return text.startswith(("/", "~/", "./", "../", "\\")) or (
        len(text) > 2 and text[0].isalpha() and text[1] == ":" and text[2] in "/\\"
    )


def _open_text(text: str, what: str) -> Image.Image:
    """A map sent as text: base64 or a data URL. "/etc/passwd" is valid base64, so a path-shaped string whose bytes
    are no image is refused as a path (it is never opened as one)."""
    data = _decode_base64(text, what)
    try:
        return _open_image(data, what)
    except ChangeMapError as e:
        if _looks_like_path(text):
            raise ChangeMapError(_PATH_MESSAGE.format(what=what)) from e
        raise


def _not_base64_message(text: str, what: str) -> str:
    """Say why a string that is not base64 was refused; a URL or a path is named as such (and never opened)."""
    head = text[:80]
    if "://" in head or head.lower().startswith(("file:", "http:", "https:")):
        return (
            f"the {what} looks like a URL; maps are sent as base64 image data (a data URL is fine), "
            "a URL is never fetched"
        )
    if _looks_like_path(text):
        return _PATH_MESSAGE.format(what=what)
    return f"the {what} is not valid base64 (it has characters outside the base64 alphabets)"


def _open_image(data: bytes, what: str) -> Image.Image:
    if not data:
        raise ChangeMapError(f"the {what} is empty (no bytes)")
    try:
        image = _pillow_open(data)
        _check_size(image.size, what)  # before decoding the pixels: a tiny file can claim a huge size
        image.load()
    except ChangeMapError:
        raise
    except Image.DecompressionBombError as e:
        raise ChangeMapError(f"the {what} is too large to decode safely ({e})") from e
    except UnidentifiedImageError as e:
        raise ChangeMapError(_unaccepted_format_message(data, what)) from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as e:
        raise ChangeMapError(f"the {what} could not be decoded as an image ({e})") from e
    return image


def _pillow_open(data: bytes) -> Image.Image:
    """``Image.open(formats=FORMATS)`` through Pillow's own plugin table, not through ``Image.open``: other
    extensions patch that function (ADetailer's ultralytics answers an unidentified file by pip-installing a HEIF
    plugin and trying again), and a hostile map must reach none of it. Only the header is read here."""
    Image.preinit()
    if not all(name in Image.OPEN for name in FORMATS):
        Image.init()
    prefix = data[:16]
    for name in FORMATS:
        if name not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[name]
        verdict = accept(prefix) if accept is not None else True
        if isinstance(verdict, str):  # Pillow's way of saying "this format, but its decoder is missing"
            raise UnidentifiedImageError(verdict)
        if not verdict:
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error) as e:
            raise OSError(f"not a valid {name} file ({e})") from e
    raise UnidentifiedImageError("cannot identify image file")


def _unaccepted_format_message(data: bytes, what: str) -> str:
    accepted = "PNG, JPEG, WebP, GIF, BMP or TIFF"
    head = data[:256].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return f"the {what} is an SVG drawing; save it as {accepted}"
    Image.init()
    name = None
    for candidate, (_factory, accept) in Image.OPEN.items():  # name the format by its signature alone
        try:
            if candidate not in FORMATS and accept is not None and accept(data[:16]) is True:
                name = candidate
                break
        except Exception:  # noqa: BLE001, S112 (a plugin's signature check must not decide the outcome)
            continue
    if name:
        return f"the {what} is in {name} format, which is not accepted; save it as {accepted}"
    return f"the {what} could not be decoded as an image (not {accepted})"


def _check_size(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ChangeMapError(f"the {what} is empty ({width}x{height} pixels)")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ChangeMapError(
            f"the {what} is {width}x{height} pixels; at most {MAX_SIDE} per side and {MAX_PIXELS} pixels in all"
        )


def _from_gradio_dict(d: Mapping, what: str) -> np.ndarray:
    keys = set(d)
    if keys & {"background", "layers", "composite"}:  # gradio 4 ImageEditor
        if d.get("composite") is not None:
            return load_change_map(_leaf(d["composite"], what), what=what)
        given = d.get("layers") or []
        if not isinstance(given, (list, tuple)) or len(given) > MAX_LAYERS:
            raise ChangeMapError(f"the {what} editor's 'layers' must be a list of at most {MAX_LAYERS} images")
        if d.get("background") is None and not given:
            raise ChangeMapError(f"no {what} was given (the image editor is empty)")
        layers = [load_rgba(_leaf(x, what), what) for x in [d.get("background"), *given] if x is not None]
        canvas = layers[0]
        for layer in layers[1:]:
            if layer.size != canvas.size:
                raise ChangeMapError(f"the {what} editor layers have different sizes")
            canvas = Image.alpha_composite(canvas, layer)
        return _from_pil(canvas, what)
    if keys & {"image", "mask"}:  # gradio 3 Image with a tool: the picture, with painted strokes counted as white
        image, mask = d.get("image"), d.get("mask")
        if image is None and mask is None:
            raise ChangeMapError(f"no {what} was given")
        values = None if image is None else load_change_map(_leaf(image, what), what=what)
        if mask is not None:
            strokes = load_change_map(_leaf(mask, what), what=f"{what} strokes")
            if values is None:
                return strokes
            if strokes.shape != values.shape:
                raise ChangeMapError(f"the {what} and its painted strokes have different sizes")
            values = np.maximum(values, strokes)
        return values
    raise ChangeMapError(
        f"the {what} is a dict with keys {sorted(map(str, keys))}; expected gradio's "
        "{'image', 'mask'} or {'background', 'layers', 'composite'}"
    )


def _leaf(value: Any, what: str) -> Any:
    """A picture inside gradio's dict: never another dict (a nested payload could recurse without end)."""
    if isinstance(value, Mapping):
        raise ChangeMapError(f"the {what} dict holds another dict where a picture belongs")
    return value


def load_rgba(source: Any, what: str) -> Image.Image:
    """Decode ``source`` (as :func:`load_change_map` accepts) into an RGBA picture, for compositing editor layers."""
    if isinstance(source, Image.Image):
        return source.convert("RGBA")
    if isinstance(source, np.ndarray):
        return Image.fromarray((_from_array(source, what) * 255 + 0.5).astype(np.uint8), "L").convert("RGBA")
    if isinstance(source, str):
        return _open_image(_decode_base64(source, what), what).convert("RGBA")
    if isinstance(source, (bytes, bytearray)):
        return _open_image(bytes(source), what).convert("RGBA")
    raise ChangeMapError(f"the {what} layer has an unsupported type {type(source).__name__}")


def _from_pil(image: Image.Image, what: str) -> np.ndarray:
    _check_size(image.size, what)
    image = ImageOps.exif_transpose(image)
    if image.mode == "1":
        return np.asarray(image, dtype=bool).astype(np.float32)
    # in bands of rows, so that the conversion's temporaries (int64 luminance sums, float64 quotients) never
    # exist for the whole picture: see BYTES_PER_PIXEL
    width, height = image.size
    out = np.empty((height, width), dtype=np.float32)
    rows = max(1, BAND_PIXELS // width)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        out[top : top + band.height] = _from_band(band, what)
    return out


def _from_band(band: Image.Image, what: str) -> np.ndarray:
    mode = band.mode
    if mode == "F":
        return _normalise_float(np.asarray(band), what)
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(band)
        if mode == "I" and values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
            raise ChangeMapError(
                f"the {what} is a 32-bit integer image with values outside 0..65535; save it as 8- or 16-bit grey"
            )
        return _normalise_int(values.astype(np.int64), 65535)
    if mode in ("L", "RGB", "RGBA"):
        return _from_array(np.asarray(band), what)
    if mode in ("LA", "La"):
        return _from_array(np.asarray(band.convert("LA")), what)
    if mode in ("P", "PA", "RGBa", "RGBX"):
        return _from_array(np.asarray(band.convert("RGBA")), what)
    try:  # CMYK, YCbCr, LAB, HSV: as Pillow turns them into RGB
        rgb = band.convert("RGB")
    except (ValueError, OSError) as e:
        raise ChangeMapError(f"the {what} has an unsupported image mode {mode!r}") from e
    return _from_array(np.asarray(rgb), what)


def _from_array(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ChangeMapError(
            f"the {what} array has shape {array.shape}; expected HxW or HxWxC with C in 1, 2 (grey+alpha), "
            "3 (RGB) or 4 (RGBA)"
        )
    _check_size((array.shape[1], array.shape[0]), what)
    if array.dtype == bool:
        array = array.astype(np.uint8)
        full = 1
    elif array.dtype == np.uint8:
        full = 255
    elif array.dtype == np.uint16:
        full = 65535
    elif np.issubdtype(array.dtype, np.floating):
        return _float_channels(array.astype(np.float64, copy=False), what)
    else:
        raise ChangeMapError(
            f"the {what} array has dtype {array.dtype}; "
            "use uint8 (0..255), uint16 (0..65535), bool, or floats in [0, 1]"
        )
    if array.ndim == 2:
        return _normalise_int(array, full)
    ints = array.astype(np.int64)
    channels = ints.shape[2]
    if channels in (3, 4):
        grey = ints[:, :, 0] * _LUMA[0] + ints[:, :, 1] * _LUMA[1] + ints[:, :, 2] * _LUMA[2]
        scale = 1000 * full
    else:
        grey = ints[:, :, 0]
        scale = full
    if channels in (2, 4):
        grey = grey * ints[:, :, -1]
        scale *= full
    return (grey / float(scale)).astype(np.float32)


def _float_channels(array: np.ndarray, what: str) -> np.ndarray:
    _check_finite(array, what)
    if array.ndim == 2:
        return _normalise_float(array, what)
    channels = array.shape[2]
    if channels in (3, 4):
        grey = array[:, :, 0] * 0.299 + array[:, :, 1] * 0.587 + array[:, :, 2] * 0.114
    else:
        grey = array[:, :, 0]
    if channels in (2, 4):
        grey = grey * array[:, :, -1]
    return _normalise_float(grey, what)


_LEVELS_8BIT = (np.arange(256) / 255.0).astype(np.float32)  # a lookup is 3x faster than dividing 16M pixels


def _normalise_int(values: np.ndarray, full: int) -> np.ndarray:
    if full == 255 and values.dtype == np.uint8:
        return _LEVELS_8BIT[values]
    return (values / float(full)).astype(np.float32)


def _normalise_float(values: np.ndarray, what: str) -> np.ndarray:
    _check_finite(values, what)
    lo, hi = float(values.min()), float(values.max())
    tolerance = 1e-6
    if lo < -tolerance or hi > 1 + tolerance:
        raise ChangeMapError(
            f"the {what} has float values in [{lo:g}, {hi:g}]; float maps must lie in [0, 1] "
            "(for 0..255 data use uint8)"
        )
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def _check_finite(values: np.ndarray, what: str) -> None:
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ChangeMapError(f"the {what} has {bad} NaN or infinite values")
