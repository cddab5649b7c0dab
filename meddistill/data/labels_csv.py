"""Labels from a CSV with any column names: ``--file-column``, ``--label-column``, ``--split-column`` and
``--group-column``, or guessed from common names (and the guess is reported).

A file cell may be a path relative to the CSV, relative to the dataset folder, a bare file name found anywhere
in the folder, or a file name without its extension (an image id such as ``ISIC_0024306``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from meddistill.data.dataset import split_named
from meddistill.data.multilabel import finding_columns
from meddistill.data.options import DataOptions
from meddistill.data.volumes import is_nifti, volume_stem
from meddistill.errors import DataError

# Common column names, compared case-insensitively, in order of preference.
GUESSES = {
    "file": (
        "file",
        "filename",
        "file_name",
        "image",
        "image_path",
        "image_name",
        "image_id",
        "image index",
        "path",
        "filepath",
        "scan",
        "volume",
        "series",
    ),
    "label": ("label", "class", "diagnosis", "target", "dx", "finding", "category", "finding labels", "findings"),
    "split": ("split", "subset", "partition"),
    "group": (
        "patient_id",
        "patientid",
        "patient id",
        "patient",
        "subject_id",
        "subject",
        "participant_id",
        "study_id",
    ),
}
PREVIEW_ROWS = 5
FINDING_SCAN_ROWS = 2000  # rows read to recognise one-column-per-finding files


@dataclass
class Columns:
    """The CSV columns in use (header spelling) and which of them were guessed; ``findings`` are the one-column-per-
    finding columns of a CheXpert-style file (then ``label`` is None)."""

    file: str
    label: str | None
    split: str | None = None
    group: str | None = None
    guessed: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        used = {"file": self.file, "label": self.label, "split": self.split, "group": self.group}
        parts = [
            f"{role} column '{name}'" + (" (guessed)" if role in self.guessed else "")
            for role, name in used.items()
            if name
        ]
        if self.findings:
            parts.append(f"{len(self.findings)} finding columns ({', '.join(self.findings)})")
        return ", ".join(parts)


@dataclass
class CsvLabels:
    """Rows of a labels CSV resolved to files: parallel lists, one entry per listed image."""

    csv_path: Path
    columns: Columns
    files: list[Path]
    labels: list[str]  # the label cell ("" when empty: a multi-label file's "no finding")
    splits: list[str | None]
    groups: list[str | None]
    rows: list[dict[str, str]] = field(default_factory=list)  # the whole row of each image (finding columns)


def read_table(path: Path, limit: int | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV; ``limit`` rows at most. ``DataError`` for a file that is not a readable CSV."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [c.strip() for c in reader.fieldnames or [] if c is not None]
            for row in reader:
                rows.append(
                    {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
                )
                if limit is not None and len(rows) >= limit:
                    break
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a UTF-8 text CSV; save it as CSV (UTF-8).") from None
    except csv.Error as error:
        raise DataError(
            f"{path.name} is not a readable CSV ({error}); save it as plain comma-separated text."
        ) from None
    return header, rows


def preview(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the first rows of a CSV (what the Data page shows before the user picks columns)."""
    return read_table(path, limit=PREVIEW_ROWS)


def _pick(header: list[str], role: str, given: str | None, csv_name: str) -> tuple[str | None, bool]:
    """(column, guessed) for ``role``: the given name (must exist) or the first common name present."""
    lower = {name.lower(): name for name in header}
    if given is not None:
        if given.lower() not in lower:
            raise DataError(
                f"{csv_name} has no column '{given}' (its columns: {', '.join(header) or 'none'}); "
                f"give --{role}-column one of them."
            )
        return lower[given.lower()], False
    found = next((lower[name] for name in GUESSES[role] if name in lower), None)
    return found, found is not None


def columns_for(header: list[str], options: DataOptions, csv_name: str, csv_path: Path | None = None) -> Columns | None:
    """The columns to read, or ``None`` when the CSV has no recognisable file and label columns and none were
    given (it is then not a labels file). Without a label column, two or more columns of 1 / 0 / -1 / blank
    (``csv_path``'s first rows) are one column per finding (``meddistill.data.multilabel``)."""
    picked = {
        role: _pick(header, role, getattr(options, f"{role}_column"), csv_name)
        for role in ("file", "label", "split", "group")
    }
    if picked["file"][0] is not None and picked["label"][0] is None and options.label_column is None:
        used = {name for name, _ in picked.values() if name}
        findings = finding_columns(header, read_table(csv_path, limit=FINDING_SCAN_ROWS)[1], used) if csv_path else []
        if len(findings) >= 2:
            guessed = [role for role, (name, was_guessed) in picked.items() if name and was_guessed]
            return Columns(picked["file"][0], None, picked["split"][0], picked["group"][0], guessed, findings)
    if picked["file"][0] is None or picked["label"][0] is None:
        if options.file_column or options.label_column:
            missing = "--file-column" if picked["file"][0] is None else "--label-column"
            raise DataError(
                f"{csv_name} has no column MedDistill recognises for {missing[2:-7]}s (its columns: "
                f"{', '.join(header)}); give {missing}."
            )
        return None
    guessed = [role for role, (name, was_guessed) in picked.items() if name and was_guessed]
    return Columns(*(picked[role][0] for role in ("file", "label", "split", "group")), guessed=guessed)


