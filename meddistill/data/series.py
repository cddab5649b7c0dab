"""DICOM series read as volumes: files grouped by SeriesInstanceUID, ordered along the slice normal, checked.

A folder of DICOM files whose series have slices at ``MIN_SLICES`` or more distinct positions (ImagePositionPatient
along the slice normal) is a dataset of volumes; files of one series at one position (re-encodings, an X-ray's
views) stay 2D images. In a dataset of volumes there is one volume per series, its
label from its class folder (or the labels CSV row of its files), its patient key from the header (pseudonymised,
``meddistill.data.grouping``). Rules, checked on the headers before anything is trained:

* the slices of a series are ordered by ImagePositionPatient projected on the slice normal (the cross product of
  the two ImageOrientationPatient direction cosines), or by InstanceNumber where a slice has no position;
* every slice has the same orientation and the same rows x columns, and no two share a position;
* the gaps between neighbouring slices agree (within ``GAP_TOLERANCE`` of the median): a larger gap is a missing
  slice, and the series is refused with a sentence naming it;
* every file of a series carries the same label.

The pixels are the stored values with RescaleSlope / RescaleIntercept applied (Hounsfield units for CT), mapped
to uint8 as ``meddistill.data.volumes.to_uint8`` says. Only pixel values, spacing, orientation and the modality are
kept: no name, identifier or date from a header reaches the dataset, its summary or a run folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from meddistill.data.volumes import to_uint8
from meddistill.errors import DataError

GAP_TOLERANCE = 0.25  # a gap this much larger than the median gap is a missing slice
MIN_SLICES = 3  # distinct slice positions that make a series a volume
HEADER_TAGS = [
    "SeriesInstanceUID",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "InstanceNumber",
    "Modality",
    "PixelSpacing",
    "Rows",
    "Columns",
]


@dataclass(frozen=True)
class _Slice:
    path: Path
    series: str
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    instance: int | None
    modality: str
    spacing: tuple[float, float] | None
    shape: tuple[int, int]


def _header(path: Path) -> _Slice:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS, force=True)
    except Exception:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
        raise DataError(f"{path.name} is not a readable DICOM file; remove it or re-export the series.") from None

    def floats(keyword: str) -> tuple[float, ...] | None:
        value = getattr(ds, keyword, None)
        return tuple(float(v) for v in value) if value is not None and len(value) else None

    instance = getattr(ds, "InstanceNumber", None)
    spacing = floats("PixelSpacing")
    return _Slice(
        path=path,
        series=str(getattr(ds, "SeriesInstanceUID", "") or f"file:{path}"),
        position=floats("ImagePositionPatient"),
        orientation=floats("ImageOrientationPatient"),
        instance=int(instance) if instance not in (None, "") else None,
        modality=str(getattr(ds, "Modality", "") or ""),
        spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 else None,
        shape=(int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)),
    )


def _positions(slices: list[_Slice]) -> int:
    """Distinct positions along the slice normal among the slices that have a position and an orientation."""
    placed = [s for s in slices if s.position and s.orientation and len(s.orientation) == 6]
    if not placed:
        return 0
    normal = np.cross(np.array(placed[0].orientation[:3]), np.array(placed[0].orientation[3:]))
    return len({round(float(np.dot(normal, s.position)), 3) for s in placed})


def _ordered(slices: list[_Slice], name: str) -> tuple[list[_Slice], float | None]:
    """The slices of one series in order along the normal, and the slice spacing (None when ordered by number).

    Raises:
        DataError: mixed orientations or sizes, two slices at one position, or a missing slice.
    """
    orientations = {tuple(np.round(s.orientation, 4)) for s in slices if s.orientation}
    if len(orientations) > 1:
        raise DataError(
            f"Series {name} mixes slice orientations ({len(orientations)} different ImageOrientationPatient values); "
            "export each orientation as its own series."
        )
    if len({s.shape for s in slices}) > 1:
        raise DataError(
            f"Series {name} mixes slice sizes; every slice of a volume must have the same rows and columns."
        )
    if not orientations or any(s.position is None for s in slices):
        if any(s.instance is None for s in slices):
            raise DataError(
                f"Series {name} has slices with neither ImagePositionPatient nor InstanceNumber; its order cannot be "
                "known: re-export it with positions."
            )
        return sorted(slices, key=lambda s: s.instance), None
    row, column = np.array(next(iter(orientations))[:3]), np.array(next(iter(orientations))[3:])
    normal = np.cross(row, column)
    placed = sorted(slices, key=lambda s: float(np.dot(normal, s.position)))
    where = np.array([float(np.dot(normal, s.position)) for s in placed])
    gaps = np.diff(where)
    if len(gaps) and gaps.min() < 1e-3:
        raise DataError(f"Series {name} has two slices at the same position; remove the duplicate file.")
    if len(gaps):
        median = float(np.median(gaps))
        worst = int(np.argmax(gaps))
        if gaps[worst] > median * (1 + GAP_TOLERANCE):
            raise DataError(
                f"Series {name} has a gap of {gaps[worst]:.2f} mm between {placed[worst].path.name} and "
                f"{placed[worst + 1].path.name} where its slices are {median:.2f} mm apart: a slice is missing. Add "
                "it, or remove the series."
            )
    return placed, (float(np.median(gaps)) if len(gaps) else None)


@dataclass
class SeriesVolumes:
    """The series of a folder: each series' ordered files, by the first of them (which stands for the series in
    the splits); calling it with that file decodes the volume (D, H, W) uint8."""

    members: dict[Path, list[Path]] = field(default_factory=dict)
    modality: dict[Path, str] = field(default_factory=dict)
    record: dict = field(default_factory=dict)

    def __call__(self, path: Path) -> np.ndarray:
        files = self.members[path]
        slices = []
        for file in files:
            try:
                ds = pydicom.dcmread(file, force=True)
                values = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
            except Exception:  # noqa: BLE001 - a damaged or undecodable slice
                raise DataError(f"{file.name} (a slice of a series) cannot be decoded; re-export the series.") from None
            slices.append(values if values.ndim == 2 else values.mean(-1))
        return to_uint8(np.stack(slices), ct=self.modality[path] == "CT")[0]


def read_series(files: dict[str, list[Path]], labels: dict[str, list]) -> tuple[SeriesVolumes, dict, dict] | None:
    """Group each split's DICOM files into series; None when every series is one file (a dataset of 2D images).

    Args:
        files: Per split, the DICOM files of the layout.
        labels: Per split, each file's label (same order).

    Returns:
        (the decoder with every series, per split the first file of each series, per split their labels).

    Raises:
        DataError: series of several slices beside single-file ones, a series whose files carry different labels,
            or a series that ``_ordered`` refuses.
    """
    headers = {s: [_header(p) for p in paths] for s, paths in files.items()}
    by_series: dict[str, dict[str, list[tuple[_Slice, object]]]] = {}
    for split, found in headers.items():
        for header, label in zip(found, labels[split]):
            by_series.setdefault(split, {}).setdefault(header.series, []).append((header, label))
    groups = [members for series in by_series.values() for members in series.values()]
    volumetric = [_positions([h for h, _ in members]) >= MIN_SLICES for members in groups]
    if not any(volumetric):
        return None
    if not all(volumetric):
        single = next(m[0][0].path for m, is_volume in zip(groups, volumetric) if not is_volume)
        raise DataError(
            f"{single.name} is a 2D image (its series has fewer than {MIN_SLICES} slice positions) beside series of "
            "several slices; a dataset holds volumes or 2D images, not both: move the 2D images to another folder."
        )
    volumes, firsts, firsts_labels = SeriesVolumes(), {s: [] for s in files}, {s: [] for s in files}
    for split, series in by_series.items():
        for members in series.values():
            name = members[0][0].path.parent.name + "/" + members[0][0].path.name
            if len({str(label) for _, label in members}) > 1:
                raise DataError(f"Series {name} has files with different labels; one series is one volume, one label.")
            ordered, gap = _ordered([h for h, _ in members], name)
            first = ordered[0].path
            volumes.members[first] = [h.path for h in ordered]
            volumes.modality[first] = ordered[0].modality
            firsts[split].append(first)
            firsts_labels[split].append(members[0][1])
            if not volumes.record:
                pixel = ordered[0].spacing or (None, None)
                volumes.record = {
                    "shape": [len(ordered), *ordered[0].shape],
                    "spacing_mm": [round(v, 4) for v in (gap, *pixel)] if gap and pixel[0] else None,
                    "orientation": "DICOM series: slices ordered along the normal, rows and columns as stored",
                    "intensity": (
                        "CT window -1000..1000 HU"
                        if ordered[0].modality == "CT"
                        else "0.5..99.5 percentile range per volume"
                    ),
                    "modality": ordered[0].modality,
                }
    volumes.record["series"] = sum(len(f) for f in firsts.values())
    return volumes, firsts, firsts_labels
