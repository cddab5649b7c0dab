"""The pieces of a run's training: device, untrained models, the distillation method, fit settings and the
teacher's cached logits (used by ``pipeline`` and by the method search)."""

from __future__ import annotations

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.distillation.base import METHODS, Distiller, create_method
from meddistill.io.weights import file_sha256, read_metadata, read_weights, save_weights
from meddistill.models.factory import create_model
from meddistill.models.registry import target_module
from meddistill.runs.config import RunConfig
from meddistill.runs.layout import CHECKPOINTS_DIR, TEACHER_LOGITS_FILE, RunFolder
from meddistill.training import distributed as dist
from meddistill.training.averaging import class_weights_for
from meddistill.training.state import FitSettings
from meddistill.training.teacher import teacher_logits


def pick_device(name: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build(config: RunConfig, dataset: MedDataset, role: str) -> torch.nn.Module:
    """The untrained model for ``role``; both students start from the same initial weights."""
    size = config.resolved_image_size(dataset.image_size)
    torch.manual_seed(config.seed + (0 if role == "teacher" else 1))
    return create_model(config.arch_for(role), dataset.num_classes, dataset.channels, size)


def feature_channels(model: torch.nn.Module, channels: int, size: int) -> int:
    """Channels of the model's target layer output, found with one dummy forward."""
    captured = {}

    def keep(module, inputs, output) -> None:  # returns None: a hook's return value would replace the output
        captured["c"] = output.shape[1]

    handle = target_module(model).register_forward_hook(keep)
    with torch.no_grad():
        model.eval()(torch.zeros(1, channels, size, size, device=next(model.parameters()).device))
    handle.remove()
    return int(captured["c"])


def build_method(
    config: RunConfig, student: torch.nn.Module, teacher: torch.nn.Module, channels: int, size: int
) -> Distiller:
    """The run's distillation method; feature methods are told both models' feature channels."""
    extra = {}
    if METHODS.entry(config.method).factory.uses_features:
        extra = {
            "student_channels": feature_channels(student, channels, size),
            "teacher_channels": feature_channels(teacher, channels, size),
        }
    return create_method(
        config.method,
        temperature=config.kd_temperature,
        alpha=config.kd_alpha,
        beta=config.kd_beta,
        feature_weight=config.feature_weight,
        **extra,
    )


def fit_settings(
    config: RunConfig, dataset: MedDataset, role: str, device: torch.device, folder: RunFolder
) -> FitSettings:
    """The ``FitSettings`` of one model of the run."""
    weights = class_weights_for(dataset.splits["train"].labels, dataset.num_classes) if config.class_weighted else None
    return FitSettings(
        epochs=config.epochs_for(role, len(dataset.splits["train"]), dist.world_size()),
        lr=config.lr,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        device=device,
        channels_last=config.channels_last,
        seed=config.seed,
        patience=config.patience,
        augment=config.augment if role == "teacher" else config.augment_students,
        class_weights=weights,
        ema_decay=config.ema_decay,
        checkpoint_dir=folder.file(CHECKPOINTS_DIR) if dist.is_main() else None,
        checkpoint_seconds=config.checkpoint_seconds,
        shard=(dist.rank(), dist.world_size()),
    )


def cached_teacher_logits(
    folder: RunFolder, teacher: torch.nn.Module, train: Batches, device: torch.device
) -> torch.Tensor:
    """The teacher's logits (N, K) on the train split: read from the run folder when they were computed for these
    teacher weights and images, else computed once and saved there (rank 0)."""
    path = folder.file(TEACHER_LOGITS_FILE)
    key = {
        "teacher_sha256": file_sha256(folder.weights("teacher")) if folder.has_weights("teacher") else "",
        "images": str(len(train)),
        "size": str(train.size),
        "channels": str(train.channels),
    }
    if key["teacher_sha256"] and path.is_file() and read_metadata(path) == key:
        return read_weights(path)["logits"]
    logits = teacher_logits(teacher, train, device)
    if dist.is_main() and key["teacher_sha256"]:
        save_weights({"logits": logits}, path, metadata=key)
    return logits