def _resolve(value: str, csv_path: Path, root: Path, index: dict[str, list[Path]]) -> Path | None:
    """The image file a CSV cell names, or ``None``; ``DataError`` when it is outside the folder or ambiguous."""
    inside = Path(os.path.abspath(root))
    for base in (csv_path.parent, root):
        candidate = Path(os.path.abspath(base / value))  # lexically: a linked folder inside the dataset is inside it
        if candidate.is_file():
            if inside not in candidate.parents:
                raise DataError(
                    f"{csv_path.name} names {value}, which lies outside the dataset folder; list only files inside it."
                )
            return candidate
    matches = index.get(Path(value).name.lower()) or index.get(Path(value).name.lower() + "\0stem") or []
    if len(matches) > 1:
        raise DataError(
            f"{csv_path.name} names {value}, which matches {len(matches)} files ({matches[0].name} in "
            f"{matches[0].parent.name}, {matches[1].name} in {matches[1].parent.name}); give the path relative to "
            "the CSV."
        )
    return Path(os.path.abspath(matches[0])) if matches else None


def file_index(images: list[Path]) -> dict[str, list[Path]]:
    """Images by lower-case file name and by stem (key ``stem + "\\0stem"``), for cells that give only a name."""
    index: dict[str, list[Path]] = {}
    for path in images:
        index.setdefault(path.name.lower(), []).append(path)
        index.setdefault(path.stem.lower() + "\0stem", []).append(path)
        if is_nifti(path) and path.name.lower().endswith(".gz"):  # scan_01.nii.gz: by scan_01 too
            index.setdefault(volume_stem(path).lower() + "\0stem", []).append(path)
    return index


def _folder_files(value: str, csv_path: Path, root: Path, images: list[Path]) -> list[Path]:
    """The files of the dataset under the folder a CSV cell names (a DICOM series' folder), or none."""
    inside = Path(os.path.abspath(root))
    for base in (csv_path.parent, root):
        folder = Path(os.path.abspath(base / value))
        if folder.is_dir() and (folder == inside or inside in folder.parents):
            found = [Path(os.path.abspath(p)) for p in images if folder in Path(os.path.abspath(p)).parents]
            if found:
                return found
    return []


def read_labels(csv_path: Path, columns: Columns, root: Path, images: list[Path]) -> CsvLabels:
    """Resolve every row of a labels CSV to an image file.

    Raises:
        DataError: a row without a label, a split value that is not train/val/test (or an alias), or files the
            CSV names that are not in the folder.
    """
    _, rows = read_table(csv_path)
    index = file_index(images)
    out = CsvLabels(csv_path, columns, [], [], [], [])
    missing = []
    for row in rows:
        value = row.get(columns.file, "")
        if not value:
            continue
        path = _resolve(value, csv_path, root, index)
        paths = [path] if path is not None else _folder_files(value, csv_path, root, images)
        if not paths:
            missing.append(value)
            continue
        label = row.get(columns.label, "") if columns.label else ""
        split = None
        if columns.split and row.get(columns.split):
            split = split_named(row[columns.split])
            if split is None:
                raise DataError(
                    f"{csv_path.name} gives split '{row[columns.split]}' for {value}; use train, val or test "
                    "(or training, valid, validation, testing)."
                )
        for path in paths:  # a row naming a folder (a DICOM series) labels every file in it
            out.files.append(path)
            out.rows.append(row)
            out.labels.append(label)
            out.splits.append(split)
            out.groups.append(row.get(columns.group) or None if columns.group else None)
    if missing:
        raise DataError(
            f"{csv_path.name} names {len(missing)} file(s) that are not in the dataset (first: {missing[0]}); add "
            "them or remove their rows."
        )
    return out


def class_order(labels: list[str]) -> list[str]:
    """Class names sorted numerically when every label is an integer (so 2 comes before 10), else by name."""
    names = set(labels)
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)
