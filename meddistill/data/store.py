"""Datasets kept under ``MEDDISTILL_HOME/datasets``, named by content hash.

A ``.zip`` is extracted once into a folder named by its content hash, so the
same file given twice is stored once (uploads: ``meddistill.data.uploads``).
"""

from __future__ import annotations

import json
from pathlib import Path

from meddistill.data.archive import safe_extract_zip, strip_single_top_folder
from meddistill.data.options import DataOptions
from meddistill.io.atomic import atomic_write_json
from meddistill.io.content import file_hash
from meddistill.paths import DATASETS_DIR, home_dir

OPTIONS_SUFFIX = ".options.json"  # beside a stored dataset's folder: how it is read


def datasets_dir() -> Path:
    """``MEDDISTILL_HOME/datasets`` (created on first use)."""
    return home_dir(DATASETS_DIR)


def content_hash(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256 (``meddistill.io.content``)."""
    return file_hash(path)


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


def _options_file(source: str | Path) -> Path | None:
    """``datasets/<name>.options.json`` for a source stored under ``datasets/``, else ``None``."""
    source, base = Path(source).resolve(), datasets_dir().resolve()
    if base not in source.parents:
        return None
    top = base / source.relative_to(base).parts[0]
    return top.with_name(top.name + OPTIONS_SUFFIX)


def save_options(source: str | Path, options: DataOptions) -> None:
    """Remember how a stored dataset is read (nothing is written for the defaults or outside ``datasets/``)."""
    path = _options_file(source)
    if path is not None and options.given():
        atomic_write_json(path, options.given())


def stored_options(source: str | Path) -> DataOptions:
    """The options a stored dataset was stored with (defaults for anything else)."""
    path = _options_file(source)
    if path is None or not path.is_file():
        return DataOptions()
    values = json.loads(path.read_text(encoding="utf-8"))
    return DataOptions(**{k: v for k, v in values.items() if k in DataOptions.names()})
