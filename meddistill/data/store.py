"""Datasets kept under ``MEDDISTILL_HOME/datasets``, named by content hash.

An upload (a ``.zip`` or ``.npz``) is checked first and moved into place only
when it is valid, so a refused upload leaves nothing behind and the same file
uploaded twice is stored once.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from meddistill.errors import DataError
from meddistill.paths import home


def datasets_dir() -> Path:
    """``MEDDISTILL_HOME/datasets`` (created on first use)."""
    path = home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _safe_stem(name: str) -> str:
    stem = Path(name).stem
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40] or "dataset"


def extract_zip(zip_path: Path) -> Path:
    """Extract a dataset ``.zip`` once into ``datasets/<stem>-<hash>/`` and return its data root."""
    from meddistill.data.archive import safe_extract_zip, strip_single_top_folder

    target = datasets_dir() / f"{_safe_stem(zip_path.name)}-{content_hash(zip_path)}"
    return strip_single_top_folder(safe_extract_zip(zip_path, target))


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
    from meddistill.data import load_dataset

    suffix = Path(filename).suffix.lower()
    if suffix not in (".zip", ".npz"):
        raise DataError(f"{filename} is neither a .zip of class folders nor a MedMNIST .npz; upload one of those.")
    with tempfile.TemporaryDirectory(dir=datasets_dir(), prefix=".upload-") as tmp:
        staged = Path(tmp) / f"{_safe_stem(filename)}{suffix}"
        staged.write_bytes(data)
        digest = content_hash(staged)
        if suffix == ".npz":
            folder = datasets_dir() / f"{_safe_stem(filename)}-{digest}"
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
            shutil.rmtree(datasets_dir() / f"{_safe_stem(filename)}-{digest}", ignore_errors=True)
            raise
        return source


def stored_datasets() -> list[Path]:
    """Stored datasets, newest first: the ``.npz`` file of an uploaded npz, else the extracted folder."""
    entries = []
    for entry in datasets_dir().iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        npz = list(entry.glob("*.npz"))
        entries.append(npz[0] if len(npz) == 1 and len(list(entry.iterdir())) == 1 else entry)
    return sorted(entries, key=lambda p: p.stat().st_mtime, reverse=True)
