"""A registered run's life cycle: running, then done, failed or cancelled in the index, shared by the command line
and the dashboard's job manager."""

from __future__ import annotations

import errno
from typing import Callable

from meddistill.data.dataset import MedDataset
from meddistill.errors import Cancelled, MedDistillError, TrainingError
from meddistill.pipeline.runner import execute
from meddistill.store.index import RunStatus, RunStore
from meddistill.store.report import Report
from meddistill.training.state import Progress


def run_recorded(
    store: RunStore,
    run_id: str,
    *,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dataset: MedDataset | None = None,
) -> Report | None:
    """Execute a registered run, keeping its status in the index up to date.

    Returns:
        The report, or ``None`` when the run was cancelled.

    Raises:
        MedDistillError: the run failed for a reason the user can fix (status RunStatus.FAILED).
    """
    record = store.get(run_id)
    store.set_status(run_id, RunStatus.RUNNING)
    try:
        report = execute(record.config(), record.path, callback=callback, should_stop=should_stop, dataset=dataset)
    except Cancelled:
        store.set_status(run_id, RunStatus.CANCELLED, "Cancelled by the user.")
        return None
    except MedDistillError as error:
        store.set_status(run_id, RunStatus.FAILED, str(error))
        raise
    except ValueError as error:
        store.set_status(run_id, RunStatus.FAILED, str(error))
        raise MedDistillError(str(error)) from None
    except OSError as error:
        if error.errno != errno.ENOSPC:
            store.set_status(run_id, RunStatus.FAILED, f"Unexpected error: {error}")
            raise
        message = f"The disk is full ({error.filename or record.path}); free some space, then resume run {run_id}."
        store.set_status(run_id, RunStatus.FAILED, message)
        raise TrainingError(message) from None
    except BaseException as error:
        store.set_status(run_id, RunStatus.FAILED, f"Unexpected error: {type(error).__name__}: {error}")
        raise
    models = report.models
    if "teacher" in models and "student_kd" in models:
        store.set_models(run_id, models["teacher"].arch, models["student_kd"].arch)
    store.set_status(run_id, RunStatus.DONE)
    return report
