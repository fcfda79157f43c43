"""Text on pictures with any Pillow the WebUIs ship (A1111 1.10 has Pillow 9.5, whose default font has no size)."""

from __future__ import annotations

from PIL import ImageDraw, ImageFont


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A font of about ``size`` pixels: Pillow's own scalable default (Pillow >= 10.1), else DejaVu Sans from the
    system, else Pillow's small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        pass
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def centred_text(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, typeface, fill) -> None:
    """Draw ``text`` centred on ``centre`` (without ``anchor=``, which bitmap fonts refuse)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=typeface)
    draw.text((centre[0] - (left + right) / 2, centre[1] - (top + bottom) / 2), text, fill=fill, font=typeface)
