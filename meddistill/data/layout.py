"""Recognise how a folder of medical images is laid out, the way people actually share them.

* Split folders by name, any capitalisation: ``train``/``training``, ``val``/``valid``/``validation``/``dev``,
  ``test``/``testing``/``holdout`` (see ``SPLIT_ALIASES``), each with one folder per class; or class folders at
  the top; or a labels CSV with any column names (``meddistill.data.labels_csv``), also one per split
  (``train.csv``, ``test.csv``).
* A single wrapping folder (``mydata/Training/...``, as zips often have) is looked through.
* Files that are neither images nor the labels file (captions or metadata CSVs, README, JSON, OS junk) and hidden
  folders (``.ipynb_checkpoints``, ``__MACOSX``) are ignored and listed with the reason.
* Ambiguous layouts are refused with one sentence that says what was found and how to lay it out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from meddistill.data.archive import strip_single_top_folder
from meddistill.data.dataset import SPLITS, split_named
from meddistill.data.dicom import DICOM_SUFFIXES, is_dicom
from meddistill.data.images import IMAGE_SUFFIXES
from meddistill.data.labels_csv import FINDING_SCAN_ROWS, class_order, columns_for, read_labels, read_table
from meddistill.data.multilabel import findings_from_columns, findings_from_joined, separator_of, split_lists
from meddistill.data.options import DataOptions
from meddistill.data.volumes import is_nifti
from meddistill.errors import DataError

JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "DICOMDIR"}


@dataclass
class Layout:
    """What was found: classes, files and labels per split, the splits the data brings, and what was ignored."""

    root: Path
    class_names: list[str]
    files: dict[str, list[Path]]
    labels: dict[str, list[int]]
    given: set[str]
    kind: str
    description: str
    groups: dict[str, list[str | None]] | None = None  # patient ids from a labels CSV's group column
    group_column: str | None = None
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path relative to root, reason)
    task: str = "single_label"  # "multi_label": labels are rows of an (N, K) findings matrix
    findings: dict | None = None  # multi-label: the rule that recognised it and the counts it read
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # subgroup column -> {file path: value}


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def scan(root: Path) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """(image and DICOM files, CSV files, ignored (relative path, reason)) under ``root``, in sorted order."""
    images, csvs, ignored = [], [], []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):  # linked folders are read as folders
        here = Path(dirpath)
        rel = here.relative_to(root)
        kept = []
        for name in sorted(dirnames):
            real = os.path.realpath(here / name)
            if _hidden(name):
                ignored.append((str(rel / name) + "/", "hidden folder"))
            elif real in seen:
                ignored.append((str(rel / name) + "/", "link to a folder already read"))
            else:
                seen.add(real)
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            suffix = path.suffix.lower()
            if name in JUNK_NAMES or name.startswith("._"):
                ignored.append((str(rel / name), "operating-system or index file"))
            elif name.startswith("."):
                ignored.append((str(rel / name), "hidden file"))
            elif suffix in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES or is_nifti(path):
                images.append(path)
            elif suffix == "" and is_dicom(path):
                images.append(path)
            elif suffix == ".csv":
                csvs.append(path)
            else:
                ignored.append((str(rel / name), "not an image or DICOM file"))
    return images, csvs, ignored


def _split_folders(root: Path) -> dict[str, Path]:
    """Top-level folders named like splits; refuses two folders for one split."""
    found: dict[str, Path] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p.name)):
        split = split_named(folder.name)
        if split is None:
            continue
        if split in found:
            raise DataError(
                f"{root.name} has both '{found[split].name}' and '{folder.name}' folders, which both mean the {split} "
                "split; merge them into one folder."
            )
        found[split] = folder
    return found


def _class_folders(root: Path, split_dirs: dict[str, Path], images: list[Path]) -> dict[str, dict[str, list[Path]]]:
    """``{split: {class: files}}`` from class folders (empty when the images are not in class folders)."""
    by_dir = {folder.name: split for split, folder in split_dirs.items()}
    found: dict[str, dict[str, list[Path]]] = {}
    loose: list[Path] = []
    for path in images:
        parts = path.relative_to(root).parts
        if split_dirs:
            if parts[0] not in by_dir:
                raise DataError(
                    f"{root.name} has split folders ({', '.join(f.name for f in split_dirs.values())}) and also "
                    f"images in '{parts[0]}'; move them into a split folder or remove them."
                )
            split, parts = by_dir[parts[0]], parts[1:]
        else:
            split = "train"
        if len(parts) < 2:
            loose.append(path)
            continue
        found.setdefault(split, {}).setdefault(parts[0], []).append(path)
    if loose and found:
        where = loose[0].parent.name if loose[0].parent != root else root.name
        raise DataError(
            f"{where} holds images both loose ({loose[0].name}) and in class folders; put every image in the folder "
            "of its class."
        )
    for split, classes in found.items():
        named_like_splits = [name for name in classes if split_named(name)]
        if named_like_splits:
            where = split_dirs[split].name if split_dirs else root.name
            raise DataError(
                f"{where} has class folders named like splits ({', '.join(named_like_splits)}); lay it out as "
                "train/<class>/... and test/<class>/..., or name the classes after the diagnosis."
            )
    return found


def _lists_findings(path: Path, options: DataOptions) -> bool:
    """Whether a CSV is a labels file with several findings per image (joined values or one column per finding)."""
    try:
        header, rows = read_table(path, limit=FINDING_SCAN_ROWS)
        columns = columns_for(header, options, path.name, path)
    except DataError:
        return False
    if columns is None:
        return False
    if columns.findings:
        return True
    values = [row.get(columns.label, "") for row in rows]
    try:
        return separator_of(values, path.name, columns.label, None) is not None
    except DataError:  # not clearly findings (captions with commas, say): the folders give the labels, as before
        return False


def _from_folders(
    root: Path, split_dirs: dict, found: dict, csvs: list[Path], ignored: list, options: DataOptions
) -> Layout:
    if split_dirs and "train" not in found:
        raise DataError(
            f"{root.name} has {', '.join(f.name for f in split_dirs.values())} folders but no training folder; add "
            "train/ (or Training/) with one folder per class."
        )
    class_names = sorted(found["train"])
    for split, classes in found.items():
        extra = sorted(set(classes) - set(class_names))
        if extra:
            raise DataError(
                f"{split_dirs[split].name} has class '{extra[0]}', which the training folder lacks; use the same class "
                "folders in every split."
            )
    files = {s: [p for name in class_names for p in found.get(s, {}).get(name, [])] for s in SPLITS}
    labels = {s: [k for k, name in enumerate(class_names) for _ in found.get(s, {}).get(name, [])] for s in SPLITS}
    for path in csvs:
        if options.multi_label is not False and _lists_findings(path, options):
            raise DataError(
                f"{root.name} has class folders and {path.name}, which lists several findings per image; class "
                "folders hold one class per image. Give --single-label to train on the folders' classes, or move the "
                "images out of the class folders (one images/ folder) to train on the CSV's findings."
            )
        ignored.append(
            (
                str(path.relative_to(root)),
                "CSV beside class folders (the folders give the labels; pass --label-column to use the CSV instead)",
            )
        )
    if split_dirs:
        names = ", ".join(f"{f.name} -> {s}" for s, f in split_dirs.items())
        description = f"split folders ({names}), each with one folder per class"
    else:
        description = "one folder per class at the top, no split folders"
    kind = folder_kind(files)
    return Layout(root, class_names, files, labels, set(found), kind, description, ignored=ignored)


def _any_dicom(files: dict[str, list[Path]]) -> bool:
    return any(p.suffix.lower() in DICOM_SUFFIXES or p.suffix == "" for paths in files.values() for p in paths)


def folder_kind(files: dict[str, list[Path]]) -> str:
    """``nifti-folder`` (volumes), ``dicom-folder`` or ``image-folder``.

    Raises:
        DataError: NIfTI volumes mixed with 2D images or DICOM files (one dataset holds one or the other).
    """
    paths = [p for found in files.values() for p in found]
    volumes = [p for p in paths if is_nifti(p)]
    if volumes and len(volumes) < len(paths):
        other = next(p for p in paths if not is_nifti(p))
        raise DataError(
            f"{volumes[0].name} is a NIfTI volume and {other.name} a 2D image or DICOM file; a dataset holds volumes "
            "or images, not both: move one kind to another folder."
        )
    if volumes:
        return "nifti-folder"
    return "dicom-folder" if _any_dicom(files) else "image-folder"


def _labels_csvs(root: Path, csvs: list[Path], options: DataOptions) -> list[tuple[Path, object]]:
    """The CSVs that are labels files (columns given or recognised), nearest the top first."""
    found = []
    for path in sorted(csvs, key=lambda p: (len(p.relative_to(root).parts), str(p))):
        columns = columns_for(read_table(path, limit=0)[0], options, path.name, path)
        if columns is not None:
            found.append((path, columns))
    if not found:
        if not csvs:
            raise DataError(
                f"{root.name} has no class folders and no labels CSV; put the images in one folder per class "
                "(e.g. NORMAL/, PNEUMONIA/), or add a CSV with file and label columns."
            )
        header = read_table(csvs[0], limit=0)[0]
        raise DataError(
            f"{csvs[0].name} has the columns {', '.join(header) or '(none)'} and none is recognised as the file or "
            "label column; give --file-column and --label-column."
        )
    if len(found) > 1 and not all(split_named(p.stem) for p, _ in found):
        raise DataError(
            f"{root.name} has several labels CSVs ({', '.join(p.name for p, _ in found)}); keep one, or name them "
            "train.csv, val.csv and test.csv."
        )
    return found


def _from_csvs(root: Path, split_dirs: dict, images: list[Path], csvs: list[Path], options, ignored) -> Layout:
    found = _labels_csvs(root, csvs, options)
    dir_split = {folder.name: split for split, folder in split_dirs.items()}
    rows, skipped, official = [], set(), None
    for path, columns in found:
        table = read_labels(path, columns, root, images)
        official = split_lists(path.parent) if not columns.split else None
        for file, label, split, group, row in zip(table.files, table.labels, table.splits, table.groups, table.rows):
            split = split or split_named(path.stem) or dir_split.get(file.relative_to(os.path.abspath(root)).parts[0])
            if official is not None:
                split = official["splits"].get(file.name)
                if split is None:
                    ignored.append((str(file.relative_to(os.path.abspath(root))), official["unlisted"]))
                    skipped.add(file)
                    continue
            rows.append((file, label, split or "train", group, row))
    task, class_names, targets, findings = _targets(found, rows, options)
    files = {s: [r[0] for r in rows if r[2] == s] for s in SPLITS}
    labels = {s: [targets[i] for i, r in enumerate(rows) if r[2] == s] for s in SPLITS}
    grouped = any(r[3] for r in rows)
    groups = {s: [r[3] for r in rows if r[2] == s] for s in SPLITS} if grouped else None
    listed = {r[0] for r in rows}
    used = {p for p, _ in found}
    unlisted = [p for p in images if Path(os.path.abspath(p)) not in listed | skipped]
    ignored += [(str(p.relative_to(root)), f"not listed in {found[0][0].name}") for p in unlisted]
    ignored += [(str(p.relative_to(root)), "CSV that is not the labels file") for p in csvs if p not in used]
    given = {s for s in SPLITS if files[s]}
    description = "labels CSV " + "; ".join(f"{p.name} ({c.describe()})" for p, c in found)
    if official is not None:
        description += f", splits from {official['files']}"
    kind = {"nifti-folder": "nifti-csv", "dicom-folder": "dicom-csv", "image-folder": "images-csv"}[folder_kind(files)]
    column = found[0][1].group if grouped else None
    layout = Layout(root, class_names, files, labels, given, kind, description, groups, column, ignored)
    layout.task, layout.findings = task, findings
    layout.attributes = _attributes(found[0][0], rows, options.subgroup_columns)
    return layout


def _attributes(csv_path: Path, rows: list, columns: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Per subgroup column (``--subgroup-column``, matched case-insensitively), each listed file's value."""
    if not columns:
        return {}
    header = read_table(csv_path, limit=0)[0]
    lower = {name.lower(): name for name in header}
    out = {}
    for column in columns:
        name = lower.get(column.lower())
        if name is None:
            raise DataError(
                f"{csv_path.name} has no column '{column}' for --subgroup-column; choose one of: {', '.join(header)}."
            )
        out[column] = {str(r[0]): r[4].get(name, "") for r in rows}
    return out


