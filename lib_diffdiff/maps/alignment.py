"""Bring a change map onto the pixels the WebUI samples: the init image's frame, the processing frame (resize mode or
the "only masked" crop), and the latent grid; and build the soft-inpaint map from an inpaint mask."""

from __future__ import annotations

import numpy as np

from ..errors import ChangeMapError
from .transforms import ResizeMode, crop, gaussian_blur, resize_to

ASPECT_TOLERANCE = 0.01


def fit_to_image(m: np.ndarray, width: int, height: int, what: str = "change map") -> np.ndarray:
    """The map at the init image's size. A map of another size but the same aspect ratio (within 1 %) is scaled; a
    different aspect ratio is an error, since no stretch would put the map on the pixels the user painted it for."""
    mh, mw = m.shape
    if (mw, mh) == (width, height):
        return m
    if abs((mw / mh) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise ChangeMapError(
            f"the {what} is {mw}x{mh} but the image is {width}x{height}; give a map of the image's size "
            "(or at least its aspect ratio)"
        )
    return resize_to(m, width, height)


def to_processing_frame(
    m: np.ndarray, width: int, height: int, resize_mode: int, crop_box: tuple[int, int, int, int] | None
) -> np.ndarray:
    """The map as the WebUI transforms the init image (``StableDiffusionProcessingImg2Img.init``): with an "only
    masked" crop, cut to the crop box and fitted with resize mode 2; otherwise resized with the img2img resize mode."""
    if crop_box is not None:
        return resize_to(crop(m, crop_box), width, height, ResizeMode.RESIZE_AND_FILL)
    return resize_to(m, width, height, resize_mode)


def soft_inpaint_map(mask: np.ndarray, softness: float, invert: bool = False) -> np.ndarray:
    """Soft inpainting (paper 4.1): the inpaint mask, binarised as the WebUI does (above 128 of 255), optionally
    inverted ("Inpaint not masked"), Gaussian-blurred by ``softness`` pixels."""
    binary = (mask > 128.0 / 255.0).astype(np.float32)
    if invert:
        binary = 1.0 - binary
    if not binary.any():
        raise ChangeMapError("soft inpaint needs an inpaint mask with something painted on it")
    return gaussian_blur(binary, softness)


def keep_mask(m: np.ndarray) -> np.ndarray:
    """uint8 255 where the map asks for no change at all: those pixels are pasted back from the input."""
    return np.where(m <= 0.0, 255, 0).astype(np.uint8)
