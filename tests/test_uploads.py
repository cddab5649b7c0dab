"""Scans uploaded on the Explain page: DICOM is de-identified before it is stored or shown."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from meddistill.data.deid import BASIC_PROFILE_TAGS
from meddistill.errors import DataError
from meddistill.paths import home
from meddistill.services.scans import scan_from_upload


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"])
def test_dicom_upload_stored_and_shown_deidentified(name):
    original = pydicom.dcmread(get_testdata_file(name))
    identifying = {
        k: str(original.data_element(k).value)
        for k in BASIC_PROFILE_TAGS
        if k in original and str(original.data_element(k).value).strip()
    }
    assert identifying, "the test file should carry identifying attributes"
    scan = scan_from_upload(open(get_testdata_file(name), "rb").read(), name)
    stored = list((home() / "uploads").glob("*.dcm"))
    assert len(stored) == 1
    saved = pydicom.dcmread(stored[0])
    for keyword, value in identifying.items():
        assert keyword not in saved or str(saved.data_element(keyword).value) != value or value in ("", "0"), keyword
    shown = set(scan.dicom.metadata.values())
    for keyword, value in identifying.items():
        assert value not in shown, keyword
    assert str(original.PatientName) not in stored[0].read_bytes().decode("latin-1")
    assert scan.image.dtype.name == "uint8" and scan.image.ndim in (2, 3)


def test_png_upload_and_refusal(tmp_path):
    from PIL import Image

    Image.new("L", (32, 32), 90).save(tmp_path / "scan.png")
    scan = scan_from_upload((tmp_path / "scan.png").read_bytes(), "scan.png")
    assert scan.image.shape == (32, 32) and scan.dicom is None
    with pytest.raises(DataError, match="notes.txt is not a PNG, JPEG, BMP, TIFF or DICOM file"):
        scan_from_upload(b"hello", "notes.txt")
    with pytest.raises(DataError, match="broken.dcm"):
        scan_from_upload(b"\0" * 128 + b"DICM" + b"\x02\x00garbage", "broken.dcm")
    assert not list((home() / "uploads").glob("*.dcm"))  # nothing kept after a refusal
