"""Real collections as people download them: split folders by any name, wrapping folders, stray CSVs and
notebooks' checkpoint copies, labels CSVs with any column names (issue 13). Built from real chest X-rays."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest

from meddistill.cli.main import main
from meddistill.data import load_dataset
from meddistill.data.options import DataOptions
from meddistill.errors import DataError

CLASSES = ("NORMAL", "PNEUMONIA")


def xray_tree(chest: Path, root: Path, splits: dict[str, str], per_class: int = 6) -> Path:
    """Copy real X-rays into ``root/<folder name>/<CLASS>/``; ``splits`` maps folder name -> source split."""
    for folder, source in splits.items():
        for cls in CLASSES:
            out = root / folder / cls if folder else root / cls
            out.mkdir(parents=True, exist_ok=True)
            offset = 0 if folder.lower().startswith("tr") or not folder else per_class  # distinct files per split
            for path in sorted((chest / source / cls).glob("*.jpeg"))[offset : offset + per_class]:
                shutil.copy(path, out / path.name)
    return root


def zip_folder(folder: Path, archive: Path, wrap: str) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{wrap}/{path.relative_to(folder)}")
    return archive


@pytest.mark.parametrize(
    "names",
    [("Training", "Testing"), ("Train", "Test"), ("train", "test"), ("TRAINING", "Holdout")],
    ids=["Training-Testing", "Train-Test", "train-test", "TRAINING-Holdout"],
)
def test_split_folders_by_any_name(chest_folder, tmp_path, names):
    root = xray_tree(chest_folder, tmp_path / "set", {names[0]: "train", names[1]: "test"})
    data = load_dataset(root)
    assert data.class_names == list(CLASSES)  # not "Testing" and "Training"
    assert len(data.splits["test"]) == 12
    assert data.provenance["splits"]["given"] == ["train", "test"]
    assert data.provenance["splits"]["made"] == ["val"]
    assert f"{names[0]} -> train" in data.provenance["layout"]


def test_train_valid_test_all_given(chest_folder, tmp_path):
    root = xray_tree(chest_folder, tmp_path / "set", {"train": "train", "valid": "test", "test": "test"})
    data = load_dataset(root)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [12, 12, 12]
    assert data.provenance["splits"]["made"] == []


def test_capitalised_in_a_wrapping_folder_of_a_zip(chest_folder, tmp_path):
    root = xray_tree(chest_folder, tmp_path / "set", {"Train": "train", "Test": "test"})
    data = load_dataset(zip_folder(root, tmp_path / "xray.zip", wrap="chest_xray_v2"))
    assert data.class_names == list(CLASSES)
    assert "inside the wrapping folder 'chest_xray_v2'" in data.provenance["layout"]


def test_captions_csv_readme_and_checkpoints_are_ignored_and_listed(chest_folder, tmp_path):
    root = xray_tree(chest_folder, tmp_path / "set", {"Training": "train", "Testing": "test"})
    (root / "captions.csv").write_text("caption,author\na chest film,someone\n")
    (root / "README.md").write_text("# dataset\n")
    (root / "meta.json").write_text("{}")
    checkpoints = root / "Training" / "NORMAL" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    first = next((root / "Training" / "NORMAL").glob("*.jpeg"))
    shutil.copy(first, checkpoints / f"{first.stem}-checkpoint.jpeg")
    data = load_dataset(root)
    assert data.class_names == list(CLASSES)
    assert sum(len(s) for s in data.splits.values()) == 24  # the checkpoint copy is not an image of the set
    ignored = dict((path, reason) for path, reason in data.provenance["ignored"]["examples"])
    assert "the folders give the labels" in ignored["captions.csv"]
    assert ignored["README.md"] == ignored["meta.json"] == "not an image or DICOM file"
    assert ignored["Training/NORMAL/.ipynb_checkpoints/"] == "hidden folder"


def test_exact_copies_in_one_class_folder_count_once(chest_folder, tmp_path):
    root = xray_tree(chest_folder, tmp_path / "set", {"": "train"})
    first = next((root / "NORMAL").glob("*.jpeg"))
    shutil.copy(first, root / "NORMAL" / "copy of scan.jpeg")
    data = load_dataset(root)
    assert sum(len(s) for s in data.splits.values()) == 12
    assert data.provenance["copies_within_class_dropped"] == {"train": 1}


def test_labels_csv_with_other_column_names(chest_folder, tmp_path):
    root = xray_tree(chest_folder, tmp_path / "set", {"": "train"})
    images = root / "images"
    images.mkdir()
    rows = ["img,finding,patient"]
    for cls in CLASSES:
        for path in sorted((root / cls).glob("*.jpeg")):
            shutil.move(path, images / path.name)
            patient = re.match(r"^(person\d+|IM-\d+)", path.name).group(1)
            rows.append(f"{path.name},{cls.lower()},{patient}")
        (root / cls).rmdir()
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="metadata.csv has the columns img, finding, patient and none is recognised"):
        load_dataset(root)
    data = load_dataset(root, options=DataOptions(file_column="img", label_column="finding", group_column="patient"))
    assert data.class_names == ["normal", "pneumonia"]
    assert "file column 'img', label column 'finding', group column 'patient'" in data.provenance["layout"]
    assert data.provenance["splits"]["group_key"] == "CSV column 'patient'"
    with pytest.raises(DataError, match="metadata.csv has no column 'diagnosis'"):
        load_dataset(root, options=DataOptions(file_column="img", label_column="diagnosis"))


def test_labels_csv_columns_are_guessed_and_the_guess_printed(chest_folder, tmp_path, capsys):
    root = xray_tree(chest_folder, tmp_path / "set", {"Train": "train"})
    rows = ["Image_Path,Diagnosis,Split"]
    for i, path in enumerate(sorted(root.rglob("*.jpeg"))):
        split = ("Training", "Validation", "Testing")[i % 3]
        rows.append(f"{path.relative_to(root).as_posix()},{path.parent.name},{split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(root, options=DataOptions(label_column="Diagnosis"))  # a given column: the CSV is used
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [4, 4, 4]
    assert main(["check-data", str(root), "--label-column", "Diagnosis"]) == 0
    out = capsys.readouterr().out
    assert "file column 'Image_Path' (guessed)" in out
    assert "split column 'Split' (guessed)" in out


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"Train": "train", "Training": "train"}, "has both 'Train' and 'Training' folders"),
        ({"train/train": "train", "train/test": "test"}, "train has class folders named like splits"),
        ({"Testing": "test"}, "has Testing folders but no training folder"),
    ],
    ids=["two-train-folders", "classes-named-like-splits", "no-train"],
)
def test_ambiguous_layouts_are_refused_with_the_fix(chest_folder, tmp_path, tree, message):
    root = tmp_path / "set"
    for folder, source in tree.items():
        xray_tree(chest_folder, root, {folder: source}, per_class=3)
    with pytest.raises(DataError, match=message):
        load_dataset(root)


def test_copied_train_image_in_test_is_reported_and_dropped(chest_folder, tmp_path, capsys):
    root = xray_tree(chest_folder, tmp_path / "set", {"train": "train", "test": "test"})
    leaked = next((root / "train" / "PNEUMONIA").glob("*.jpeg"))
    shutil.copy(leaked, root / "test" / "PNEUMONIA" / "renamed.jpeg")
    assert main(["check-data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "1 test image(s) are exact duplicates of train images" in out
    assert "renamed.jpeg" in out and leaked.name in out
    data = load_dataset(root, options=DataOptions(drop_duplicates=True))
    assert "renamed.jpeg" not in [p.name for p in data.splits["test"].paths]
    assert data.provenance["leakage"]["dropped"] == {"test": 1}


def test_re_encoded_resized_copy_is_a_near_duplicate(chest_folder, tmp_path):
    from PIL import Image

    root = xray_tree(chest_folder, tmp_path / "set", {"train": "train", "test": "test"})
    source = next((root / "train" / "NORMAL").glob("*.jpeg"))
    with Image.open(source) as image:
        image.convert("L").resize((150, 150)).save(root / "test" / "NORMAL" / "smaller.png")
    leakage = load_dataset(root).provenance["leakage"]
    assert leakage["exact_across_splits"] == {}
    assert leakage["near_across_splits"]["train-test"]["count"] == 1
    assert leakage["near_across_splits"]["train-test"]["examples"][0] == [source.name, "smaller.png"]


def test_folder_options_are_refused_for_npz(breast_npz):
    with pytest.raises(DataError, match="--label-column applies to folders and zips of images, not to breastmnist"):
        load_dataset(breast_npz, options=DataOptions(label_column="x"))


def test_csv_ids_without_extension_and_numeric_labels(chest_folder, tmp_path):
    root = tmp_path / "set"
    (root / "imgs").mkdir(parents=True)
    rows = ["image_id,target"]
    for label, cls in ((2, "NORMAL"), (10, "PNEUMONIA")):
        for path in sorted((chest_folder / "train" / cls).glob("*.jpeg"))[:6]:
            shutil.copy(path, root / "imgs" / path.name)
            rows.append(f"{path.stem},{label}")  # an id, as ISIC-style metadata gives it
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(root)
    assert data.class_names == ["2", "10"]  # numeric order, not "10" < "2"
    assert sum(len(s) for s in data.splits.values()) == 12
    assert "file column 'image_id' (guessed), label column 'target' (guessed)" in data.provenance["layout"]


@pytest.mark.slow
def test_a_wrapping_folder_with_notes_beside_it_is_read_through(data_dir, capsys):
    """The blood-cell download: SOURCE.txt and a file list beside PBC_dataset_normal_DIB/<8 class folders>."""
    source = data_dir / "pbc_blood_cells"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    assert main(["check-data", str(source)]) == 0
    out = capsys.readouterr().out
    assert "inside the wrapping folder 'PBC_dataset_normal_DIB'" in out
    assert "classes: basophil, eosinophil, erythroblast, ig, lymphocyte, monocyte, neutrophil, platelet" in out
    assert "note beside the wrapping folder" in out and "SOURCE.txt" in out


def test_notes_beside_a_folder_do_not_hide_a_labels_csv_or_images(tmp_path, chest_folder):
    """Only notes may stand beside a wrapping folder: an image or a CSV there keeps the top folder as the root."""
    root = xray_tree(chest_folder, tmp_path / "data", {"": "train"})
    (tmp_path / "data" / "README.md").write_text("notes")
    wrapped = tmp_path / "outer"
    wrapped.mkdir()
    shutil.move(str(root), wrapped / "inner")
    (wrapped / "LICENSE").write_text("CC BY 4.0")
    assert load_dataset(wrapped).class_names == list(CLASSES)
    shutil.copy(next((wrapped / "inner" / "NORMAL").glob("*.jpeg")), wrapped / "stray.jpeg")
    with pytest.raises(DataError):
        load_dataset(wrapped)  # the stray image is not a note: the layout is ambiguous and refused


def test_split_folders_that_are_symbolic_links_are_followed(tmp_path, chest_folder):
    """A researcher's folder assembled from links (train -> elsewhere/train, test -> elsewhere/test)."""
    elsewhere = xray_tree(chest_folder, tmp_path / "elsewhere", {"train": "train", "test": "test"})
    linked = tmp_path / "linked"
    linked.mkdir()
    for split in ("train", "test"):
        (linked / split).symlink_to(elsewhere / split, target_is_directory=True)
    (linked / "train" / "NORMAL" / "loop").symlink_to(linked, target_is_directory=True)  # a link back up
    dataset = load_dataset(linked)
    assert dataset.class_names == list(CLASSES)
    assert sum(len(dataset.splits[s]) for s in ("train", "val", "test")) == 4 * 6
    ignored = dict(dataset.provenance["ignored"]["examples"]) if dataset.provenance.get("ignored") else {}
    assert any(reason == "link to a folder already read" for reason in ignored.values()), ignored
