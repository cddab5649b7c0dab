"""Uploaded datasets: checked first and moved into ``MEDDISTILL_HOME/datasets`` only when valid.

A refused upload leaves nothing behind, and the same file uploaded twice is stored once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from meddistill.data.loader import load_dataset
from meddistill.data.store import content_hash, datasets_dir, extract_zip, safe_stem
from meddistill.errors import DataError


def store_upload(data: bytes, filename: str) -> Path:
    """Validate an uploaded ``.zip`` or ``.npz`` and keep it under ``datasets/``.

    Args:
        data: The uploaded file's bytes.
        filename: Its name as the user gave it (only the suffix and stem are used).

    Returns:
        The stored source: an ``.npz`` file or the extracted folder.

    Raises:
        DataError: unsupported file type or an invalid dataset; nothing is kept.
    """
    try:
        return _store_upload(data, filename)
    except DataError as error:
        if filename in str(error):
            raise
        raise DataError(f"{filename}: {error}") from None


def _store_upload(data: bytes, filename: str) -> Path:
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
                load_dataset(staged, verify="all")
                folder.mkdir(exist_ok=True)
                shutil.move(staged, final)
            return final
        source = extract_zip(staged)
        try:
            load_dataset(source, verify="all")
        except DataError:
            shutil.rmtree(datasets_dir() / f"{safe_stem(filename)}-{digest}", ignore_errors=True)
            raise
        return source
