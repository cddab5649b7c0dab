"""Where MedDistill keeps things: every name under ``MEDDISTILL_HOME`` (the run index, run folders, stored
datasets, uploads, cached MedMNIST files) and ``MEDDISTILL_DATA``. No other module spells these names.

    MEDDISTILL_HOME/
        runs.sqlite      the run index and the reviews (``meddistill.store.index``, ``meddistill.store.reviews``)
        runs/<RUN_ID>/   one folder per run (``meddistill.store.layout`` names the files inside)
        datasets/        uploaded datasets, by content hash (``meddistill.data.store``)
        teachers/        uploaded teacher files, by content hash (``meddistill.services.teachers``)
        uploads/         de-identified scans uploaded on Explain (``meddistill.services.scans``)
        medmnist/        MedMNIST files downloaded once (``meddistill.data.medmnist_source``)
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

INDEX_FILE = "runs.sqlite"
RUNS_DIR = "runs"
DATASETS_DIR = "datasets"
TEACHERS_DIR = "teachers"
UPLOADS_DIR = "uploads"
MEDMNIST_DIR = "medmnist"


def home() -> Path:
    """The folder holding the run index, run folders and stored datasets (``~/.meddistill``)."""
    path = Path(os.environ.get("MEDDISTILL_HOME", Path.home() / ".meddistill")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data() -> Path:
    """The real data for tests, benchmarks and demos (``MEDDISTILL_DATA``, default ``../shared/data``)."""
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return Path(os.environ.get("MEDDISTILL_DATA", default)).expanduser()


def home_dir(name: str, root: Path | None = None) -> Path:
    """``MEDDISTILL_HOME/<name>`` (or under ``root``), created on first use; ``name`` is one of the names above."""
    path = (root or home()) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_file(root: str | Path | None = None) -> Path:
    """The run index database, ``MEDDISTILL_HOME/runs.sqlite`` (or under ``root``)."""
    return Path(root or home()) / INDEX_FILE


def connect_index(root: str | Path | None = None) -> sqlite3.Connection:
    """A connection to the run index, as every user of it opens it: autocommit, 30 s busy timeout, WAL journal."""
    db = sqlite3.connect(index_file(root), timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    return db
