"""Background training: a queue of runs and one worker thread, with thread-safe live state.

The dashboard keeps one ``JobManager`` (in ``st.cache_resource``) and polls
``snapshot()``; the worker never touches the UI. One job trains at a time;
the others wait in a visible queue. ``tracked_run`` (``run_recorded`` with the trackers) is the run life cycle
(running -> done | failed | cancelled) shared with the CLI.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from dataclasses import dataclass, field

from meddistill.errors import MedDistillError
from meddistill.services.tracked import tracked_run
from meddistill.settings.config import RunConfig
from meddistill.store.index import ACTIVE, RunStatus, RunStore
from meddistill.training.state import Progress

MAX_POINTS = 500  # batch-loss points kept per model (halved when full): the live chart costs the same at any length


@dataclass
class JobState:
    """What the dashboard shows of one job; copied out under the lock."""

    run_id: str
    status: str = RunStatus.QUEUED
    message: str = ""
    role: str = ""
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    elapsed: float = 0.0
    eta: float = 0.0
    batch_loss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # role -> [(step, loss)]
    epochs_done: dict[str, list[dict]] = field(default_factory=dict)  # role -> [epoch metrics]
    updated: float = field(default_factory=time.time)


class JobManager:
    """Runs queued runs one after another on a worker thread.

    Args:
        store: The run index the jobs are recorded in.
    """

    def __init__(self, store: RunStore | None = None) -> None:
        self.store = store or RunStore()
        self._lock = threading.Lock()
        self._queue: collections.deque[str] = collections.deque()
        self._jobs: dict[str, JobState] = {}
        self._cancel: set[str] = set()
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._closed = False
        self.store.mark_interrupted()

    def submit(self, config: RunConfig) -> str:
        """Register a run and queue it; returns its id."""
        record = self.store.create(config, status=RunStatus.QUEUED)
        return self._enqueue(record.id)

    def _enqueue(self, run_id: str) -> str:
        with self._lock:
            self._jobs[run_id] = JobState(run_id)
            self._queue.append(run_id)
            self._ensure_worker()
            self._wake.notify()
        return run_id

    def resume(self, run_id: str) -> str:
        """Queue an interrupted, cancelled or failed run again; it continues from its last epoch."""
        record = self.store.get(run_id)
        if record.status in (*ACTIVE, RunStatus.DONE):
            raise MedDistillError(
                f"Run {record.id} is {record.status}; only interrupted, cancelled or failed runs can be resumed."
            )
        self.store.set_status(record.id, RunStatus.QUEUED)
        return self._enqueue(record.id)

    def cancel(self, run_id: str) -> None:
        """Ask a queued or running job to stop (within one batch)."""
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                self._jobs[run_id].status = RunStatus.CANCELLED
                self.store.set_status(run_id, RunStatus.CANCELLED, "Cancelled before it started.")
            else:
                self._cancel.add(run_id)

    def snapshot(self, run_id: str) -> JobState | None:
        """A copy of a job's live state (``None`` if this manager never ran it)."""
        with self._lock:
            state = self._jobs.get(run_id)
            if state is None:
                return None
            copy = JobState(**{**state.__dict__})
            copy.batch_loss = {k: list(v) for k, v in state.batch_loss.items()}
            copy.epochs_done = {k: list(v) for k, v in state.epochs_done.items()}
            return copy

    def active(self) -> str | None:
        """The id of the job that is training now, if any."""
        with self._lock:
            return next((j.run_id for j in self._jobs.values() if j.status == RunStatus.RUNNING), None)

    def queued(self) -> list[str]:
        """Ids waiting their turn, in order."""
        with self._lock:
            return list(self._queue)

    def wait(self, run_id: str, timeout: float = 600.0) -> JobState | None:
        """Block until a job leaves queued/running (for tests and scripts)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.snapshot(run_id)
            if state is not None and state.status not in ACTIVE:
                return state
            time.sleep(0.05)
        return self.snapshot(run_id)

    def close(self, timeout: float = 30.0) -> None:
        """Cancel everything and stop the worker thread."""
        with self._lock:
            self._closed = True
            self._cancel.update(j for j, s in self._jobs.items() if s.status == RunStatus.RUNNING)
            self._wake.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="meddistill-worker", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    if not self._wake.wait(timeout=60):
                        self._worker = None
                        return
                if self._closed:
                    self._worker = None
                    return
                run_id = self._queue.popleft()
                self._jobs[run_id].status = RunStatus.RUNNING
            self._run(run_id)

    def _run(self, run_id: str) -> None:
        def on_progress(event: Progress) -> None:
            with self._lock:
                job = self._jobs[run_id]
                job.role, job.epoch, job.epochs = event.role, event.epoch, event.epochs
                job.batch, job.batches, job.elapsed, job.eta = event.batch, event.batches, event.elapsed, event.eta
                job.updated = time.time()
                if event.kind == "batch":
                    points = job.batch_loss.setdefault(event.role, [])
                    points.append(((event.epoch - 1) + event.batch / event.batches, event.loss))
                    if len(points) > MAX_POINTS:
                        del points[::2]
                else:
                    job.epochs_done[event.role] = event.history

        def should_stop() -> bool:
            with self._lock:
                return run_id in self._cancel

        status, message = RunStatus.DONE, ""
        try:
            report = tracked_run(self.store, run_id, callback=on_progress, should_stop=should_stop)
            if report is None:
                status, message = RunStatus.CANCELLED, "Cancelled by the user."
        except MedDistillError as error:
            status, message = RunStatus.FAILED, str(error)
        except Exception as error:  # noqa: BLE001 - the worker must survive any job
            status, message = RunStatus.FAILED, f"Unexpected error: {type(error).__name__}: {error}"
            traceback.print_exc()
        with self._lock:
            self._cancel.discard(run_id)
            self._jobs[run_id].status, self._jobs[run_id].message = status, message
