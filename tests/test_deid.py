"""Tests for meddistill.data.deid on real files from pydicom and pydicom-data."""

from __future__ import annotations

import re

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import meddistill.data.deid as deid
from meddistill.data.deid import (
    BASIC_PROFILE_TAGS,
    SAFE_METADATA_KEYWORDS,
    UID_TAGS,
    deidentify,
    deidentify_file,
    safe_metadata,
)
from meddistill.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# CT, MR, CR (with a birth date), US (with an institution) and a JPEG file whose patient is "Citizen^Jan".
FILES = ["CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm", "US1_UNCR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"]
INSTANCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
IDENTITY = {
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "PatientAddress",
    "PatientTelephoneNumbers",
}
UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data)")
    return str(path)


def _read(name: str) -> Dataset:
    return pydicom.dcmread(_file(name), stop_before_pixels=True)


def _identifying_strings(ds: Dataset) -> set[str]:
    """Names, IDs, places, dates and UIDs in the original (long enough not to match by chance).

    A value inside the manufacturer name (MR_small's institution "TOSHIBA", maker "TOSHIBA_MEC") is not a leak.
    """
    kept = {str(ds.get(k, "")) for k in ("Manufacturer", "ManufacturerModelName")}
    found = set()
    for elem in ds.iterall():
        if elem.VR in ("PN", "DA", "DT", "TM") or elem.keyword in UID_TAGS or elem.keyword in IDENTITY:
            values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
            found.update(str(v).strip() for v in values if v is not None and len(str(v).strip()) >= 4)
    return {s for s in found if not any(s in k for k in kept)}


def _all_strings(ds: Dataset) -> list[str]:
    return [str(elem.value) for elem in ds.iterall() if elem.VR not in ("SQ", "OB", "OW", "UN")]


def _assert_clean(original: Dataset, clean: Dataset) -> None:
    for keyword, action in BASIC_PROFILE_TAGS.items():
        if keyword not in clean:
            continue
        assert action in ("Z", "D"), keyword
        value = clean[keyword].value
        if action == "Z":
            assert value in (None, "", []) or len(value) == 0, keyword
        else:
            assert value != original.get(keyword), keyword
    assert not any(elem.tag.is_private for elem in clean.iterall())
    text = "\n".join(_all_strings(clean))
    assert not {s for s in _identifying_strings(original) if s in text}
    assert clean.PatientIdentityRemoved == "YES" and clean.DeidentificationMethod


def test_profile_table_covers_the_basic_identifiers():
    assert "" not in BASIC_PROFILE_TAGS and "" not in UID_TAGS
    assert set(BASIC_PROFILE_TAGS.values()) == {"X", "Z", "D"}
    expected = """PatientName PatientID PatientBirthDate PatientBirthTime OtherPatientIDs OtherPatientNames
        OtherPatientIDsSequence PatientAddress PatientTelephoneNumbers PatientMotherBirthName MilitaryRank
        EthnicGroup PatientComments InstitutionName InstitutionAddress InstitutionalDepartmentName
        ReferringPhysicianName PerformingPhysicianName OperatorsName PhysiciansOfRecord
        NameOfPhysiciansReadingStudy RequestingPhysician AccessionNumber StudyID StudyDate SeriesDate
        AcquisitionDate ContentDate StudyTime SeriesTime AcquisitionTime ContentTime DeviceSerialNumber
        StationName StudyDescription SeriesDescription RequestAttributesSequence""".split()
    assert not set(expected) - set(BASIC_PROFILE_TAGS)
    assert {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "MediaStorageSOPInstanceUID",
    } <= UID_TAGS
    assert BASIC_PROFILE_TAGS["PatientName"] == "Z" and BASIC_PROFILE_TAGS["PatientAddress"] == "X"


@pytest.mark.parametrize("name", FILES)
def test_deidentify_real_files(name):
    original = _read(name)
    before = pydicom.dcmread(_file(name), stop_before_pixels=True)
    present = [k for k in BASIC_PROFILE_TAGS if k in original and not original[k].is_empty]
    assert present, f"{name} should carry identifying attributes"
    assert str(original.get("PatientName", "")), f"{name} should carry a patient name"
    clean = deidentify(original)
    _assert_clean(original, clean)
    assert original == before  # the input is not modified
    for keyword in INSTANCE_UIDS:
        if keyword in original:
            new = str(clean[keyword].value)
            assert new != str(original[keyword].value) and UID_RE.match(new) and len(new) <= 64
    assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID
    assert clean.SOPClassUID == original.SOPClassUID
    assert clean.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


