"""The teacher trains on when it is not better than the student trained from scratch (``teacher_train_on``).

Under the ``cpu`` and ``thorough`` presets a teacher the run trains gets one more round when the guard rail finds it
no better than the scratch student on val: as many epochs again (fewer if the budget has less room), from its best
weights, with a new cosine cycle at half the peak learning rate. The round's best epoch replaces the teacher only when
it is better on val; the teacher's history in ``metrics.json`` and the report runs on across both rounds. Epochs the
user typed (``--teacher-epochs``, ``--teacher-min-steps``) are not extended unless ``--teacher-train-on`` is typed too.
The round's length is decided once, when the run first gets there (``room``: it depends on the time left), and kept
beside the checkpoints (``teacher_on.plan.json``): a run resumed during or after the round trains the same epochs
from its checkpoint (``teacher_on``) instead of deciding again with a fresh clock.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable

import torch

from meddistill.io.atomic import atomic_write_json
from meddistill.io.weights import save_weights
from meddistill.pipeline.building import fit_settings
from meddistill.pipeline.context import RunContext
from meddistill.pipeline.guards import better_on_val
from meddistill.pipeline.plan import training_seconds
from meddistill.pipeline.search import BUDGET
from meddistill.settings.config import AUTO_METHOD, RunConfig
from meddistill.store.layout import CHECKPOINTS_DIR
from meddistill.training import distributed as dist
from meddistill.training.checkpoint import plan_file
from meddistill.training.engine import fit
from meddistill.training.state import FitResult, Progress

ROLE = "teacher_on"  # the checkpoint name of the second round (resumable like any model)
LR_FACTOR = 0.5  # the second round's peak learning rate, relative to the first's


def best_val(result: FitResult | None) -> dict:
    """The best epoch's val ACC and AUC (empty for a model that was not trained here)."""
    if result is None or not result.history or not result.best_epoch:
        return {}
    row = result.history[result.best_epoch - 1]
    return {"val_acc": row["val_acc"], "val_auc": row["val_auc"]}


def applies(config: RunConfig) -> bool:
    """Whether the run may train its teacher on: the setting is on, the run trains the teacher, and the user typed
    no teacher schedule (or typed ``--teacher-train-on`` as well)."""
    if not config.teacher_train_on or not config.teacher_source().trains:
        return False
    typed = {"teacher_epochs", "teacher_min_steps"} & set(config.given)
    return not typed or "teacher_train_on" in config.given


def plan_line(config: RunConfig) -> str | None:
    """The plan's sentence on the second round, when the run may take one."""
    if not applies(config):
        return None
    within = f", within the {config.budget:g}-minute budget" if config.budget is not None else ""
    return (
        "If the teacher is not better than the scratch student on val, it trains on for as many epochs again"
        f"{within}, before the distilled student starts."
    )


def room(ctx: RunContext, first: FitResult, scratch: FitResult, started: float) -> tuple[int, str | None]:
    """Epochs the second round may take, and why fewer than the first round's (None when all fit).

    The first round's epochs again, cut so that the round (at the first round's measured seconds per epoch) and the
    distilled student (the scratch student's measured time, times the search's trainings with ``--method auto``)
    fit in what is left of ``budget`` minutes since ``started``.
    """
    config = ctx.config
    epochs = len(first.history)
    if config.budget is None or not epochs:
        return epochs, None
    per_epoch = first.seconds / epochs
    distilled = scratch.seconds * (BUDGET if config.method == AUTO_METHOD else 1)
    left = training_seconds(config.budget) - (time.time() - started) - distilled
    fits = max(0, int(left // per_epoch)) if per_epoch > 0 else epochs
    if fits >= epochs:
        return epochs, None
    return fits, f"{config.budget:g}-minute budget"


def decided_room(ctx: RunContext, first: FitResult, scratch: FitResult, started: float) -> tuple[int, str | None]:
    """``room``, decided once per run by rank 0 and shared with every rank: read back from ``teacher_on.plan.json``
    when the run resumes, else computed and saved before the round starts."""
    decision = None
    if dist.is_main():
        path = plan_file(ctx.folder.file(CHECKPOINTS_DIR), ROLE)
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            decision = int(saved["epochs"]), saved.get("limit")
        else:
            decision = room(ctx, first, scratch, started)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, {"epochs": decision[0], "limit": decision[1]})
    return dist.from_main(decision)


def train_on(
    ctx: RunContext, teacher: torch.nn.Module, first: FitResult, scratch: FitResult, started: float
) -> tuple[FitResult, int, str | None]:
    """Train the teacher on if it is not better than the scratch student on val; ``teacher`` ends with the better
    round's best weights.

    Returns:
        (the teacher's ``FitResult`` over both rounds, epochs trained on, what cut the round short or stopped it).
    """
    if not applies(ctx.config) or not best_val(first) or not best_val(scratch):
        return first, 0, None
    if better_on_val(best_val(first), best_val(scratch)):
        return first, 0, None
    epochs, limit = decided_room(ctx, first, scratch, started)
    if epochs < 1:
        return first, 0, limit
    before = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    settings = fit_settings(ctx, "teacher")
    settings = dataclasses.replace(settings, epochs=epochs, lr=settings.lr * LR_FACTOR, seed=settings.seed + 1)
    second = fit(
        teacher,
        ctx.batches["train"],
        ctx.batches["val"],
        settings,
        role=ROLE,
        callback=_as_teacher(ctx.callback, first),
        should_stop=ctx.should_stop,
    )
    gained = better_on_val(best_val(second), best_val(first))
    if not gained:
        teacher.load_state_dict(before)
    elif dist.is_main():
        save_weights(teacher, ctx.folder.weights("teacher"), metadata={"arch": teacher.arch, "role": "teacher"})
    return _joined(first, second, gained), epochs, limit


def _as_teacher(callback: Callable[[Progress], None] | None, first: FitResult) -> Callable[[Progress], None] | None:
    """Progress of the second round reported as the teacher's, its epochs numbered on from the first round's, so the
    live curves and ``metrics.json`` show one teacher."""
    if callback is None:
        return None
    offset = len(first.history)

    def report(event: Progress) -> None:
        history = None
        if event.history is not None:
            history = first.history + [{**row, "epoch": row["epoch"] + offset} for row in event.history]
        callback(
            dataclasses.replace(
                event, role="teacher", epoch=event.epoch + offset, epochs=event.epochs + offset, history=history
            )
        )

    return report


def _joined(first: FitResult, second: FitResult, gained: bool) -> FitResult:
    """One history over both rounds (the second's epochs numbered on), its best epoch the kept round's."""
    offset = len(first.history)
    history = first.history + [{**row, "epoch": row["epoch"] + offset} for row in second.history]
    best = second.best_epoch + offset if gained else first.best_epoch
    return FitResult(best_state={}, history=history, best_epoch=best, seconds=first.seconds + second.seconds)
