"""Where MedDistill keeps things: ``MEDDISTILL_HOME`` (runs, datasets, index) and ``MEDDISTILL_DATA``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The folder holding the run index, run folders and stored datasets (``~/.meddistill``)."""
    path = Path(os.environ.get("MEDDISTILL_HOME", Path.home() / ".meddistill")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data() -> Path:
    """The real data for tests, benchmarks and demos (``MEDDISTILL_DATA``, default ``../shared/data``)."""
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return Path(os.environ.get("MEDDISTILL_DATA", default)).expanduser()
