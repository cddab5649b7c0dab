"""What the Train page shows of a run: live state from the job manager, or the saved history."""

from __future__ import annotations

from dataclasses import dataclass, field

from meddistill.pipeline.plan import clock
from meddistill.services.jobs import JobManager
from meddistill.store.index import ACTIVE, RunRecord, RunStatus
from meddistill.store.layout import LABELS, ROLES


@dataclass
class LiveView:
    """Everything the live panel renders for one run."""

    run_id: str
    status: str
    message: str
    fraction: float = 0.0  # of the whole run (three models)
    line: str = ""  # "Teacher · epoch 2/4 · batch 13/37 · 0:41 elapsed · about 1:02 left"
    batch_loss: dict = field(default_factory=dict)
    epochs: dict = field(default_factory=dict)
    points: int = 0


def live_view(manager: JobManager, record: RunRecord) -> LiveView:
    """Live state if this process is (or was) running the job, else the run's saved history."""
    state = manager.snapshot(record.id)
    status = state.status if state is not None and state.status in ACTIVE else manager.store.get(record.id).status
    view = LiveView(record.id, status, record.message)
    if state is not None and state.role:
        index = ROLES.index(state.role) if state.role in ROLES else 0
        within = ((state.epoch - 1) + state.batch / max(state.batches, 1)) / max(state.epochs, 1)
        view.fraction = min(1.0, (index + within) / len(ROLES))
        view.line = (
            f"{LABELS.get(state.role, state.role)} · epoch {state.epoch}/{state.epochs} · batch "
            f"{state.batch}/{state.batches} · "
            f"{clock(state.elapsed)} elapsed · about {clock(state.eta)} left for this model"
        )
        view.batch_loss, view.epochs = state.batch_loss, state.epochs_done
    else:
        view.epochs = record.metrics()
    if status == RunStatus.DONE:
        view.fraction, view.line = (
            1.0,
            "Finished: teacher, scratch student and distilled student are trained and evaluated.",
        )
    view.points = sum(len(v) for v in view.batch_loss.values()) + sum(len(v) for v in view.epochs.values())
    return view
