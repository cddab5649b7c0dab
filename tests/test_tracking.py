"""Runs in the trackers a lab already uses: a short real run logged to TensorBoard and MLflow (a local file store)
holds every model's per-epoch val AUC as metrics.json has it, the settings, the test figures and the report and
model card as artifacts; a tracker that is not installed is refused with the command that installs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meddistill.cli.main import main
from meddistill.errors import MedDistillError
from meddistill.tracking import INSTALL, check_trackers

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def logged_run(small_breast_npz, tmp_path_factory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("tracked-home")
    out = home / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(home))
        args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--out", str(out)]
        assert main([*args, "--teacher-epochs", "2", "--log-to", "tensorboard", "--log-to", "mlflow"]) == 0
    return home, out


def _history(out: Path) -> dict[str, list[float]]:
    metrics = json.loads((out / "metrics.json").read_text())
    return {role: [row["val_auc"] for row in rows] for role, rows in metrics.items()}


@pytest.mark.slow
def test_tensorboard_event_files_hold_every_models_val_auc(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = logged_run
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for role, values in _history(out).items():
        logged = [e.value for e in events.Scalars(f"{role}/val_auc")]
        assert logged == pytest.approx(values, abs=1e-6), role
    assert "test/student_kd/acc" in scalars, scalars
    assert {"settings/text_summary", "artifacts/text_summary"} <= set(events.Tags()["tensors"])


@pytest.mark.slow
def test_mlflow_file_store_holds_metrics_params_and_artifacts(logged_run):
    from mlflow.tracking import MlflowClient

    home, out = logged_run
    client = MlflowClient(tracking_uri=(home / "mlruns").resolve().as_uri())  # the default file store
    [run] = client.search_runs([client.get_experiment_by_name("meddistill").experiment_id])
    assert run.info.run_name == out.name and run.info.status == "FINISHED"
    for role, values in _history(out).items():
        logged = [
            m.value for m in sorted(client.get_metric_history(run.info.run_id, f"{role}.val_auc"), key=lambda m: m.step)
        ]
        assert logged == pytest.approx(values, abs=1e-6), role
    assert run.data.params["preset"] == "smoke" and run.data.params["teacher_epochs"] == "2"
    report = json.loads((out / "report.json").read_text())
    assert run.data.metrics["test.student_kd.acc"] == pytest.approx(report["models"]["student_kd"]["test"]["acc"])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.json", "card.html"} <= names


def test_a_tracker_that_is_not_installed_is_refused(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(MedDistillError, match="needs the mlflow package, which is not installed; run: "):
        check_trackers(["mlflow"])
    assert INSTALL == 'pip install -e ".[tracking]"'


def test_an_unknown_tracker_is_refused(small_breast_npz, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--data", str(small_breast_npz), "--log-to", "wandb"])
    assert "invalid choice: 'wandb'" in capsys.readouterr().err
