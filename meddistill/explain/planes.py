"""Volumes shown as planes: three orthogonal planes through a volume, the maps overlaid on each, the slice where
each map peaks, and a window/level for the display (Explain, Review and the model card).

Axes follow the volume as read (``meddistill.data.volumes``: slice axis first, RAS for NIfTI and DICOM series):
axial planes cut the first axis (D), coronal the second (H), sagittal the third (W).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from meddistill.explain.overlay import overlay

PLANES = ("axial", "coronal", "sagittal")  # the plane cutting axis 0, 1 and 2 of a (D, H, W) volume


def map_on_volume(heat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A map (S, S, S) in [0, 1] resampled (trilinear) to the volume's shape (D, H, W), so it lies on the stored
    voxels."""
    if tuple(heat.shape) == tuple(shape):
        return np.asarray(heat, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    return F.interpolate(x, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()


def peak(heat: np.ndarray) -> tuple[int, int, int]:
    """The (d, h, w) voxel where a map is largest: the slice of each plane where it peaks (the middle of the
    volume for a flat map, which has no peak)."""
    if float(np.ptp(heat)) == 0.0:
        return tuple(n // 2 for n in heat.shape)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(heat)), heat.shape))


def plane(volume: np.ndarray, name: str, index: int) -> np.ndarray:
    """Slice ``index`` of plane ``name`` (``PLANES``) of a (D, H, W) array, shown with the superior side (high D)
    up in the coronal and sagittal planes."""
    axis = PLANES.index(name)
    index = int(np.clip(index, 0, volume.shape[axis] - 1))
    cut = np.take(volume, index, axis=axis)
    return cut if axis == 0 else cut[::-1]


def window(image: np.ndarray, center: float, width: float) -> np.ndarray:
    """A uint8 slice shown through a window (center and width in its 0..255 values), as a radiologist's
    window/level: values below ``center - width/2`` black, above ``center + width/2`` white."""
    low = center - width / 2
    scaled = (image.astype(np.float32) - low) / max(width, 1.0)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def plane_views(
    volume: np.ndarray,
    maps: dict[str, np.ndarray],
    name: str,
    index: int,
    opacity: float = 0.45,
    center: float = 127.5,
    width: float = 255.0,
) -> dict[str, np.ndarray]:
    """The scan's slice and each model's map overlaid on it, for one plane and slice.

    Args:
        volume: (D, H, W) uint8 volume as stored.
        maps: ``{role: (D, H, W) map in [0, 1]}`` (``map_on_volume``); all on one colour scale, 0 to 1.
        name: A plane from ``PLANES``.
        index: The slice along that plane's axis.
        opacity: Weight of the maps over the scan.
        center: Window level of the display (0..255).
        width: Window width of the display.

    Returns:
        ``{"scan": (h, w) uint8, role: (h, w, 3) uint8 overlay, ...}``.
    """
    scan = window(plane(volume, name, index), center, width)
    views = {"scan": scan}
    for role, heat in maps.items():
        views[role] = overlay(scan, plane(heat, name, index), opacity)
    return views


def representative_slice(volume: np.ndarray, teacher_map: np.ndarray, student_map: np.ndarray) -> dict:
    """The axial slice through the voxel where the teacher's map peaks, with both maps on it (the model card's
    picture of a volume): ``{"index", "scan" (h, w) uint8, "teacher" and "student" (h, w, 3) uint8}``."""
    maps = {"teacher": map_on_volume(teacher_map, volume.shape), "student": map_on_volume(student_map, volume.shape)}
    index = peak(maps["teacher"])[0]
    return {"index": index, **plane_views(volume, maps, "axial", index)}


def peak_sentence(label: str, heat: np.ndarray) -> str:
    """'The teacher's map peaks at axial slice 14, coronal 9, sagittal 20.' (or says that it is flat)"""
    if float(np.ptp(heat)) == 0.0:
        return f"{label} is flat: its last feature map has one cell at this cube size, so it shows no place."
    d, h, w = peak(heat)
    return f"{label} peaks at axial slice {d}, coronal {h}, sagittal {w}."
