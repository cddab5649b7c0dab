"""What a tracker is (``Tracker``) and the registry the trackers register in (``meddistill.tracking.backends``)."""

from __future__ import annotations

from pathlib import Path

from meddistill.registry import Registry

TRACKERS = Registry("tracker")
INSTALL = 'pip install -e ".[tracking]"'
EPOCH_FIGURES = ("train_loss", "val_loss", "val_acc", "val_auc", "val_balanced_acc")
TENSORBOARD_DIR = "tensorboard"


class Tracker:
    """The base of a tracker: subclasses set ``module`` (what must be importable) and implement the methods."""

    module = ""

    def __init__(self, run_dir: Path, run_id: str, uri: str | None) -> None:
        self.run_dir, self.run_id, self.uri = run_dir, run_id, uri

    def params(self, settings: dict) -> None:
        raise NotImplementedError

    def epoch(self, role: str, row: dict) -> None:
        raise NotImplementedError

    def final(self, figures: dict[str, float]) -> None:
        raise NotImplementedError

    def artifacts(self, files: list[Path]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and end (the default does nothing)."""
