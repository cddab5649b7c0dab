"""Read DICOM files into images a classifier (or a window/level viewer) can use.

One file is read at a time. Every failure a user can fix raises ``DataError`` with
one sentence naming the file; pydicom and numpy exceptions never escape. See
``docs/dicom.md`` for the processing steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder
from pydicom.pixels import pixel_array as _pixel_array
from pydicom.uid import UID

from meddistill.data.deid import safe_metadata
from meddistill.errors import DataError

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "Lung": (-600.0, 1500.0),
    "Mediastinum": (40.0, 400.0),
    "Soft tissue": (40.0, 400.0),
    "Bone": (400.0, 1800.0),
    "Brain": (40.0, 80.0),
    "Abdomen": (60.0, 400.0),
}
"""CT window presets in Hounsfield units: name -> (center, width)."""

DICOM_SUFFIXES = (".dcm", ".dicom")  # file names taken as DICOM (files without a suffix are sniffed)

# Attributes that steer pixel processing; enhanced multi-frame files keep some of
# them per frame in functional group sequences instead of the top level.

_VIEW_KEYWORDS = tuple(
    """
    PhotometricInterpretation SamplesPerPixel BitsAllocated BitsStored PixelRepresentation RescaleSlope
    RescaleIntercept RescaleType ModalityLUTSequence WindowCenter WindowWidth VOILUTFunction
    VOILUTSequence PixelPaddingValue PixelPaddingRangeLimit
    """.split()
)
_FRAME_SEQUENCES = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass
class DicomImage:
    """A decoded DICOM image for display.

    Attributes:
        pixels: float32 array, (H, W) or (H, W, 3), in modality units (e.g.
            Hounsfield units for CT) after the modality LUT, before windowing.
        image: uint8 array, (H, W) or (H, W, 3), ready to show (windowed, with
            MONOCHROME1 inverted so that higher is brighter).
        default_center: The file's own window center, if it has one.
        default_width: The file's own window width, if it has one.
        metadata: Non-identifying attributes only (``deid.safe_metadata``).
        inverted: True for MONOCHROME1 images, whose windowed values must be
            inverted (``render`` does this).
    """

    pixels: np.ndarray
    image: np.ndarray
    default_center: float | None
    default_width: float | None
    metadata: dict[str, str] = field(default_factory=dict)
    inverted: bool = False

    def render(self, center: float, width: float) -> np.ndarray:
        """Window ``pixels`` for display.

        Args:
            center: Window center in modality units.
            width: Window width in modality units (>= 1).

        Returns:
            uint8 array with the shape of ``pixels``.
        """
        out = apply_window(self.pixels, center, width)
        return 255 - out if self.inverted else out


def apply_window(pixels: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply a DICOM VOI window (PS3.3 C.11.2.1.2) and return uint8 values.

    Args:
        pixels: Array of any shape in modality units.
        center: Window center.
        width: Window width; at least 1 for LINEAR, above 0 otherwise.
        function: VOI LUT Function: "LINEAR" (default), "LINEAR_EXACT" or "SIGMOID".

    Returns:
        uint8 array of the same shape: 0 below the window, 255 above it, linear
        (rounded to nearest) in between.

    Raises:
        ValueError: The width is out of range.
    """
    x = np.asarray(pixels, dtype=np.float64)
    center, width, function = float(center), float(width), function.upper()
    if not np.isfinite(center) or not np.isfinite(width):
        raise ValueError("window center and width must be finite numbers")
    if function == "SIGMOID" and width > 0:
        y = 255.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    elif function == "LINEAR_EXACT" and width > 0:
        y = ((x - center) / width + 0.5) * 255.0
    elif function not in ("SIGMOID", "LINEAR_EXACT") and width >= 1:
        if width == 1:
            y = np.where(x > center - 0.5, 255.0, 0.0)
        else:
            y = ((x - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    else:
        raise ValueError(f"window width {width} is too small for {function} windowing")
    return np.clip(np.rint(np.nan_to_num(y)), 0, 255).astype(np.uint8)


def is_dicom(path: str | os.PathLike) -> bool:
    """Return True if ``path`` is a DICOM file ("DICM" at byte 128).

    Args:
        path: Any path; missing or unreadable files give False.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    try:
        pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except Exception:
        return False
    return True


def read_dicom_pixels(path: str | os.PathLike) -> np.ndarray:
    """Decode one DICOM file into an image for a classifier.

    Args:
        path: A DICOM file. Multi-frame files give their middle frame.

    Returns:
        uint8 array, (H, W) for monochrome or (H, W, 3) RGB for colour.

    Raises:
        DataError: The file is missing, not DICOM, has no pixel data, uses a
            transfer syntax that cannot be decoded, or is corrupt or truncated.
    """
    return read_dicom_for_display(path).image


def read_dicom_for_display(
    path: str | os.PathLike, window_center: float | None = None, window_width: float | None = None
) -> DicomImage:
    """Decode one DICOM file for a window/level viewer.

    Args:
        path: A DICOM file. Multi-frame files give their middle frame.
        window_center: Window center for ``image``; used only with ``window_width``.
        window_width: Window width (>= 1); used only with ``window_center``.

    Returns:
        A ``DicomImage``; without a given window, ``image`` uses the file's VOI LUT
        or first window, else min-max scaling.

    Raises:
        DataError: As ``read_dicom_pixels``, or the given window width is below 1.
    """
    name = Path(path).name
    ds = _read_dataset(path, name)
    try:
        return _render(ds, name, window_center, window_width)
    except DataError:
        raise
    except MemoryError as exc:
        raise DataError(f"{name} is too large to decode in memory; downsample it or free some memory.") from exc
    except Exception as exc:
        raise DataError(
            f"{name} has corrupt or truncated pixel data; re-export it from the scanner or PACS, or remove it."
        ) from exc


def _read_dataset(path: str | os.PathLike, name: str) -> Dataset:
    """Read ``path`` and check it holds pixel data that can be decoded."""
    if Path(path).is_dir():
        raise DataError(f"{name} is a folder, not a DICOM file; pass one file at a time.")
    if not Path(path).exists():
        raise DataError(f"{name} does not exist; check the path.")
    if not is_dicom(path):
        raise DataError(f"{name} is not a DICOM file (no DICM preamble); remove it or convert it to DICOM.")
    try:
        ds = pydicom.dcmread(path, force=False)
    except Exception as exc:
        raise DataError(
            f"{name} is a corrupt or truncated DICOM file; re-export it from the scanner or PACS, or remove it."
        ) from exc
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise DataError(
            f"{name} has no pixel data (it may be truncated, or hold a report or other non-image object); remove it "
            "from the images."
        )
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not syntax:
        raise DataError(f"{name} has no transfer syntax in its header; re-export it from the scanner or PACS as DICOM.")
    syntax = UID(str(syntax))
    try:
        decoder = get_decoder(syntax)
    except Exception as exc:
        raise DataError(
            f"{name} uses the {syntax.name} transfer syntax, which cannot be decoded; convert it to uncompressed "
            "DICOM (e.g. `gdcmconv --raw`)."
        ) from exc
    if not decoder.is_available:
        package = (
            "pylibjpeg-openjpeg"
            if "2000" in syntax.name or "HTJ2K" in syntax.name
            else "pylibjpeg-rle"
            if "RLE" in syntax.name
            else "pylibjpeg-libjpeg"
        )
        raise DataError(
            f"{name} is compressed with {syntax.name} and no decoder is installed; run `pip install pylibjpeg "
            f"{package}` or convert it to uncompressed DICOM."
        )
    return ds


def _frame_view(ds: Dataset, index: int) -> Dataset:
    """Collect the attributes that steer processing of frame ``index``."""
    view = Dataset()
    for keyword in _VIEW_KEYWORDS:
        if keyword in ds:
            view[keyword] = ds[keyword]
    groups = list(ds.get("SharedFunctionalGroupsSequence") or [])[:1]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if index < len(per_frame):
        groups.append(per_frame[index])
    for group in groups:
        for keyword in _FRAME_SEQUENCES:
            items = group.get(keyword)
            if items:
                for elem in items[0]:
                    view[elem.tag] = elem
    return view


def _first(value) -> float | None:
    """First value of a possibly multi-valued numeric attribute, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        if not value:
            return None
        value = value[0]
    number = float(value)
    return number if np.isfinite(number) else None


def _minmax(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Scale ``x`` to uint8 using the min and max outside ``mask``."""
    valid = x[~mask] if mask is not None and not mask.all() else x
    valid = valid[np.isfinite(valid)]
    if valid.size == 0:
        return np.zeros(x.shape, dtype=np.uint8)
    lo, hi = float(valid.min()), float(valid.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    y = np.nan_to_num((x - lo) * scale)
    if mask is not None:
        y[mask] = 0.0
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _render(ds: Dataset, name: str, center: float | None, width: float | None) -> DicomImage:
    """Decode the (middle) frame of ``ds`` and build the ``DicomImage``."""
    frames = int(ds.get("NumberOfFrames") or 1)
    index = frames // 2
    raw = _pixel_array(ds, index=index if frames > 1 else None)
    view = _frame_view(ds, index)
    photometric = str(view.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    manual = center is not None and width is not None
    if manual and not float(width) >= 1:
        raise DataError(f"The window width {width} for {name} is invalid; use a width of at least 1.")
    if raw.ndim == 3 or photometric == "PALETTE COLOR":  # colour: no LUTs apply
        if photometric == "PALETTE COLOR":
            raw = apply_color_lut(raw, ds)
            bits = 8 if raw.dtype == np.uint8 else 16
        else:
            bits = int(view.get("BitsStored") or view.get("BitsAllocated") or 8)
            bits = bits if 1 <= bits <= 32 else 8
        pixels = raw.astype(np.float32)
        if manual:
            image = apply_window(pixels, center, width)
        else:
            scaled = pixels.astype(np.float64) * (255.0 / (2.0**bits - 1.0))
            image = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return DicomImage(pixels, image, None, None, safe_metadata(ds))

    mask = None
    padding = view.get("PixelPaddingValue")
    if padding is not None and not isinstance(padding, (bytes, list)):
        limit = view.get("PixelPaddingRangeLimit", padding)
        lo, hi = sorted((float(padding), float(limit)))
        mask = (raw >= lo) & (raw <= hi)
    modality = apply_modality_lut(raw, view)
    pixels = modality.astype(np.float32)
    inverted = photometric == "MONOCHROME1"
    file_center = _first(view.get("WindowCenter"))
    file_width = _first(view.get("WindowWidth"))
    function = str(view.get("VOILUTFunction") or "LINEAR")
    if manual:
        image = apply_window(pixels, center, width)
    elif view.get("VOILUTSequence"):
        item = view.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2]) if "LUTDescriptor" in item else 16
        bits = bits if 1 <= bits <= 16 else 16
        out = apply_voi(np.rint(modality).astype(np.int64), view).astype(np.float64)
        image = np.clip(np.rint(out * 255.0 / (2.0**bits - 1.0)), 0, 255)
        image = image.astype(np.uint8)
    elif (
        file_center is not None
        and file_width is not None
        and (file_width >= 1 or (file_width > 0 and function != "LINEAR"))
    ):
        image = apply_window(pixels, file_center, file_width, function)
    else:
        image = _minmax(pixels, mask)
    if inverted:
        image = 255 - image
    if mask is not None:
        image[mask] = 0  # padding stays black
    return DicomImage(pixels, image, file_center, file_width, safe_metadata(ds), inverted)
