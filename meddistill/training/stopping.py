"""Which epoch a fit keeps and when it stops: the best-epoch rule and early stopping, one home for both.

The kept epoch is the one of highest val score (AUC, or ACC where AUC is undefined) among the epochs whose val
balanced accuracy has not collapsed (``eligible``). Early stopping counts the epochs since the last one that beat
the score of the previous such epoch by at least ``min_delta``: with ``min_delta`` 0 every better kept epoch resets
the count; with a positive one a val AUC that creeps up by 0.0001 an epoch on a saturated set (train loss near 0)
no longer keeps the run going to its last epoch. The weights kept are still those of the best epoch that ran.
``replay`` applies the same rule to a saved history (``benchmarks/stop_rule.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# An epoch can be the best one only if its val balanced ACC is within this of the best so far: on a small val split
# the epoch of highest AUC can be one that predicts a single class (balanced ACC 1/K whichever class it is; plain
# ACC would call an all-majority epoch good). docs/benchmarks.md, section 8.
ACC_TOLERANCE = 0.05


def eligible(val_balanced_acc: float, best: float) -> bool:
    """Whether an epoch with ``val_balanced_acc`` may be kept as the best while the best so far is ``best``."""
    return val_balanced_acc >= best - ACC_TOLERANCE


@dataclass
class BestEpoch:
    """The running state of the best-epoch rule and of early stopping over one fit's epochs."""

    patience: int
    min_delta: float = 0.0
    best_score: float = -math.inf  # the kept epoch's val score
    stop_score: float = -math.inf  # the score of the last epoch that reset the early-stopping count
    best_acc: float = -math.inf  # the best val balanced ACC so far
    kept_acc: float = -math.inf  # the kept epoch's val balanced ACC
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, row: dict) -> bool:
        """Count one validated epoch (a ``FitResult.history`` row); True when its weights are the new best to keep."""
        epoch, score, balanced = row["epoch"], epoch_score(row), _balanced(row)
        self.best_acc = max(self.best_acc, balanced)
        kept_collapsed = not eligible(self.kept_acc, self.best_acc)  # a better balanced ACC since: now ineligible
        kept = eligible(balanced, self.best_acc) and (score > self.best_score or kept_collapsed)
        if kept:
            self.best_score, self.best_epoch, self.kept_acc = score, epoch, balanced
        if kept and (kept_collapsed or score >= self.stop_score + self.min_delta):
            self.stop_score, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        return kept

    @property
    def stopped(self) -> bool:
        """Whether ``patience`` epochs in a row brought no improvement of at least ``min_delta``."""
        return self.bad_epochs >= self.patience

    def state(self) -> dict:
        """What a checkpoint saves to resume the rule (the balanced ACCs are recomputed from the history)."""
        return {
            "best_score": self.best_score,
            "stop_score": self.stop_score,
            "bad_epochs": self.bad_epochs,
            "best_epoch": self.best_epoch,
        }

    def restore(self, saved: dict, history: list[dict]) -> None:
        """Resume from a checkpoint's ``state()`` and the history it saved (checkpoints before ``stop_score``: the
        kept score)."""
        self.best_score, self.bad_epochs = saved["best_score"], saved["bad_epochs"]
        self.best_epoch = saved["best_epoch"]
        self.stop_score = saved.get("stop_score", self.best_score)
        balanced = [_balanced(row) for row in history]
        self.best_acc = max(balanced, default=-math.inf)
        if self.best_epoch:
            self.kept_acc = balanced[self.best_epoch - 1]


def _balanced(row: dict) -> float:
    return row.get("val_balanced_acc", row["val_acc"])


def epoch_score(row: dict) -> float:
    """The val score an epoch is ranked by: its AUC, or its ACC where the AUC is undefined."""
    return row["val_auc"] if not math.isnan(row["val_auc"]) else row["val_acc"]


def replay(history: list[dict], patience: int, min_delta: float) -> tuple[int, int]:
    """The (kept epoch, epochs run) the rule gives on a saved history, as if it had trained under these settings.

    Exact for any history the run trained through (the schedule does not depend on when a fit stops); a history
    that stopped before the replay would is replayed as far as it goes.
    """
    rule = BestEpoch(patience=patience, min_delta=min_delta)
    for row in history:
        rule.update(row)
        if rule.stopped:
            return rule.best_epoch, row["epoch"]
    return rule.best_epoch, len(history)
