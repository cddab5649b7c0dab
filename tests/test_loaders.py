"""Every dataset source, and bad input that must be refused with a message naming the file and the fix."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from meddistill.data import load_dataset
from meddistill.errors import DataError
from tests.conftest import copy_xray_slice


def _png(path: Path, value: int = 128, size=(20, 24), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, colour).save(path)
    return path


def _class_folder(root: Path, per_class: int = 6, classes=("benign", "malignant")) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            _png(root / name / f"{name}_{i}.png", value=40 * c + i, mode="L" if i % 2 else "RGB", size=(20 + i, 24))
    return root


# --- MedMNIST npz -------------------------------------------------------------------------------


def test_official_npz(breast_npz):
    data = load_dataset(breast_npz)
    assert data.class_names == ["malignant", "normal, benign"]
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 546, "val": 78, "test": 156}
    assert data.channels == 1 and data.image_size == 28
    assert data.provenance["md5"] == "750601b1f35ba3300ea97c75c52ff8f6"
    assert data.splits["train"].image(0).shape == (28, 28)


def test_npz_rgb_without_val(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "colour.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8),
        train_labels=np.arange(40) % 3,
        test_images=rng.integers(0, 255, (9, 16, 16, 3), dtype=np.uint8),
        test_labels=np.arange(9)[:, None] % 3,
    )
    data = load_dataset(path, seed=1)
    assert data.channels == 3 and data.num_classes == 3
    assert len(data.splits["train"]) + len(data.splits["val"]) == 40
    assert set(data.splits["val"].labels) == {0, 1, 2}
    assert "carved" in data.provenance["splits"]


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(images=np.zeros((4, 8, 8), np.uint8)), "lacks the keys train_images"),
        (
            dict(
                train_images=np.zeros((4, 8, 8), np.uint8),
                train_labels=np.zeros(3, int),
                test_images=np.zeros((2, 8, 8), np.uint8),
                test_labels=np.zeros(2, int),
            ),
            "has 3 labels for 4 images",
        ),
        (
            dict(
                train_images=np.full((4, 8, 8), np.nan),
                train_labels=np.arange(4) % 2,
                test_images=np.zeros((2, 8, 8)),
                test_labels=np.arange(2),
            ),
            "NaN or infinite",
        ),
        (
            dict(
                train_images=np.zeros((4, 8, 8), np.uint8),
                train_labels=np.array([0, 1, -1, 0]),
                test_images=np.zeros((2, 8, 8), np.uint8),
                test_labels=np.arange(2),
            ),
            "negative label",
        ),
        (
            dict(
                train_images=np.zeros((4, 8, 8, 5), np.uint8),
                train_labels=np.arange(4) % 2,
                test_images=np.zeros((2, 8, 8, 5), np.uint8),
                test_labels=np.arange(2),
            ),
            "expected \\(N, H, W\\)",
        ),
        (
            dict(
                train_images=np.zeros((4, 8, 8), np.uint8),
                train_labels=np.zeros(4, int),
                test_images=np.zeros((2, 8, 8), np.uint8),
                test_labels=np.zeros(2, int),
            ),
            "only one class",
        ),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(path)
    assert "bad.npz" in str(error.value)


def test_npz_object_array_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(
        path,
        train_images=np.array([np.zeros((2, 2)), "x"], dtype=object),
        train_labels=np.zeros(2),
        test_images=np.zeros((1, 2, 2)),
        test_labels=np.zeros(1),
    )
    with pytest.raises(DataError, match="pickled.npz holds Python objects"):
        load_dataset(path)


def test_medmnist_label_out_of_range(tmp_path):
    path = tmp_path / "breastmnist.npz"
    np.savez(
        path,
        train_images=np.zeros((4, 8, 8), np.uint8),
        train_labels=np.array([0, 1, 2, 1]),
        test_images=np.zeros((2, 8, 8), np.uint8),
        test_labels=np.arange(2),
    )
    with pytest.raises(DataError, match="has label 2, but breastmnist has only 2 classes"):
        load_dataset(path)


def test_truncated_npz(tmp_path, breast_npz):
    path = tmp_path / "cut.npz"
    path.write_bytes(breast_npz.read_bytes()[:5000])
    with pytest.raises(DataError, match="cut.npz is not a readable .npz"):
        load_dataset(path)


# --- MedMNIST by name ---------------------------------------------------------------------------


def test_medmnist_by_name_uses_local_copy(monkeypatch, breast_npz):
    monkeypatch.setenv("MEDDISTILL_MEDMNIST_DIR", str(breast_npz.parent))
    assert len(load_dataset("breastmnist").splits["test"]) == 156


def test_medmnist_download_failure_is_plain(monkeypatch, tmp_path):
    import medmnist.dataset

    monkeypatch.setenv("MEDDISTILL_MEDMNIST_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("MEDDISTILL_DATA", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(medmnist.dataset.MedMNIST, "download", offline)
    with pytest.raises(
        DataError,
        match="Could not download dermamnist.npz .*no network.*upload it, pass the file with --data dermamnist.npz",
    ):
        load_dataset("dermamnist")
    assert not list((Path(tmp_path) / "home").glob("**/dermamnist*"))


def test_unknown_medmnist_name():
    message = (
        r"'chestmnist' is not a single-label MedMNIST set \(2D or 3D\); choose one of: adrenalmnist3d, .*breastmnist"
    )
    with pytest.raises(DataError, match=message):
        load_dataset("chestmnist")


# --- image folders and zips ---------------------------------------------------------------------


def test_folder_of_class_folders(tmp_path):
    data = load_dataset(_class_folder(tmp_path / "derm", per_class=10), seed=3)
    assert data.class_names == ["benign", "malignant"]
    assert sum(len(d) for d in data.splits.values()) == 20
    assert all(len(set(d.labels)) == 2 for d in data.splits.values())
    assert data.channels == 3  # mixed grey and colour -> colour
    image = data.splits["train"].image(0)
    assert image.dtype == np.uint8


def test_real_xray_folder_with_splits(tmp_path, chest_folder):
    root = copy_xray_slice(chest_folder, tmp_path / "xr", per_class=5, splits=("train", "test"))
    data = load_dataset(root)
    assert len(data.splits["test"]) == 10 and len(data.splits["train"]) + len(data.splits["val"]) == 10
    assert data.channels == 1 and data.image_size == 224
    assert data.provenance["splits"]["made"] == ["val"]


def test_zip_with_wrapping_folder(tmp_path):
    root = _class_folder(tmp_path / "src" / "mydata")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in root.rglob("*.png"):
            z.write(f, f.relative_to(tmp_path / "src"))
    first = load_dataset(archive)
    second = load_dataset(archive)
    assert first.class_names == ["benign", "malignant"]
    assert first.provenance["source"] == second.provenance["source"]  # stored once, by content hash


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no class folders and no labels CSV; put the images in one folder"):
        load_dataset(tmp_path / "empty")


def test_single_class(tmp_path):
    root = _class_folder(tmp_path / "one", classes=("NORMAL",))
    with pytest.raises(DataError, match="one has only one class \\('NORMAL'\\); a classifier needs at least two"):
        load_dataset(root)


def test_non_image_file_is_ignored_and_listed(tmp_path):
    root = _class_folder(tmp_path / "d")
    (root / "benign" / "notes.txt").write_text("reading notes")
    data = load_dataset(root)
    assert data.provenance["ignored"]["examples"] == [["benign/notes.txt", "not an image or DICOM file"]]


def test_corrupt_image(tmp_path):
    root = _class_folder(tmp_path / "d")
    good = (root / "malignant" / "malignant_0.png").read_bytes()
    (root / "malignant" / "broken.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(root, verify="all")


def test_split_without_train(tmp_path):
    _class_folder(tmp_path / "d" / "test")
    with pytest.raises(DataError, match="has test folders but no training folder; add train/"):
        load_dataset(tmp_path / "d")


def test_not_a_dataset(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="x.txt is not a dataset MedDistill reads"):
        load_dataset(tmp_path / "x.txt")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "missing" / "data.npz")


# --- DICOM with a labels CSV --------------------------------------------------------------------


def _dicom_csv_folder(root: Path) -> Path:
    from pydicom.data import get_testdata_file

    root.mkdir(parents=True)
    rows = ["file,label"]
    names = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "emri_small.dcm", "SC_rgb.dcm"]
    for i in range(12):
        name = names[i % len(names)]
        shutil.copy(get_testdata_file(name), root / f"scan_{i:03d}.dcm")
        rows.append(f"scan_{i:03d}.dcm,{'CT' if i % 2 else 'MR'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_dicom_with_labels_csv(tmp_path):
    data = load_dataset(_dicom_csv_folder(tmp_path / "dcm"), verify="all")
    assert data.class_names == ["CT", "MR"]
    assert data.provenance["kind"] == "dicom-csv"
    assert sum(len(d) for d in data.splits.values()) == 6  # scan_006... repeat scan_000... with the same label
    assert sum(data.provenance["copies_within_class_dropped"].values()) == 6
    assert data.splits["train"].image(0).dtype == np.uint8


def test_csv_names_missing_file(tmp_path):
    root = _dicom_csv_folder(tmp_path / "dcm")
    (root / "scan_004.dcm").unlink()
    with pytest.raises(
        DataError, match=r"labels.csv names 1 file\(s\) that are not in the dataset \(first: scan_004.dcm\); add them"
    ):
        load_dataset(root)


def test_csv_without_header(tmp_path):
    root = _dicom_csv_folder(tmp_path / "dcm")
    (root / "labels.csv").write_text("scan_000.dcm,CT\n")
    with pytest.raises(DataError, match="labels.csv has the columns scan_000.dcm, CT and none is recognised"):
        load_dataset(root)


def test_dicom_class_folders_zip(tmp_path):
    from pydicom.data import get_testdata_file

    archive = tmp_path / "dicom.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(6):
            for name, folder in (("CT_small.dcm", "ct"), ("MR_small.dcm", "mr")):
                ds = pydicom.dcmread(get_testdata_file(name))
                pixels = ds.pixel_array.copy()
                pixels[0, 0] = i  # six different scans (identical copies would count once)
                ds.PixelData, ds.PatientID = pixels.tobytes(), f"{folder}-patient-{i}"
                buffer = io.BytesIO()
                ds.save_as(buffer)
                z.writestr(f"{folder}/{i}.dcm", buffer.getvalue())
    data = load_dataset(archive, verify="all")
    assert data.class_names == ["ct", "mr"] and data.provenance["kind"] == "dicom-folder"
    assert sum(len(d) for d in data.splits.values()) == 12


def test_a_folder_split_is_decoded_once_and_gives_the_same_batches(chest_folder, tmp_path, monkeypatch):
    """Decoded once into memory (the default) or batch by batch (under a zero ceiling): the same tensors."""
    from meddistill.data.tensors import Batches

    data = load_dataset(copy_xray_slice(chest_folder, tmp_path / "xray", per_class=8))
    split = data.splits["train"]
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    kept = Batches(split, 1, 64)
    first = [images for images, _, _ in kept.iterate(5, order)]
    assert kept.images is not None and kept.images.shape == (len(split), 1, 64, 64)
    calls = []
    monkeypatch.setattr(type(split), "image", lambda self, i: calls.append(i))
    again = [images for images, _, _ in kept.iterate(5, order)]  # a second epoch decodes nothing
    assert calls == [] and all(torch.equal(a, b) for a, b in zip(first, again))
    monkeypatch.undo()
    monkeypatch.setenv("MEDDISTILL_DECODE_MB", "0")
    streamed = Batches(split, 1, 64)
    per_batch = [images for images, _, _ in streamed.iterate(5, order)]
    assert streamed.images is None and all(torch.equal(a, b) for a, b in zip(first, per_batch))
