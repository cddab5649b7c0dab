"""Scans uploaded on the Explain page: decoded for the models and, for DICOM, de-identified before anything is
written (only the de-identified copy is kept, content-addressed under ``MEDDISTILL_HOME/uploads``)."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from meddistill.data.deid import deidentify
from meddistill.data.dicom import DICOM_SUFFIXES, read_dicom_for_display
from meddistill.data.folder import decode_file
from meddistill.data.images import IMAGE_SUFFIXES
from meddistill.errors import DataError
from meddistill.io.atomic import atomic_write
from meddistill.io.content import bytes_hash
from meddistill.paths import UPLOADS_DIR, home_dir


@dataclass
class Scan:
    """An uploaded scan: the image for the models and, for DICOM, what the viewer needs."""

    name: str
    image: np.ndarray  # uint8 (H, W) or (H, W, 3)
    dicom: object | None = None  # meddistill.data.dicom.DicomImage (de-identified) or None


def scan_from_upload(data: bytes, filename: str) -> Scan:
    """Decode an uploaded PNG/JPEG/BMP/TIFF or DICOM file.

    A DICOM upload is de-identified in memory (PS3.15 basic profile) before
    anything is written; only that de-identified copy is stored, under
    ``MEDDISTILL_HOME/uploads``. No identifying attribute is ever returned.

    Raises:
        DataError: not a supported image, or an unreadable file.
    """
    suffix = Path(filename).suffix.lower()
    uploads = home_dir(UPLOADS_DIR)
    digest = bytes_hash(data)
    if suffix in DICOM_SUFFIXES or data[128:132] == b"DICM":
        try:
            dataset = deidentify(pydicom.dcmread(io.BytesIO(data)))
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
            raise DataError(
                f"{filename} is not a readable DICOM file; export it again from the PACS or viewer."
            ) from None
        stored = uploads / f"{digest}.dcm"
        atomic_write(stored, lambda tmp: dataset.save_as(tmp, enforce_file_format=False))
        try:
            display = read_dicom_for_display(stored)
        except DataError as error:
            stored.unlink(missing_ok=True)
            raise DataError(str(error).replace(stored.name, filename)) from None
        return Scan(f"upload-{digest}.dcm", display.image, display)
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"{filename} is not a PNG, JPEG, BMP, TIFF or DICOM file; upload one of those.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"scan{suffix}"
        path.write_bytes(data)
        image = decode_file(path)
    return Scan(filename, image)
