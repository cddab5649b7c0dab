"""Content-addressed files: named by the first 16 hex digits of their SHA-256, written once, atomically.

The one home of how MedDistill keeps uploads (datasets, teacher files, scans): the same bytes given twice are
stored once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from meddistill.io.atomic import atomic_write

DIGITS = 16  # hex digits of the SHA-256 in a stored file's name


def bytes_hash(data: bytes) -> str:
    """First ``DIGITS`` hex digits of the SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()[:DIGITS]


def file_hash(path: str | Path) -> str:
    """First ``DIGITS`` hex digits of the file's SHA-256."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:DIGITS]


def store_bytes(folder: Path, data: bytes, name: str) -> Path:
    """Keep ``data`` as ``folder/<hash>-<name>`` (``name``: a file name, folders dropped); written once."""
    path = folder / f"{bytes_hash(data)}-{Path(name).name}"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path
