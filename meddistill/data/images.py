"""Decoding of uploaded PNG, JPEG, BMP and TIFF images into uint8 arrays.

Only those four formats are opened (a misnamed GIF or WebP is refused), every
image is decoded fully so truncated files fail, and images with more than
``MAX_IMAGE_PIXELS`` pixels are refused as possible decompression bombs.

Conversion rules of :func:`read_image`:

* grey modes (``1``, ``L``, ``LA``, greyscale palettes) give ``(H, W)``;
  ``LA`` loses its alpha channel;
* 16-bit, 32-bit integer and float images (``I;16*``, ``I``, ``F``) give
  ``(H, W)`` scaled by the image's own minimum and maximum to 0..255, so a
  16-bit scan that only uses values 0..4095 keeps its full contrast; a constant
  image becomes all zeros and non-finite floats become 0;
* colour modes (``RGB``, ``RGBA``, colour palettes, ``CMYK``, ``YCbCr``...)
  give ``(H, W, 3)``; alpha is dropped, the stored colour values are kept;
* multi-page TIFF: only the first page is read.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from meddistill.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default, set explicitly.

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_DEEP_MODES = frozenset({"I", "F"})
_THUMB = (256, 256)
_GREY_TOLERANCE = 3  # largest channel difference still called grey (JPEG noise)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")

_T = TypeVar("_T")


def _is_grey_mode(mode: str) -> bool:
    return mode in _GREY_MODES or mode.startswith("I;16")


def _grey_palette(im: Image.Image) -> bool:
    """Tell whether every palette entry of a ``P``/``PA`` image is grey."""
    palette = im.getpalette("RGB") or []
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def _bomb_error(name: str, pixels: int | None) -> DataError:
    count = f"{pixels} pixels" if pixels is not None else "too many pixels"
    return DataError(
        f'Image "{name}" has {count}, more than the limit of {MAX_IMAGE_PIXELS}; downscale it before uploading.'
    )


def _with_image(path: str | os.PathLike[str], action: Callable[[Image.Image], _T]) -> _T:
    """Open ``path`` with all safety checks and run ``action`` on the image.

    Every failure of Pillow (or of the file system) becomes a DataError naming
    the file.
    """
    path = Path(path)
    name = path.name
    try:
        if not path.is_file():
            raise DataError(f'Image "{name}" does not exist or is not a file; upload it again.')
        if path.stat().st_size == 0:
            raise DataError(f'Image "{name}" is empty (0 bytes); upload a complete copy.')
    except OSError as exc:
        raise DataError(f'Image "{name}" cannot be read ({exc.strerror or exc}); check its permissions.') from exc
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_FORMATS) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _bomb_error(name, width * height)
                if width <= 0 or height <= 0:
                    raise DataError(
                        f'Image "{name}" is {width}x{height} pixels, which is empty; '
                        "re-export it or remove it from the dataset."
                    )
                return action(im)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = _BOMB_PIXELS.search(str(exc))
        raise _bomb_error(name, int(match.group(1)) if match else None) from exc
    except UnidentifiedImageError as exc:
        raise DataError(
            f'"{name}" is not a PNG, JPEG, BMP or TIFF image (it may be misnamed or '
            "damaged); convert it to PNG or remove it from the dataset."
        ) from exc
    except PermissionError as exc:
        raise DataError(f'Image "{name}" cannot be read (permission denied); check its permissions.') from exc
    except Exception as exc:  # any decoder failure on untrusted bytes means corrupt
        raise DataError(
            f'Image "{name}" is truncated or corrupt and could not be decoded; '
            "re-export it or remove it from the dataset."
        ) from exc


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max scale a numeric array to 0..255 uint8 (non-finite values -> 0)."""
    values = values.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    values = np.where(finite, values, 0.0)
    low, high = values[finite].min(), values[finite].max()
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _decode(im: Image.Image) -> np.ndarray:
    """Fully decode the first frame of ``im`` into a uint8 array."""
    im.load()
    mode = im.mode
    if mode in _DEEP_MODES or mode.startswith("I;16"):
        return _scale_to_uint8(np.asarray(im))
    if mode in ("P", "PA"):
        im = im.convert("L") if _grey_palette(im) else im.convert("RGBA")
        mode = im.mode
    if _is_grey_mode(mode):
        if mode in ("LA", "La"):
            im = im.getchannel(0)
        elif mode != "L":
            im = im.convert("L")
    elif mode != "RGB":
        im = im.convert("RGBA" if mode.endswith(("A", "a")) else "RGB")
    array = np.array(im, dtype=np.uint8)
    if array.ndim == 3:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one PNG, JPEG, BMP or TIFF file into a uint8 array.

    See the module docstring for how each Pillow mode is converted; 16-bit
    greyscale is scaled by its actual minimum and maximum.

    Args:
        path: The image file.

    Returns:
        A C-contiguous, writable ``uint8`` array of shape ``(H, W)`` for grey
        images or ``(H, W, 3)`` for colour images.

    Raises:
        DataError: The file is missing, empty, not one of the four formats,
            truncated or corrupt, zero-sized, or has more than
            ``MAX_IMAGE_PIXELS`` pixels.
    """
    return _with_image(path, _decode)


def _looks_grey(im: Image.Image) -> bool:
    mode = im.mode
    if _is_grey_mode(mode):
        return True
    if mode in ("P", "PA"):
        return _grey_palette(im)
    im.draft("RGB", _THUMB)  # JPEG: decode at reduced size, no-op elsewhere
    im.load()
    thumb = im.convert("RGB")
    thumb.thumbnail(_THUMB)
    rgb = np.asarray(thumb, dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return bool(spread.max(initial=0) <= _GREY_TOLERANCE)


def image_is_grey(path: str | os.PathLike[str]) -> bool:
    """Tell whether an image is greyscale, cheaply.

    Grey modes (``1``, ``L``, ``LA``, ``I``, ``I;16``, ``F``) and greyscale
    palettes are answered from the header alone. Colour images are decoded to a
    256-pixel thumbnail (JPEGs at reduced size) and count as grey when no pixel's
    channels differ by more than 3 levels, which absorbs JPEG rounding noise.

    Args:
        path: The image file.

    Returns:
        True when the image carries no colour information.

    Raises:
        DataError: For the same reasons as :func:`read_image`.
    """
    return _with_image(path, _looks_grey)
