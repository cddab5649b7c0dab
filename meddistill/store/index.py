"""Runs on disk: one folder per run (``meddistill.store.layout``) plus an SQLite index under ``MEDDISTILL_HOME``.

The index (``paths.INDEX_FILE``, WAL mode) lists every run with its status:
queued, running, done, failed, cancelled or interrupted. A run whose process
died shows as interrupted at the next start, never as running forever.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from meddistill.errors import MedDistillError
from meddistill.io.atomic import atomic_write_json
from meddistill.paths import RUNS_DIR, connect_index, home, index_file
from meddistill.settings.config import RunConfig
from meddistill.store.layout import CONFIG_FILE, STATUS_FILE, RunFolder
from meddistill.store.report import Report


class RunStatus(StrEnum):
    """A run's status in the index (and ``status.json``); compares equal to its plain string."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


STATUSES = tuple(RunStatus)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, status TEXT NOT NULL, message TEXT DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL, dataset TEXT, teacher TEXT, student TEXT,
    pid INTEGER, host TEXT
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One row of the index."""

    id: str
    path: Path
    status: str
    message: str
    created: float
    updated: float
    dataset: str
    teacher: str
    student: str

    @property
    def folder(self) -> RunFolder:
        """The run's folder (config, report, weights, models)."""
        return RunFolder(self.path)

    def report(self) -> Report | None:
        """The run's ``report.json`` (typed), or ``None`` while it has none."""
        return self.folder.report()

    def metrics(self) -> dict:
        """Per-epoch history per model role (``metrics.json``), empty before the first epoch."""
        return self.folder.metrics()

    def config(self) -> RunConfig:
        """The run's settings (``config.json``)."""
        return self.folder.config()


def new_run_id() -> str:
    """Sortable and unique: ``20261130-142501-a3f9c2``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """The run index and run folders.

    Args:
        root: Folder for the index and the run folders (default ``MEDDISTILL_HOME``).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else home()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = index_file(self.root)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_index(self.root)

    def create(self, config: RunConfig, run_dir: str | Path | None = None, status: str = RunStatus.QUEUED) -> RunRecord:
        """Register a new run, make its folder and write ``config.json``."""
        run_id = new_run_id()
        path = Path(run_dir).expanduser().resolve() if run_dir else self.root / RUNS_DIR / run_id
        if path.exists() and any(path.iterdir()):
            raise MedDistillError(f"{path} already exists and is not empty; choose another --out folder.")
        path.mkdir(parents=True, exist_ok=True)
        config.save(path / CONFIG_FILE)
        self._insert(run_id, path, status, time.time(), config, os.getpid())
        self._write_status(path, run_id, status, "")
        return self.get(run_id)

    def _insert(self, run_id: str, path: Path, status: str, created: float, config: RunConfig, pid: int | None) -> None:
        """Add one row to the index (``pid``: the process that owns the run, None for an imported folder)."""
        row = (run_id, str(path), status, created, time.time(), config.data, config.teacher, config.student, pid)
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO runs (id, path, status, created, updated, dataset, teacher, student, pid, host) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*row, socket.gethostname()),
            )

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        """Change a run's status (and remember which process owns it)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; choose one of: {', '.join(STATUSES)}")
        status = RunStatus(status)
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE runs SET status=?, message=?, updated=?, pid=?, host=? WHERE id=?",
                (status, message, time.time(), os.getpid(), socket.gethostname(), run_id),
            )
        self._write_status(self.get(run_id).path, run_id, status, message)

    def set_models(self, run_id: str, teacher: str, student: str) -> None:
        """Record the architectures a run trained (the preset may pick the teacher from the data)."""
        with closing(self._connect()) as db:
            db.execute("UPDATE runs SET teacher=?, student=? WHERE id=?", (teacher, student, run_id))

    @staticmethod
    def _write_status(path: Path, run_id: str, status: str, message: str) -> None:
        if path.is_dir():
            atomic_write_json(
                path / STATUS_FILE, {"run_id": run_id, "status": status, "message": message, "updated": time.time()}
            )

    def _rows(self, where: str = "", args: tuple = ()) -> list[RunRecord]:
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT id, path, status, message, created, updated, dataset, teacher, student FROM runs {where} "
                "ORDER BY created DESC",
                args,
            ).fetchall()
        return [
            RunRecord(r[0], Path(r[1]), r[2], r[3] or "", r[4], r[5], r[6] or "", r[7] or "", r[8] or "") for r in rows
        ]

    def get(self, run_id: str) -> RunRecord:
        """The run with this id (or id prefix, or folder path)."""
        rows = self._rows("WHERE id = ? OR path = ?", (run_id, str(Path(run_id).expanduser().resolve())))
        rows = rows or self._rows("WHERE id LIKE ?", (f"{run_id}%",))
        if len(rows) != 1:
            found = "no run" if not rows else f"{len(rows)} runs"
            raise MedDistillError(f"{found} matches '{run_id}'; list the runs with `meddistill runs`.")
        return rows[0]

    def list(self) -> list[RunRecord]:
        """All runs, newest first."""
        return self._rows()

    def mark_interrupted(self, exclude: set[str] = frozenset()) -> list[str]:
        """Mark running/queued runs whose owning process is gone as interrupted.

        Args:
            exclude: Run ids the caller is itself running (left alone).

        Returns:
            The ids that were marked.
        """
        host = socket.gethostname()
        with closing(self._connect()) as db:
            marks = ",".join("?" * len(ACTIVE))
            rows = db.execute(f"SELECT id, pid, host FROM runs WHERE status IN ({marks})", ACTIVE).fetchall()
        stale = [
            r[0] for r in rows if r[0] not in exclude and r[2] == host and (r[1] == os.getpid() or not _pid_alive(r[1]))
        ]
        for run_id in stale:
            self.set_status(
                run_id,
                RunStatus.INTERRUPTED,
                "The process running it stopped before it finished; resume it to continue from the last completed "
                "epoch.",
            )
        return stale

    def import_run(self, run_dir: str | Path) -> RunRecord:
        """Add a run folder made elsewhere (e.g. by torchrun on a cluster) to the index."""
        path = Path(run_dir).expanduser().resolve()
        folder = RunFolder(path)
        if not folder.file(CONFIG_FILE).is_file():
            raise MedDistillError(f"{path} has no {CONFIG_FILE}; give the folder a `meddistill run` wrote.")
        config = folder.config()
        report = folder.report()
        status = RunStatus.DONE if report is not None else RunStatus.INTERRUPTED
        existing = self._rows("WHERE path = ?", (str(path),))
        if existing:
            return existing[0]
        run_id = (report.run_id if report else "") or new_run_id()
        if self._rows("WHERE id = ?", (run_id,)):
            run_id = new_run_id()
        self._insert(run_id, path, status, folder.file(CONFIG_FILE).stat().st_mtime, config, None)
        return self.get(run_id)


def open_run(run: str | Path, store: RunStore | None = None) -> RunFolder:
    """A run folder from an existing folder path, or from a run id (or id prefix) in the index.

    A folder is returned as it is; ``RunFolder.require_finished`` checks it holds a run.

    Raises:
        MedDistillError: no run or several runs match (the sentence says how to list them).
    """
    path = Path(run).expanduser()
    if path.is_dir():
        return RunFolder(path.resolve())
    return (store or RunStore()).get(str(run)).folder
