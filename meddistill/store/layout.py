"""The run folder: which models a run has, what each file is called, and how to read them back.

This module is the one home of these facts; everything else imports them.

A run folder holds::

    config.json          the RunConfig
    dataset.json         the dataset summary (classes, channels, sizes, train_image_size)
    metrics.json         per-epoch history of each model:
                         {role: [{epoch, train_loss, val_loss, val_acc, val_auc, seconds}]}
    status.json          queued / running / done / failed / cancelled / interrupted, with a message
    report.json          the test metrics, sizes and latencies of every model
    predictions.npz      test labels and each model's raw test probabilities; the val labels and probabilities
                         (operating points are chosen on them again without retraining), the test images' patient
                         keys, which test images are leak-free, and the subgroup columns' values
    <role>.safetensors   the trained weights of each model
    teacher.onnx / teacher.torchscript.pt  an imported ONNX or TorchScript teacher (instead of teacher.safetensors)
    teacher_logits.safetensors  the teacher's logits on the train split, reused by resume and later students
    checkpoints/         per-epoch training state (resume)
    exports/             exported models and their checks
    card.html            the model card (written for a tracker's artifacts, ``--log-to``)
    tensorboard/         TensorBoard event files (``--log-to tensorboard``)

Example:
    >>> folder = RunFolder("~/.meddistill/runs/20261130-142501-a3f9c2")
    >>> model = folder.load_model("student_kd")
    >>> folder.report().models["student_kd"].test.acc  # a float in [0, 1]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from meddistill.data.dataset import MedDataset
from meddistill.errors import MedDistillError
from meddistill.io.atomic import atomic_write_json
from meddistill.settings.config import RunConfig
from meddistill.settings.sources import ModelShape, build_model
from meddistill.store.report import Report

ROLES = ("teacher", "student_scratch", "student_kd")
LABELS = {"teacher": "Teacher", "student_scratch": "Student (scratch)", "student_kd": "Student (distilled)"}

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
REPORT_FILE = "report.json"
PREDICTIONS_FILE = "predictions.npz"
TEACHER_LOGITS_FILE = "teacher_logits.safetensors"
CARD_FILE = "card.html"  # the model card, written when the run is logged to a tracker (its artifact)
SEARCH_FILE = "search.json"  # --method auto: every candidate tried, its val scores and seconds
CHECKPOINTS_DIR = "checkpoints"
EXPORTS_DIR = "exports"
EXTERNAL_TEACHER_FILES = {"onnx": "teacher.onnx", "torchscript": "teacher.torchscript.pt"}  # kind -> name


def check_role(role: str) -> str:
    """``role`` if it is one of ``ROLES``; raises ``ValueError`` listing them."""
    if role not in ROLES:
        raise ValueError(f"unknown model {role!r}; choose one of: {', '.join(ROLES)}")
    return role


def weights_name(role: str) -> str:
    """File name of a role's trained weights: ``student_kd.safetensors``."""
    return f"{check_role(role)}.safetensors"


def predictions_key(role: str) -> str:
    """Name of a role's test probabilities in ``predictions.npz``: ``probs_student_kd``."""
    return f"probs_{check_role(role)}"


VAL_LABELS_KEY = "val_labels"
GROUPS_KEY = "test_groups"  # the test images' patient keys ("" for none)
CLEAN_KEY = "test_clean"  # bool per test image: it copies no train or val image and shares no patient
SUBGROUP_PREFIX = "subgroup/"  # + column name: the column's value per test image


def val_predictions_key(role: str) -> str:
    """Name of a role's val probabilities in ``predictions.npz``: ``val_probs_student_kd``."""
    return f"val_{predictions_key(role)}"


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class RunFolder:
    """One run's folder on disk.

    Args:
        path: The folder (``~`` is expanded).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """A path inside the folder."""
        return self.path / name

    def config(self) -> RunConfig:
        """The run's settings (``config.json``)."""
        return RunConfig.load(self.path / CONFIG_FILE)

    def dataset(self) -> MedDataset:
        """The dataset the run was trained on, read again with its own seed and options (the same splits)."""
        return self.config().load_data()

    def summary(self) -> dict | None:
        """The dataset summary (``dataset.json``), or ``None`` before the run has loaded its data."""
        return _read_json(self.path / DATASET_FILE)

    def report(self) -> Report | None:
        """``report.json`` read into the report dataclasses, or ``None`` while the run has none.

        Raises:
            MedDistillError: the report was written by a newer MedDistill.
        """
        values = _read_json(self.path / REPORT_FILE)
        return None if values is None else Report.from_dict(values, source=str(self.path / REPORT_FILE))

    def write_report(self, report: Report) -> None:
        """Write ``report.json`` from the report dataclasses (atomically)."""
        atomic_write_json(self.path / REPORT_FILE, report.to_dict())

    def metrics(self) -> dict:
        """Per-epoch history per role (``metrics.json``), empty before the first epoch."""
        return _read_json(self.path / METRICS_FILE) or {}

    def weights(self, role: str) -> Path:
        """Where a role's trained weights are (or will be)."""
        return self.path / weights_name(role)

    def external_teacher(self) -> Path | None:
        """The imported ONNX or TorchScript teacher kept in the folder, if the run has one."""
        found = [self.path / name for name in EXTERNAL_TEACHER_FILES.values() if (self.path / name).is_file()]
        return found[0] if found else None

    def teacher_file(self) -> Path:
        """The file that is the run's teacher: its weights, or the imported ONNX / TorchScript file."""
        return self.external_teacher() or self.weights("teacher")

    def has_weights(self, role: str) -> bool:
        return self.weights(role).is_file() or (role == "teacher" and self.external_teacher() is not None)

    def predictions(self) -> dict[str, np.ndarray]:
        """``{"labels": (N,), predictions_key(role): (N, K), ...}`` from ``predictions.npz``."""
        with np.load(self.path / PREDICTIONS_FILE, allow_pickle=False) as saved:
            return {key: saved[key] for key in saved.files}

    def require_finished(self) -> RunFolder:
        """``self`` if config and dataset summary exist; else one sentence saying what to give instead."""
        for name in (CONFIG_FILE, DATASET_FILE):
            if not (self.path / name).is_file():
                raise MedDistillError(
                    f"{self.path} has no {name}, so it is not a finished run folder; "
                    "give a run folder or a run id from `meddistill runs`."
                )
        return self

    def load_model(self, role: str, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model of ``role`` in eval mode.

        Raises:
            MedDistillError: the run has no weights for this role yet (says to wait or resume).
        """
        self.require_finished()
        if not self.has_weights(role):
            raise MedDistillError(
                f"Run {self.path.name} has no trained {role} model yet; "
                "wait for the run to finish or resume it with `meddistill resume`."
            )
        saved = self.teacher_file() if role == "teacher" else self.weights(role)
        return build_model(self.config(), role, ModelShape.of(self.summary()), saved).to(device).eval()


def load_trained(run_dir: str | Path, role: str, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig, dict]:
    """A finished run's model for ``role`` with its weights, the config and the dataset summary."""
    folder = RunFolder(run_dir)
    return folder.load_model(role, device), folder.config(), folder.summary()
