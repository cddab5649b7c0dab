"""Clinician reviews of cases, kept in the run index database (SQLite, WAL; ``paths.connect_index``)."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from meddistill.paths import connect_index, index_file

VERDICTS = ("agree", "disagree", "unsure")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    run_id TEXT NOT NULL, case_id TEXT NOT NULL, verdict TEXT NOT NULL, note TEXT DEFAULT '',
    reviewer TEXT DEFAULT '', created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_run ON reviews (run_id, case_id);
"""


class ReviewStore:
    """Reviews per run and case; the latest review of a case is the one that counts.

    Args:
        root: Folder holding the run index (default ``MEDDISTILL_HOME``).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = root
        self.db_path = index_file(root)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_index(self.root)

    def record(self, run_id: str, case_id: str | int, verdict: str, note: str = "", reviewer: str = "") -> None:
        """Store a review (agree / disagree / unsure with the student's prediction) with the time."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; choose one of: {', '.join(VERDICTS)}")
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO reviews VALUES (?,?,?,?,?,?)",
                (run_id, str(case_id), verdict, note.strip()[:2000], reviewer.strip()[:200], time.time()),
            )

    def latest(self, run_id: str) -> dict[str, dict]:
        """case id -> the latest review {verdict, note, reviewer, created}."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT case_id, verdict, note, reviewer, created FROM reviews WHERE run_id=? ORDER BY created",
                (run_id,),
            ).fetchall()
        return {r[0]: {"verdict": r[1], "note": r[2], "reviewer": r[3], "created": r[4]} for r in rows}

    def export_csv(self, run_id: str, cases: list[dict]) -> str:
        """The case table with each case's latest review, as CSV."""
        reviews = self.latest(run_id)
        out = io.StringIO()
        fields = list(cases[0]) + ["verdict", "note", "reviewer", "reviewed at"] if cases else ["case"]
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for case in cases:
            review = reviews.get(str(case["case"]), {})
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(review["created"])) if review else ""
            writer.writerow(
                {
                    **case,
                    "verdict": review.get("verdict", ""),
                    "note": review.get("note", ""),
                    "reviewer": review.get("reviewer", ""),
                    "reviewed at": stamp,
                }
            )
        return out.getvalue()
