"""The registered trackers: TensorBoard event files in the run folder, and MLflow (a local file store by default)."""

from __future__ import annotations

import os
from pathlib import Path

from meddistill.paths import home
from meddistill.tracking.base import EPOCH_FIGURES, TENSORBOARD_DIR, TRACKERS, Tracker


def default_mlflow_uri() -> str:
    """The local MLflow file store: ``MEDDISTILL_HOME/mlruns`` as a file URI."""
    return (home() / "mlruns").resolve().as_uri()


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """Scalars ``<role>/<figure>`` per epoch, the settings as a text summary and ``test/<role>/<figure>`` at the end,
    written to ``<run folder>/tensorboard`` (or the folder ``--tracking-uri`` names); artifacts are listed as text
    (TensorBoard keeps no files)."""

    module = "tensorboard"

    def __init__(self, run_dir: Path, run_id: str, uri: str | None) -> None:
        super().__init__(run_dir, run_id, uri)
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - an optional extra

        self.writer = SummaryWriter(log_dir=str(Path(uri) / run_id if uri else run_dir / TENSORBOARD_DIR))

    def params(self, settings: dict) -> None:
        table = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
        self.writer.add_text("settings", "| setting | value |\n|---|---|\n" + table)

    def epoch(self, role: str, row: dict) -> None:
        for figure in EPOCH_FIGURES:
            if row.get(figure) is not None:
                self.writer.add_scalar(f"{role}/{figure}", float(row[figure]), int(row["epoch"]))

    def final(self, figures: dict[str, float]) -> None:
        for name, value in figures.items():
            self.writer.add_scalar(f"test/{name}", float(value), 0)

    def artifacts(self, files: list[Path]) -> None:
        self.writer.add_text("artifacts", "\n".join(f"- {f}" for f in files))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """One MLflow run named after the MedDistill run: parameters, per-epoch metrics ``<role>.<figure>`` (step =
    epoch), final ``test.<role>.<figure>`` and the files as artifacts; the tracking URI is ``--tracking-uri`` or a
    file store at ``MEDDISTILL_HOME/mlruns`` (offline)."""

    module = "mlflow"

    def __init__(self, run_dir: Path, run_id: str, uri: str | None) -> None:
        super().__init__(run_dir, run_id, uri)
        if uri is None:  # the offline default: MLflow 3 keeps its file store in maintenance mode behind this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient  # noqa: PLC0415 - an optional extra

        self.client = MlflowClient(tracking_uri=uri or default_mlflow_uri())
        experiment = self.client.get_experiment_by_name("meddistill")
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("meddistill")
        self.run = self.client.create_run(experiment_id, run_name=run_id, tags={"meddistill.run_id": run_id})
        self.id = self.run.info.run_id

    def params(self, settings: dict) -> None:
        for key, value in settings.items():
            self.client.log_param(self.id, key, str(value)[:500])

    def epoch(self, role: str, row: dict) -> None:
        for figure in EPOCH_FIGURES:
            if row.get(figure) is not None:
                self.client.log_metric(self.id, f"{role}.{figure}", float(row[figure]), step=int(row["epoch"]))

    def final(self, figures: dict[str, float]) -> None:
        for name, value in figures.items():
            self.client.log_metric(self.id, f"test.{name.replace('/', '.')}", float(value))

    def artifacts(self, files: list[Path]) -> None:
        for path in files:
            self.client.log_artifact(self.id, str(path))

    def close(self) -> None:
        self.client.set_terminated(self.id)
