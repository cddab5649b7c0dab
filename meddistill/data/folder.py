"""Image and DICOM folders: one subfolder per class, optionally under train/val/test,
or files listed in a labels CSV (``file,label``). Files are decoded lazily."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from meddistill.data.dataset import SPLITS, FileSplit, MedDataset, Split, stratified_split
from meddistill.data.dicom import read_dicom_pixels
from meddistill.data.images import IMAGE_SUFFIXES, read_image
from meddistill.errors import DataError

DICOM_SUFFIXES = (".dcm", ".dicom")
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
SAMPLE_FILES = 32


def decode_file(path: Path) -> np.ndarray:
    """Decode one image or DICOM file to uint8 (H, W) or (H, W, 3); ``DataError`` names the file."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom_pixels(path)
    return read_image(path)


def _is_junk(path: Path) -> bool:
    return path.name in JUNK_NAMES or path.name.startswith(".") or "__MACOSX" in path.parts


def _usable(path: Path, where: str) -> bool:
    """True for image/DICOM files, False for junk; raises for any other file."""
    if _is_junk(path):
        return False
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES:
        return True
    raise DataError(
        f"{path.name} in {where} is not an image (PNG, JPEG, BMP, TIFF) or DICOM (.dcm) file; remove it from the "
        "folder."
    )


def _class_folders(root: Path) -> dict[str, list[Path]]:
    """``{class name: [files]}`` for the class subfolders of ``root`` (files found recursively)."""
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _is_junk(p)):
        files = sorted(f for f in folder.rglob("*") if f.is_file() and _usable(f, f"class folder '{folder.name}'"))
        if files:
            classes[folder.name] = files
    return classes


def _split_folders(root: Path) -> dict[str, Path]:
    found = {split: root / split for split in SPLITS if (root / split).is_dir()}
    if "validation" not in found and (root / "validation").is_dir():
        found["val"] = root / "validation"
    return found


def _labels_csv(root: Path) -> Path | None:
    csvs = [p for p in root.glob("*.csv") if not _is_junk(p)]
    if len(csvs) > 1:
        raise DataError(
            f"{root.name} has several CSV files ({', '.join(p.name for p in csvs)}); keep only the labels CSV "
            "(columns file,label)."
        )
    return csvs[0] if csvs else None


def _read_labels_csv(csv_path: Path) -> tuple[list[Path], list[str], list[str | None]]:
    """Rows of ``file,label[,split]``; every file must exist beside the CSV."""
    files, labels, splits = [], [], []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            if "file" not in columns or "label" not in columns:
                raise DataError(
                    f"{csv_path.name} needs the header 'file,label' (it has {', '.join(columns) or 'no header'}); add "
                    "it as the first line."
                )
            for row in reader:
                row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                if not row.get("file"):
                    continue
                path = (csv_path.parent / row["file"]).resolve()
                if csv_path.parent.resolve() not in path.parents:
                    raise DataError(
                        f"{csv_path.name} names {row['file']}, which lies outside the dataset folder; list only files "
                        "inside it."
                    )
                if not path.is_file():
                    raise DataError(
                        f"{csv_path.name} names {row['file']}, which is not in the dataset; add the file or remove "
                        "its row."
                    )
                _usable(path, csv_path.name)
                if not row["label"]:
                    raise DataError(f"{csv_path.name} gives no label for {row['file']}; fill in its label.")
                split = row.get("split") or None
                if split is not None and split not in SPLITS:
                    raise DataError(f"{csv_path.name} gives split '{split}' for {row['file']}; use train, val or test.")
                files.append(path)
                labels.append(row["label"])
                splits.append(split)
    except UnicodeDecodeError:
        raise DataError(f"{csv_path.name} is not a UTF-8 text CSV; save it as CSV (UTF-8).") from None
    except csv.Error as error:
        raise DataError(
            f"{csv_path.name} is not a readable CSV ({error}); save it as plain 'file,label' lines."
        ) from None
    return files, labels, splits


def _check_classes(classes: list[str], source: Path) -> None:
    if not classes:
        raise DataError(
            f"{source.name} contains no images; put the images in one subfolder per class (e.g. NORMAL/, PNEUMONIA/) "
            "or add a labels CSV."
        )
    if len(classes) < 2:
        raise DataError(f"{source.name} has only one class ('{classes[0]}'); a classifier needs at least two classes.")


def _sample_shape(split: Split, rng: np.random.Generator, verify: str) -> tuple[int, int]:
    """(channels, typical size) from a sample of images; ``verify="all"`` decodes every one."""
    count = len(split) if verify == "all" else min(SAMPLE_FILES, len(split))
    indices = np.arange(len(split)) if verify == "all" else rng.choice(len(split), count, replace=False)
    colour, sizes = False, []
    for index in indices:
        image = split.image(int(index))
        sizes.append(max(image.shape[:2]))
        if image.ndim == 3 and not (
            np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
        ):
            colour = True
    return (3 if colour else 1), int(np.median(sizes))


