"""Heat maps blended on scans, for the pages and ``meddistill explain``."""

from __future__ import annotations

import numpy as np
from PIL import Image


def _jet(values: np.ndarray) -> np.ndarray:
    """Jet colormap: (...) values in [0, 1] -> (..., 3) float in [0, 1] (blue, cyan, yellow, red)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks at 3/4, 1/2, 1/4
    return np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)


COLORMAPS = {"jet": _jet}


def overlay(
    image_uint8: np.ndarray, saliency_map: np.ndarray, opacity: float = 0.45, colormap: str = "jet"
) -> np.ndarray:
    """Blend a heat map on a scan.

    Args:
        image_uint8: (H, W) grey or (H, W, 3) colour uint8 scan.
        saliency_map: (h, w) map in [0, 1]; resized bilinearly to (H, W).
        opacity: Weight of the heat map, in [0, 1].
        colormap: Name in ``COLORMAPS`` (only ``"jet"``).

    Returns:
        (H, W, 3) uint8 image.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of: {', '.join(COLORMAPS)}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    image = np.asarray(image_uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {image.shape}")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    heat = np.nan_to_num(np.asarray(saliency_map, dtype=np.float32))
    if heat.ndim != 2:
        raise ValueError(f"saliency_map must be (h, w), got {heat.shape}")
    height, width = rgb.shape[:2]
    if heat.shape != (height, width):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((width, height), Image.BILINEAR))
    colour = COLORMAPS[colormap](heat) * 255.0
    blended = (1.0 - opacity) * rgb.astype(np.float64) + opacity * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def difference(map_a: np.ndarray, map_b: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where two maps in [0, 1] disagree, as an (H, W, 3) uint8 picture: red where ``map_a`` is higher, blue where
    ``map_b`` is, white where they agree (a diverging scale from -1 to 1), resized bilinearly to ``shape``."""
    a, b = (np.nan_to_num(np.asarray(m, dtype=np.float32)) for m in (map_a, map_b))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"the maps must be (h, w) of the same shape, got {a.shape} and {b.shape}")
    diff = a - b
    if diff.shape != tuple(shape):
        diff = np.asarray(Image.fromarray(diff, mode="F").resize((shape[1], shape[0]), Image.BILINEAR))
    d = np.clip(diff, -1.0, 1.0)[..., None]
    red, blue = np.array([214.0, 39.0, 40.0]), np.array([31.0, 119.0, 180.0])
    white = np.full(3, 255.0)
    rgb = np.where(d > 0, white + d * (red - white), white - d * (blue - white))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
