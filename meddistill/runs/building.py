"""The pieces of a run's training: device, untrained models, the distillation method, fit settings and the
teacher's cached logits (used by ``pipeline`` and by the method search)."""

from __future__ import annotations

from pathlib import Path

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.distillation.base import METHODS, Distiller, create_method
from meddistill.io.weights import file_sha256, read_metadata, read_weights, save_weights
from meddistill.models.external import is_external, load_external_teacher
from meddistill.models.factory import create_model
from meddistill.models.pretrained import pretrained_state
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
    """The untrained model for ``role`` (from ImageNet weights with ``--pretrained``); both students start from the
    same initial weights. An imported ONNX or TorchScript teacher is loaded and checked against the dataset.

    Raises:
        MedDistillError: pretrained weights unavailable offline, or an imported teacher that does not fit.
    """
    size = config.resolved_image_size(dataset.image_size)
    if role == "teacher" and is_external(config.teacher_weights):
        return load_external_teacher(
            config.teacher_weights,
            dataset.num_classes,
            dataset.channels,
            size,
            dataset.class_names,
            config.teacher_classes,
            config.threads,
        )
    state = None
    if config.starts_pretrained(role):
        state, _ = pretrained_state(config.arch_for(role), config.pretrained_file(role))
    torch.manual_seed(config.seed + (0 if role == "teacher" else 1))
    return create_model(config.arch_for(role), dataset.num_classes, dataset.channels, size, pretrained=state)


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


def teacher_identity(config: RunConfig, folder: RunFolder) -> Path | None:
    """The file whose bytes identify the run's teacher: the file given for a teacher used as is (so a run that
    reuses another run's ``teacher.safetensors`` shares its logits), else the run's own teacher file."""
    if config.teacher_weights and config.teacher_epochs == 0 and not config.starts_pretrained("teacher"):
        return Path(config.teacher_weights)
    return folder.teacher_file() if folder.has_weights("teacher") else None


def cached_teacher_logits(
    folder: RunFolder, teacher: torch.nn.Module, train: Batches, device: torch.device, config: RunConfig
) -> torch.Tensor:
    """The teacher's logits (N, K) on the train split, computed once per teacher and images.

    They are read from the run folder, or from the folder of the run whose teacher file is reused, when they were
    computed for the same teacher bytes (SHA-256) and images; else computed and saved in the run folder (rank 0).
    """
    identity = teacher_identity(config, folder)
    key = {
        "teacher_sha256": file_sha256(identity) if identity is not None and identity.is_file() else "",
        "images": str(len(train)),
        "size": str(train.size),
        "channels": str(train.channels),
    }
    path = folder.file(TEACHER_LOGITS_FILE)
    candidates = [path] + ([identity.parent / TEACHER_LOGITS_FILE] if identity is not None else [])
    for found in candidates:
        if key["teacher_sha256"] and found.is_file() and read_metadata(found) == key:
            logits = read_weights(found)["logits"]
            if found != path and dist.is_main():
                save_weights({"logits": logits}, path, metadata=key)
            return logits
    logits = teacher_logits(teacher, train, device)
    if dist.is_main() and key["teacher_sha256"]:
        save_weights({"logits": logits}, path, metadata=key)
    return logits
