"""Uploaded datasets: checked first and moved into ``MEDDISTILL_HOME/datasets`` only when valid.

A refused upload leaves nothing behind, and the same file uploaded twice is stored once.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from pathlib import Path

from meddistill.data.labels_csv import PREVIEW_ROWS
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.data.store import content_hash, datasets_dir, extract_zip, safe_stem, save_options
from meddistill.errors import DataError


def store_upload(data: bytes, filename: str, options: DataOptions | None = None) -> Path:
    """Validate an uploaded ``.zip`` or ``.npz`` and keep it under ``datasets/``.

    Args:
        data: The uploaded file's bytes.
        filename: Its name as the user gave it (only the suffix and stem are used).
        options: How to read it (labels-CSV columns, patient key, duplicates); kept beside the stored dataset
            (``stored_options``) so that picking it again reads it the same way.

    Returns:
        The stored source: an ``.npz`` file or the extracted folder.

    Raises:
        DataError: unsupported file type or an invalid dataset; nothing is kept.
    """
    options = options or DataOptions()
    try:
        source = _store_upload(data, filename, options)
    except DataError as error:
        if filename in str(error):
            raise
        raise DataError(f"{filename}: {error}") from None
    save_options(source, options)
    return source


def _store_upload(data: bytes, filename: str, options: DataOptions) -> Path:
    suffix = Path(filename).suffix.lower()
    if suffix not in (".zip", ".npz"):
        raise DataError(f"{filename} is neither a .zip of class folders nor a MedMNIST .npz; upload one of those.")
    with tempfile.TemporaryDirectory(dir=datasets_dir(), prefix=".upload-") as tmp:
        staged = Path(tmp) / f"{safe_stem(filename)}{suffix}"
        staged.write_bytes(data)
        digest = content_hash(staged)
        if suffix == ".npz":
            folder = datasets_dir() / f"{safe_stem(filename)}-{digest}"
            final = folder / staged.name  # keeps the file name, so MedMNIST class names are recognised
            if not final.exists():
                load_dataset(staged, verify="all", options=options)
                folder.mkdir(exist_ok=True)
                shutil.move(staged, final)
            return final
        source = extract_zip(staged)
        try:
            load_dataset(source, verify="all", options=options)
        except DataError:
            shutil.rmtree(datasets_dir() / f"{safe_stem(filename)}-{digest}", ignore_errors=True)
            raise
        return source


def zip_csvs(data: bytes, limit: int = PREVIEW_ROWS) -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    """The CSV files inside an uploaded ``.zip`` (not hidden, not ``__MACOSX``): name -> (header, first rows),
    read from the archive without extracting anything (the Data page's column pickers)."""
    found = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                parts = name.split("/")
                if not name.lower().endswith(".csv") or any(p.startswith(".") or p == "__MACOSX" for p in parts):
                    continue
                text = archive.read(name).decode("utf-8-sig", errors="replace")
                reader = csv.DictReader(io.StringIO(text))
                header = [c.strip() for c in reader.fieldnames or [] if c]
                rows = [dict(row) for _, row in zip(range(limit), reader)]
                found[name] = (header, rows)
    except (zipfile.BadZipFile, csv.Error, OSError, RuntimeError, NotImplementedError):
        return {}  # the full check when the upload is stored says what is wrong with the file
    return found
