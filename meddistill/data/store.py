"""Datasets kept under ``MEDDISTILL_HOME/datasets``, named by content hash.

A ``.zip`` is extracted once into a folder named by its content hash, so the
same file given twice is stored once (uploads: ``meddistill.data.uploads``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from meddistill.data.archive import safe_extract_zip, strip_single_top_folder
from meddistill.paths import home


def datasets_dir() -> Path:
    """``MEDDISTILL_HOME/datasets`` (created on first use)."""
    path = home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def safe_stem(name: str) -> str:
    """A file-name-safe stem (letters, digits, - and _; at most 40 characters)."""
    stem = Path(name).stem
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40] or "dataset"


def extract_zip(zip_path: Path) -> Path:
    """Extract a dataset ``.zip`` once into ``datasets/<stem>-<hash>/`` and return its data root."""
    target = datasets_dir() / f"{safe_stem(zip_path.name)}-{content_hash(zip_path)}"
    return strip_single_top_folder(safe_extract_zip(zip_path, target))


def stored_datasets() -> list[Path]:
    """Stored datasets, newest first: the ``.npz`` file of an uploaded npz, else the extracted folder."""
    entries = []
    for entry in datasets_dir().iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        npz = list(entry.glob("*.npz"))
        entries.append(npz[0] if len(npz) == 1 and len(list(entry.iterdir())) == 1 else entry)
    return sorted(entries, key=lambda p: p.stat().st_mtime, reverse=True)
