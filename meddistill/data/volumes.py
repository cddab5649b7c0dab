"""Volumes (CT, MRI): the dataset type beside the 2D one, NIfTI reading, and the intensity rules.

A ``VolumeDataset`` is a ``MedDataset`` whose splits hold (D, H, W) uint8 volumes (``spatial_dims`` 3): the arrays
of a MedMNIST 3D ``.npz``, NIfTI files (``.nii``, ``.nii.gz``, read with nibabel) or DICOM series
(``meddistill.data.series``). The models see each volume resampled to their cube S x S x S (trilinear,
``meddistill.data.tensors.volume_tensor``), which the summary states.

Intensities become uint8 as the 2D path's pixels are: CT (Hounsfield units, from a DICOM series whose Modality is
CT, or a NIfTI whose values reach below -500) through the window -1000..1000 HU; anything else (MR) between its own
0.5th and 99.5th percentiles, as MONAI's ``ScaleIntensityRangePercentiles`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meddistill.data.dataset import MedDataset
from meddistill.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
CT_WINDOW = (-1000.0, 1000.0)  # Hounsfield units mapped to 0..255
PERCENTILES = (0.5, 99.5)  # the range of any other volume mapped to 0..255
HU_FLOOR = -500.0  # a volume whose values reach below this is read as CT in Hounsfield units


def is_nifti(path: Path) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``)."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def volume_stem(path: Path) -> str:
    """The name of a volume file without ``.nii`` / ``.nii.gz``."""
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass
class VolumeDataset(MedDataset):
    """A ``MedDataset`` of volumes: every split's ``image(i)`` is (D, H, W) uint8 and ``image_size`` is the largest
    side in voxels. ``provenance["volumes"]`` records the shape, the voxel spacing and orientation as read, and how
    the intensities were mapped."""

    def summary(self) -> dict:
        return {**super().summary(), "volumes": self.provenance.get("volumes", {})}


def array_volumes(shape: tuple[int, ...]) -> dict:
    """The volume record of arrays stored as they are (a MedMNIST 3D file: no spacing, no orientation)."""
    return {"shape": [int(n) for n in shape], "spacing_mm": None, "orientation": "as stored", "intensity": "uint8"}


def volume_lines(summary: dict) -> list[str]:
    """What the Data page and ``check-data`` say of a volume dataset's voxels, and the cube the models see."""
    record = summary.get("volumes") or {}
    shape = " x ".join(str(n) for n in record.get("shape", [])) or "various"
    spacing = record.get("spacing_mm")
    spacing_text = " x ".join(f"{v:g}" for v in spacing) + " mm" if spacing else "spacing not recorded in the file"
    lines = [
        f"volumes (3D): {shape} voxels (D x H x W), {spacing_text}, orientation {record.get('orientation', '?')}, "
        f"intensities {record.get('intensity', '?')}"
    ]
    side = summary.get("train_image_size")
    if side:
        lines.append(f"resampled to {side} x {side} x {side} voxels for the models (trilinear)")
    return lines


def to_uint8(values: np.ndarray, ct: bool) -> tuple[np.ndarray, str]:
    """Map a volume's intensities to uint8 (see the module docstring); returns (volume, the rule used)."""
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if ct:
        low, high = CT_WINDOW
        rule = f"CT window {low:g}..{high:g} HU"
    else:
        low, high = (float(v) for v in np.percentile(values, PERCENTILES))
        rule = f"{PERCENTILES[0]:g}..{PERCENTILES[1]:g} percentile range per volume"
    scaled = (np.clip(values, low, high) - low) / max(high - low, 1e-6)
    return np.round(scaled * 255).astype(np.uint8), rule


def read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...], str]:
    """A NIfTI file as (D, H, W) float32 values in the canonical RAS orientation, its voxel spacing and its
    original orientation code.

    The array is reoriented with ``nibabel.as_closest_canonical`` (axes R, A, S), then put slice-first: D runs
    along S (inferior to superior), H along A, W along R; the spacing is in the same order, in mm.

    Raises:
        DataError: not a readable NIfTI file, or not one 3D volume.
    """
    import nibabel  # deferred: only NIfTI files need it

    try:
        image = nibabel.load(str(path))
        original = "".join(nibabel.aff2axcodes(image.affine))
        canonical = nibabel.as_closest_canonical(image)
        data = np.asanyarray(canonical.dataobj, dtype=np.float32)
        zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    except Exception as error:  # noqa: BLE001 - nibabel raises many kinds for a damaged file
        raise DataError(
            f"{path.name} is not a readable NIfTI file ({type(error).__name__}); re-export it as .nii or .nii.gz."
        ) from None
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(
            f"{path.name} has shape {data.shape}; MedDistill reads one 3D volume per NIfTI file (split a 4D series "
            "into one file per volume)."
        )
    # (R, A, S) -> (S, A, R), the slice axis first as in a MedMNIST 3D array
    return np.ascontiguousarray(data.transpose(2, 1, 0)), (zooms[2], zooms[1], zooms[0]), original


def decode_nifti(path: Path) -> np.ndarray:
    """A NIfTI file as a canonical (D, H, W) uint8 volume (``read_nifti``, then ``to_uint8``)."""
    values, _, _ = read_nifti(path)
    return to_uint8(values, ct=float(values.min()) < HU_FLOOR)[0]


def nifti_record(paths: list[Path]) -> dict:
    """The volume record of NIfTI files, from the first (shape, spacing and orientation; all are reoriented)."""
    values, spacing, original = read_nifti(paths[0])
    _, rule = to_uint8(values, ct=float(values.min()) < HU_FLOOR)
    shapes = {tuple(read_nifti(p)[0].shape) for p in paths[:20]}
    return {
        "shape": list(values.shape) if len(shapes) == 1 else [],
        "spacing_mm": [round(s, 4) for s in spacing],
        "orientation": f"RAS (canonical; {paths[0].name} was stored {original})",
        "intensity": rule,
    }
