"""Patient-level splits (issue 13): no patient in two splits, the grouping recorded, no identifier stored."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from meddistill.cli.main import main
from meddistill.data import load_dataset
from meddistill.data.grouping import GroupKeys, holdout
from meddistill.data.options import DataOptions
from meddistill.errors import DataError

PATTERN = r"^(person\d+|(?:NORMAL2-)?IM-\d+)"


def patients(split) -> set[str]:
    return {re.match(PATTERN, path.name).group(1) for path in split.paths}


@pytest.mark.slow
def test_chest_xray_val_made_by_patient(chest_folder):
    data = load_dataset(chest_folder, options=DataOptions(group_pattern=PATTERN))
    train, val = data.splits["train"], data.splits["val"]
    assert patients(train).isdisjoint(patients(val))
    assert len(patients(val)) > 100
    origin = data.provenance["splits"]
    assert origin["made"] == ["val"] and "grouped by patient" in origin["method"]
    assert origin["groups"]["val"] == len(patients(val))
    # The set's own train and test share person numbers: reported, never silently accepted.
    assert data.provenance["leakage"]["patients_in_two_splits"]["train-test"] > 0


def test_without_a_key_the_split_is_by_image_and_says_so(chest_folder, tmp_path):
    from tests.conftest import copy_xray_slice

    root = copy_xray_slice(chest_folder, tmp_path / "xray", per_class=10)
    origin = load_dataset(root).provenance["splits"]
    assert origin["method"].startswith("image by image") and "--group-pattern" in origin["method"]


def test_pattern_that_misses_a_file_is_refused(chest_folder, tmp_path):
    from tests.conftest import copy_xray_slice

    root = copy_xray_slice(chest_folder, tmp_path / "xray", per_class=4)
    with pytest.raises(DataError, match="does not match --group-pattern .*; change the pattern"):
        load_dataset(root, options=DataOptions(group_pattern=r"^(person\d+)"))
    with pytest.raises(DataError, match="has no group; put the patient key in parentheses"):
        DataOptions(group_pattern=r"person\d+")


@pytest.mark.slow
def test_grouped_run_records_the_split_in_report(chest_folder, tmp_path, capsys):
    root = tmp_path / "xray"
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for path in sorted((chest_folder / "train" / cls).glob("*.jpeg"))[:40]:
            shutil.copy(path, root / cls / path.name)
    out = tmp_path / "run"
    args = ["run", "--data", str(root), "--preset", "smoke", "--image-size", "28", "--out", str(out)]
    assert main([*args, "--group-pattern", PATTERN, "--threads", "1"]) == 0
    printed = capsys.readouterr().out  # what the data is and how it was split, before the plan
    assert "Data: one folder per class at the top" in printed and "made grouped by patient" in printed
    report = json.loads((out / "report.json").read_text())
    origin = report["dataset"]["provenance"]["splits"]
    assert "grouped by patient" in origin["method"] and origin["made"] == ["test", "val"]
    assert json.loads((out / "config.json").read_text())["group_pattern"] == PATTERN


def _dicom_patients(root: Path, patients: int = 12, per_patient: int = 2) -> dict[str, str]:
    """Real CT slices written as several files per patient (PatientID shared), half in each class folder."""
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    owner = {}
    for p in range(patients):
        cls = "tumour" if p % 2 else "normal"
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(per_patient):
            ds = source.copy()
            pixels = ds.pixel_array.copy()
            pixels[0, 0] = p * 10 + k  # every file differs (exact copies would count once)
            ds.PixelData = pixels.tobytes()
            ds.PatientID = f"PAT-{p:03d}-SECRET"
            ds.PatientName = f"Doe^Patient{p}"
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            name = f"slice_{p:02d}_{k}.dcm"
            ds.save_as(root / cls / name)
            owner[name] = ds.PatientID
    return owner


def test_dicom_grouped_by_patient_id_and_none_stored(tmp_path):
    root = tmp_path / "ct"
    owner = _dicom_patients(root)
    data = load_dataset(root, seed=3)
    seen = {s: {owner[p.name] for p in data.splits[s].paths} for s in ("train", "val", "test")}
    assert seen["train"].isdisjoint(seen["val"]) and seen["train"].isdisjoint(seen["test"])
    assert seen["val"].isdisjoint(seen["test"])
    assert all(seen.values())
    origin = data.provenance["splits"]
    assert origin["group_key"] == "DICOM header (images keyed by patient 24)"
    stored = json.dumps(data.summary())
    assert "SECRET" not in stored and "PAT-" not in stored and "Doe" not in stored


def test_dicom_without_patient_id_falls_back_to_study(tmp_path):
    root = tmp_path / "ct"
    _dicom_patients(root, patients=6)
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientID = "ANONYMIZED"  # what de-identification leaves
        ds.StudyInstanceUID = f"1.2.3.{int(path.stem.split('_')[1])}"
        ds.save_as(path)
    data = load_dataset(root)
    assert data.provenance["splits"]["group_key"] == "DICOM header (images keyed by study 12)"


def test_holdout_keeps_groups_whole_and_stratifies():
    rng = np.random.default_rng(0)
    groups = [f"p{i // 3}" for i in range(300)]  # 100 patients, 3 images each
    labels = np.array([int(g[1:]) % 2 for g in groups])
    keys = GroupKeys(groups, "test")
    keep, held = holdout(labels, 0.2, seed=int(rng.integers(100)), groups=keys)
    assert {groups[i] for i in keep}.isdisjoint({groups[i] for i in held})
    assert 50 <= len(held) <= 70 and 0.35 < labels[held].mean() < 0.65
    with pytest.raises(DataError, match="only 2 patients or groups"):
        holdout(labels[:6], 0.2, 0, GroupKeys(groups[:6], "test"))
