"""DICOM series read as volumes: written slice by slice from real AdrenalMNIST3D volumes, shuffled on disk,
reassembled in order, refused with a slice missing or mixed orientations, labelled by folder or CSV, and
de-identified."""

from __future__ import annotations

import numpy as np
import pytest

from meddistill.data import load_dataset
from meddistill.data.volumes import VolumeDataset
from meddistill.errors import DataError


def _write_series(folder, volume: np.ndarray, patient: str, seed: int) -> list:
    """Write a (D, H, W) uint8 volume as a CT series, one file per slice (HU = 8 x value - 1024), under shuffled
    file names and with InstanceNumbers in reverse: only ImagePositionPatient gives the order."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    order = np.random.default_rng(seed).permutation(len(volume))
    paths = []
    for z, slice_ in enumerate(volume):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = f"Doe^{patient}", f"MRN{patient}", "19600101"
        ds.StudyDate, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = "20240102", study, series, "CT"
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, 2.5 * z], [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber, ds.PixelSpacing, ds.SliceThickness = len(volume) - z, [0.8, 0.8], 2.5
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = *slice_.shape, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (slice_.astype(np.uint16) * 8).tobytes()
        path = folder / f"IM{order[z]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def series_folder(adrenal_arrays, tmp_path_factory):
    root = tmp_path_factory.mktemp("series") / "adrenal_ct"
    volumes, labels = adrenal_arrays["train"]
    for i, volume in enumerate(volumes):
        _write_series(root / ["normal", "hyperplasia"][i % 2] / f"patient{i:02d}" / "CT", volume, f"{i:02d}", i)
    return root, volumes


def test_dicom_series_reassembled_in_order_and_deidentified(series_folder):
    import json

    from meddistill.data.volumes import to_uint8

    root, volumes = series_folder
    dataset = load_dataset(root)
    assert isinstance(dataset, VolumeDataset) and dataset.provenance["kind"] == "dicom-series-folder"
    assert sum(len(d) for d in dataset.splits.values()) == 12  # one volume per series, not 336 slices
    record = dataset.provenance["volumes"]
    assert record["shape"] == [28, 28, 28] and record["spacing_mm"] == [2.5, 0.8, 0.8]
    assert record["modality"] == "CT" and record["intensity"] == "CT window -1000..1000 HU"
    for split in dataset.splits.values():
        for k, path in enumerate(split.paths):
            i = int(path.parent.parent.name[-2:])
            expected = to_uint8(volumes[i].astype(np.float32) * 8 - 1024, ct=True)[0]
            np.testing.assert_array_equal(split.image(k), expected)
            assert split.labels[k] == dataset.class_names.index(["normal", "hyperplasia"][i % 2])
    assert dataset.provenance["splits"]["group_key"].startswith("DICOM header (images keyed by patient")
    stored = json.dumps(dataset.summary()) + json.dumps([g for s in dataset.splits.values() for g in s.groups])
    for secret in ("Doe^", "MRN", "19600101", "20240102"):
        assert secret not in stored


def test_dicom_series_with_a_missing_slice_or_mixed_orientation_refused(series_folder, tmp_path):
    import shutil

    import pydicom

    root, _ = series_folder
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    files = sorted((broken / "hyperplasia" / "patient01" / "CT").glob("*.dcm"))
    middle = next(p for p in files if float(pydicom.dcmread(p).ImagePositionPatient[2]) == 2.5 * 14)
    middle.unlink()
    with pytest.raises(DataError, match=r"Series CT/IM\d+\.dcm has a gap of 5.00 mm .* a slice is missing"):
        load_dataset(broken)
    tilted = tmp_path / "tilted"
    shutil.copytree(root, tilted)
    one = sorted((tilted / "normal" / "patient00" / "CT").glob("*.dcm"))[3]
    ds = pydicom.dcmread(one)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(one)
    with pytest.raises(DataError, match="mixes slice orientations"):
        load_dataset(tilted)


def test_dicom_series_labelled_by_a_csv_naming_their_folders(series_folder, tmp_path):
    import shutil

    root, _ = series_folder
    flat = tmp_path / "flat"
    rows = ["series,diagnosis,patient_id"]
    for folder in sorted(root.glob("*/patient*/CT")):
        shutil.copytree(folder, flat / "studies" / folder.parent.name / "CT")
        rows.append(f"studies/{folder.parent.name}/CT,{folder.parent.parent.name},{folder.parent.name}")
    (flat / "labels.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(flat)
    assert dataset.provenance["kind"] == "dicom-series-csv" and sum(len(d) for d in dataset.splits.values()) == 12
    assert dataset.provenance["splits"]["group_key"] == "CSV column 'patient_id'"
    for split in dataset.splits.values():
        for path, label in zip(split.paths, split.labels):
            assert dataset.class_names[label] == ["normal", "hyperplasia"][int(path.parent.parent.name[-2:]) % 2]
