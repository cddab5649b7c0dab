"""A teacher trained elsewhere: checked against the dataset before any student trains on it, and named in the
report (file, SHA-256, val scores)."""

from __future__ import annotations

from pathlib import Path

import torch

from meddistill.data.tensors import Batches
from meddistill.errors import WeightsError
from meddistill.evaluation.metrics import auc_score
from meddistill.io.weights import file_sha256
from meddistill.models.external import teacher_file_kind
from meddistill.runs.config import RunConfig
from meddistill.training import distributed as dist


def val_scores(model: torch.nn.Module, val: Batches, device: torch.device) -> dict[str, float]:
    """{"val_acc", "val_auc"} of a model on the val split."""
    probs = dist.gather_predictions(model, val, device)
    labels = val.split.labels
    return {"val_acc": float((probs.argmax(1) == labels).mean()), "val_auc": auc_score(labels, probs)}


def check_imported_teacher(
    model: torch.nn.Module, val: Batches, device: torch.device, classes: list[str], config: RunConfig
) -> dict[str, float]:
    """The val scores of a teacher used as is; refuses one whose two classes are evidently the other way round
    (val AUC under 0.3: it ranks the classes backwards), before any student is trained on it.

    Raises:
        WeightsError: the imported teacher's class order does not match the dataset's.
    """
    scores = val_scores(model, val, device)
    if len(classes) == 2 and scores["val_auc"] < 0.3:
        raise WeightsError(
            f"{Path(config.teacher_weights).name} ranks the val images backwards (val AUC {scores['val_auc']:.2f}): "
            f"its class order is probably not this dataset's ({classes[0]}, then {classes[1]}); re-save it with "
            "the output classes in that order, or fine-tune it with --teacher-epochs N."
        )
    return scores


def teacher_source(config: RunConfig, scores: dict[str, float] | None = None) -> dict:
    """Where the teacher came from: trained here (from random or ImageNet weights), or an imported file (its name,
    format and SHA-256), used as is (with its val scores) or fine-tuned."""
    path = Path(config.teacher_weights) if config.teacher_weights else None
    if config.starts_pretrained("teacher"):
        source = {"kind": "pretrained (ImageNet), fine-tuned here", "weights": config.teacher}
        if path is not None:
            source.update(file=path.name, sha256=file_sha256(path) if path.is_file() else "")
        return source
    if path is None:
        return {"kind": "trained here"}
    kind = "imported, used as is" if config.teacher_epochs == 0 else "imported, fine-tuned here"
    fmt = teacher_file_kind(path) if path.is_file() else "weights"
    return {
        "kind": kind,
        "format": fmt,
        "file": path.name,
        "sha256": file_sha256(path) if path.is_file() else "",
        **(scores or {}),
    }