def test_uid_remapping_is_deterministic_and_salted():
    original = _read("CT_small.dcm")
    first, second, other = deidentify(original), deidentify(original), deidentify(original, salt="another secret")
    for keyword in INSTANCE_UIDS:
        assert first[keyword].value == second[keyword].value != other[keyword].value


def test_private_tags_and_nested_sequences():
    original = _read("CT_small.dcm")
    assert any(elem.tag.is_private for elem in original) and "OtherPatientIDsSequence" in original
    clean = deidentify(original)
    assert "OtherPatientIDsSequence" not in clean
    assert not any(elem.tag.is_private for elem in clean.iterall())


def test_synthetic_dataset_with_nested_identity():
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.add_new(0x00091001, "LO", "private secret")
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ref.add_new(0x00101001, "PN", "Doe^J")  # OtherPatientNames: remove
    ref.add_new(0x0040A123, "PN", "Dr^Who")  # PersonName: dummy
    ref.add_new(0x00181234, "DA", "20010203")  # unknown date: remove (catch-all)
    ref.add_new(0x00291010, "LO", "nested private")
    ds.ReferencedImageSequence = Sequence([ref])
    clean = deidentify(ds)
    item = clean.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == clean.SOPInstanceUID != "1.2.3.4.5"
    assert item.ReferencedSOPClassUID == ds.SOPClassUID
    assert "OtherPatientNames" not in item and item.PersonName == "ANONYMOUS" and 0x00181234 not in item
    assert 0x00291010 not in item and 0x00091001 not in clean and 0x60003000 not in clean
    assert not clean.PatientName
    text = "\n".join(_all_strings(clean))
    assert "Doe" not in text and "Who" not in text and "secret" not in text


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_deidentify_file_round_trip(tmp_path, name):
    src = _file(name)
    dst = tmp_path / f"clean_{name}"
    assert deidentify_file(src, dst) == dst
    assert sorted(p.name for p in tmp_path.iterdir()) == [dst.name]  # no temporary file left
    original = pydicom.dcmread(src)
    clean = pydicom.dcmread(dst, force=False)
    assert clean.PixelData == original.PixelData
    _assert_clean(original, clean)


def test_deidentify_file_in_place(tmp_path):
    path = tmp_path / "ct.dcm"
    path.write_bytes(open(_file("CT_small.dcm"), "rb").read())
    deidentify_file(path, path)
    assert pydicom.dcmread(path).PatientIdentityRemoved == "YES"


def test_deidentify_file_errors(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not dicom\n" * 50)
    with pytest.raises(DataError, match=r"notes\.dcm"):
        deidentify_file(text, tmp_path / "out.dcm")
    with pytest.raises(DataError, match=r"missing\.dcm does not exist"):
        deidentify_file(tmp_path / "missing.dcm", tmp_path / "out.dcm")
    with pytest.raises(DataError, match=r"out\.dcm"):
        deidentify_file(_file("CT_small.dcm"), tmp_path / "no_such_folder" / "out.dcm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.dcm"]


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_save(self, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(deid.Dataset, "save_as", broken_save)
    dst = tmp_path / "out.dcm"
    with pytest.raises(DataError, match=r"out\.dcm"):
        deidentify_file(_file("CT_small.dcm"), dst)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", FILES)
def test_safe_metadata_has_no_identifying_values(name):
    original = _read(name)
    metadata = safe_metadata(original)
    assert metadata["Modality"] and metadata["TransferSyntax"]
    assert set(metadata) <= set(SAFE_METADATA_KEYWORDS) | {"TransferSyntax", "SOPClass"}
    assert all(isinstance(v, str) for v in metadata.values())
    secrets = _identifying_strings(original)
    assert str(original.PatientName) in secrets or len(str(original.PatientName)) < 4
    text = "\n".join(metadata.values())
    assert not {s for s in secrets if s in text}