def _targets(found: list, rows: list, options: DataOptions) -> tuple[str, list[str], list, dict | None]:
    """(task, class or finding names, one target per row, the multi-label record) from the labels CSV rows: one
    class per image, or a findings row (``meddistill.data.multilabel``) when the labels say so."""
    path, columns = found[0]
    if columns.findings:
        matrix, counts = findings_from_columns([r[4] for r in rows], columns.findings, options.uncertain)
        record = {"rule": "one column per finding", "uncertain": options.uncertain, "counts": counts}
        return "multi_label", list(columns.findings), list(matrix), record
    values = [r[1] for r in rows]
    sep = separator_of(values, path.name, columns.label, options.multi_label)
    if sep is not None:
        names, matrix = findings_from_joined(values, sep, path.name)
        record = {"rule": f"findings joined by '{sep}' in column '{columns.label}'", "no_finding": "all absent"}
        return "multi_label", names, list(matrix), record
    empty = next((r[0] for r in rows if not r[1]), None)
    if empty is not None:
        raise DataError(f"{path.name} gives no label for {empty.name}; fill in its label or remove the row.")
    names = class_order(values)
    index = {name: k for k, name in enumerate(names)}
    return "single_label", names, [index[v] for v in values], None


def recognise(root: str | Path, options: DataOptions | None = None) -> Layout:
    """Recognise the layout of a dataset folder (see the module docstring).

    Raises:
        DataError: an empty folder, one class, classes named like splits, two folders for one split, a labels CSV
            that cannot be read, or images in places that make the layout ambiguous.
    """
    top, options = Path(root), options or DataOptions()
    root = strip_single_top_folder(top)
    images, csvs, ignored = scan(root)
    if root != top:
        ignored += [("../" + p.name, "note beside the wrapping folder") for p in sorted(top.iterdir()) if p.is_file()]
    split_dirs = _split_folders(root)
    found = _class_folders(root, split_dirs, images) if not options.csv_columns_given else {}
    if found and (len(found.get("train", {})) >= 2 or not csvs):
        layout = _from_folders(root, split_dirs, found, csvs, ignored, options)
    else:
        layout = _from_csvs(root, split_dirs, images, csvs, options, ignored)
    if root != top:
        layout.description += f", inside the wrapping folder '{root.name}'"
    if options.subgroup_columns and not layout.attributes:
        raise DataError(
            f"{top.name} takes its labels from class folders, so there is no CSV column for --subgroup-column "
            f"{options.subgroup_columns[0]}; give the labels in a CSV with that column, or remove the option."
        )
    if not layout.class_names or not any(layout.files.values()):
        raise DataError(f"{top.name} contains no images; add PNG, JPEG, BMP, TIFF or DICOM files.")
    if len(layout.class_names) < 2:
        raise DataError(
            f"{top.name} has only one class ('{layout.class_names[0]}'); a classifier needs at least two classes."
        )
    return layout