_Layout = tuple[list[str], dict[str, tuple[list[Path], list[int]]], set[str], str]


def _layout_from_csv(labels_csv: Path) -> _Layout:
    """(class names, files and labels per split, splits given, kind) from a labels CSV."""
    files, names, csv_splits = _read_labels_csv(labels_csv)
    class_names = sorted(set(names))
    _check_classes(class_names, labels_csv)
    per_split = {s: ([], []) for s in SPLITS}
    for path, name, split in zip(files, names, csv_splits):
        per_split[split or "train"][0].append(path)
        per_split[split or "train"][1].append(class_names.index(name))
    given = {s for s in SPLITS if per_split[s][0]} | ({"train"} if not any(csv_splits) else set())
    kind = "dicom-csv" if any(p.suffix.lower() in DICOM_SUFFIXES for p in files) else "images-csv"
    return class_names, per_split, given, kind


def _layout_from_folders(root: Path) -> _Layout:
    """(class names, files and labels per split, splits given, kind) from class folders, optionally under splits."""
    split_dirs = _split_folders(root)
    if "train" not in split_dirs and split_dirs:
        raise DataError(
            f"{root.name} has {', '.join(split_dirs)} folders but no train/ folder; add train/ or put the class "
            "folders at the top."
        )
    by_split = {s: _class_folders(d) for s, d in split_dirs.items()} or {"train": _class_folders(root)}
    class_names = sorted(by_split["train"])
    _check_classes(class_names, root)
    per_split = {s: ([], []) for s in SPLITS}
    for split, classes in by_split.items():
        for name, paths in classes.items():
            if name not in class_names:
                raise DataError(
                    f"{root.name}/{split} has class '{name}', which train/ lacks; use the same class folders in "
                    "every split."
                )
            per_split[split][0].extend(paths)
            per_split[split][1].extend([class_names.index(name)] * len(paths))
    given = set(by_split)
    all_files = [p for paths, _ in per_split.values() for p in paths]
    kind = "dicom-folder" if any(p.suffix.lower() in DICOM_SUFFIXES for p in all_files) else "image-folder"
    return class_names, per_split, given, kind


def load_folder(
    root: str | Path, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2, verify: str = "sample"
) -> MedDataset:
    """Load a folder of images or DICOM files.

    Layouts: ``root/CLASS/*`` ; ``root/{train,val,test}/CLASS/*`` ; or files
    anywhere under ``root`` with ``root/labels.csv`` (``file,label[,split]``).
    Missing splits are made by a stratified split from ``seed`` (val is carved
    from train; test too when there is no test folder).

    Args:
        root: The folder.
        seed: Seed for the splits that have to be made.
        val_fraction: Fraction for val when it is carved out.
        test_fraction: Fraction for test when it is carved out.
        verify: "sample" decodes a few images per split, "all" decodes every one
            (slow for big folders; the ``check-data`` command uses it).

    Raises:
        DataError: empty folder, one class, a non-image file, a CSV naming a
            missing file, an undecodable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder with one subfolder per class, a .zip, or a .npz file.")
    labels_csv = _labels_csv(root)
    if labels_csv is not None:
        class_names, per_split, given, kind = _layout_from_csv(labels_csv)
    else:
        class_names, per_split, given, kind = _layout_from_folders(root)

    splits = {s: FileSplit(per_split[s][0], np.array(per_split[s][1], dtype=np.int64), decode_file) for s in SPLITS}
    made = []
    if "test" not in given:
        keep, test = stratified_split(splits["train"].labels, (test_fraction,), seed)
        splits["test"], splits["train"] = splits["train"].subset(test), splits["train"].subset(keep)
        made.append("test")
    if "val" not in given:
        keep, val = stratified_split(splits["train"].labels, (val_fraction,), seed + 1)
        splits["val"], splits["train"] = splits["train"].subset(val), splits["train"].subset(keep)
        made.append("val")
    for split, data in splits.items():
        if len(data) == 0:
            raise DataError(
                f"{root.name} leaves the {split} split empty; add more images per class (at least 3 per class)."
            )
    rng = np.random.default_rng(seed)
    channels, size = 1, 0
    for data in splits.values():
        split_channels, split_size = _sample_shape(data, rng, verify)
        channels, size = max(channels, split_channels), max(size, split_size)
    origin = f"{', '.join(made)} made by a stratified split (seed {seed})" if made else "folders"
    return MedDataset(
        name=root.name,
        splits=splits,
        class_names=class_names,
        channels=channels,
        image_size=size,
        provenance={
            "kind": kind,
            "source": str(root.resolve()),
            "files": sum(len(d) for d in splits.values()),
            "splits": origin,
        },
    )
