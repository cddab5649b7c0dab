"""Runs in the tracker a lab already uses: TensorBoard and MLflow (``--log-to tensorboard --log-to mlflow``).

A tracker receives, while the run trains, each model's per-epoch losses and val figures (``train_loss``,
``val_loss``, ``val_acc``, ``val_auc``, ``val_balanced_acc`` under ``<role>/``), then the settings as parameters,
the final test figures of every model, and the run's files as artifacts (report.json, the model card, the exported
ONNX files). Both work offline: TensorBoard writes event files into ``<run folder>/tensorboard``; MLflow writes to a
local file store (``MEDDISTILL_HOME/mlruns``) unless ``--tracking-uri`` names another.

Trackers are optional extras (``pip install -e ".[tracking]"``); asking for one that is not installed is refused
before training with the command that installs it. Adding a tracker is one registration in ``TRACKERS``.

Example:
    >>> trackers = open_trackers(config, run_dir)     # from config.log_to
    >>> callback = trackers.listener(bars)            # pass to execute / run_recorded
    >>> trackers.finish(run_dir, files)               # after the report is written
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from meddistill.errors import MedDistillError
from meddistill.tracking import backends  # noqa: F401  - registers tensorboard and mlflow
from meddistill.tracking.base import INSTALL, TRACKERS, Tracker

__all__ = ["INSTALL", "TRACKERS", "Tracker", "Trackers", "available_trackers", "check_trackers", "open_trackers"]


def check_trackers(names: list[str]) -> None:
    """Refuse an unknown tracker, or one whose library is not installed, with one sentence."""
    for name in names:
        entry = TRACKERS.entry(name)
        module = entry.factory.module
        if importlib.util.find_spec(module) is None:
            raise MedDistillError(f"--log-to {name} needs the {module} package, which is not installed; run: {INSTALL}")


class Trackers:
    """The trackers of one run, fed together."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def listener(self, then: Callable | None = None) -> Callable:
        """A progress listener that logs every finished epoch, then calls ``then`` (the progress bars)."""
        logged: dict[str, int] = {}

        def on_progress(event) -> None:
            if event.kind == "epoch" and event.history:
                start = logged.get(event.role, 0)
                for row in event.history[start:]:
                    for tracker in self.trackers:
                        tracker.epoch(event.role, row)
                logged[event.role] = len(event.history)
            if then is not None:
                then(event)

        return on_progress

    def params(self, settings: dict) -> None:
        flat = {k: v for k, v in settings.items() if k not in ("extra", "given") and v not in (None, [], {})}
        for tracker in self.trackers:
            tracker.params({k: str(v) if isinstance(v, (list, dict)) else v for k, v in flat.items()})

    def finish(self, figures: dict[str, float], files: list[Path]) -> None:
        for tracker in self.trackers:
            tracker.final(figures)
            tracker.artifacts([f for f in files if f.is_file()])
            tracker.close()


def open_trackers(names: list[str], run_dir: str | Path, uri: str | None = None) -> Trackers:
    """The trackers ``names`` (``config.log_to``) for the run folder ``run_dir``."""
    check_trackers(names)
    run_dir = Path(run_dir)
    return Trackers([TRACKERS.create(name, run_dir, run_dir.name, uri) for name in names])


def available_trackers() -> list[str]:
    return TRACKERS.available()
