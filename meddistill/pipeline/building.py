"""The pieces of a run's training: untrained models, the distillation method, fit settings and the teacher's cached
logits (used by ``runner`` and by the method search)."""

from __future__ import annotations

import torch

from meddistill.distillation.base import METHODS, Distiller, create_method, logit_methods, methods_for
from meddistill.distillation.ensemble import AUTO, ENSEMBLE, AveragedTeacher, mean_logits
from meddistill.errors import MedDistillError
from meddistill.io.weights import file_sha256, read_metadata, read_weights, save_weights
from meddistill.models.factory import example_input
from meddistill.models.registry import target_module
from meddistill.pipeline.context import RunContext
from meddistill.settings.config import AUTO_METHOD, RunConfig
from meddistill.settings.sources import build_model
from meddistill.store.layout import CHECKPOINTS_DIR, TEACHER_LOGITS_FILE
from meddistill.training import distributed as dist
from meddistill.training.state import FitSettings
from meddistill.training.teacher import teacher_logits


def build(ctx: RunContext, role: str) -> torch.nn.Module:
    """The untrained model of ``role`` (the teacher as its source gives it: see ``build_model``)."""
    return build_model(ctx.config, role, ctx.shape)


def feature_channels(model: torch.nn.Module, channels: int, size: int) -> int:
    """Channels of the model's target layer output, found with one dummy forward."""
    captured = {}

    def keep(module, inputs, output) -> None:  # returns None: a hook's return value would replace the output
        captured["c"] = output.shape[1]

    handle = target_module(model).register_forward_hook(keep)
    with torch.no_grad():
        model.eval()(example_input(model, channels, size))
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


def check_method(config: RunConfig, task: str) -> None:
    """Refuse a distillation method that does not work for the data's task, naming those that do.

    Raises:
        MedDistillError: e.g. ``dkd`` (defined over a softmax) for several findings per image, or a feature method with
            ``--distil-from ensemble`` typed.
    """
    if config.distil_from in (ENSEMBLE, AUTO) and "distil_from" in config.given and not logit_method(config):
        raise MedDistillError(
            f"--distil-from {config.distil_from} averages the two models' logits, and --method {config.method} learns "
            f"from the teacher's feature maps; use a logit method ({', '.join(logit_methods())}, auto) or "
            "--distil-from teacher."
        )
    usable = methods_for(task)
    if config.method != AUTO_METHOD and config.method not in usable:
        raise MedDistillError(
            f"--method {config.method} needs one class per image, and this dataset has several findings per image; "
            f"use one of: {', '.join(usable)}, or auto."
        )


def fit_settings(ctx: RunContext, role: str, config: RunConfig | None = None) -> FitSettings:
    """The ``FitSettings`` of one model of the run (``config``: a search candidate's settings instead)."""
    config = config or ctx.config
    train_labels = ctx.dataset.splits["train"].labels
    weights = ctx.task.class_weights(train_labels, ctx.dataset.num_classes) if config.class_weighted else None
    return FitSettings(
        epochs=config.epochs_for(role, len(train_labels), dist.world_size()),
        lr=config.lr,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        device=ctx.device,
        channels_last=config.channels_last,
        seed=config.seed,
        patience=config.patience,
        min_delta=config.min_delta,
        augment=config.augment if role == "teacher" else config.augment_students,
        class_weights=weights,
        loss=ctx.task.loss,
        activation=ctx.task.activation,
        scores=ctx.task.val_scores,
        ema_decay=config.ema_decay,
        checkpoint_dir=ctx.folder.file(CHECKPOINTS_DIR) if dist.is_main() else None,
        checkpoint_seconds=config.checkpoint_seconds,
        shard=(dist.rank(), dist.world_size()),
    )


def distillation_teacher(
    ctx: RunContext, models: dict[str, torch.nn.Module], teacher_better: bool | None = None
) -> torch.nn.Module | None:
    """What the distilled student learns from (``distil_from``): the teacher, or the teacher and the scratch student
    with their logits averaged (``ensemble``; with ``auto`` only when ``teacher_better`` is False: the guard rail found
    the teacher no better than the scratch student on val). A feature method, or a run without a scratch student,
    learns from the teacher."""
    teacher, scratch = models.get("teacher"), models.get("student_scratch")
    wanted = ctx.config.distil_from == ENSEMBLE or (ctx.config.distil_from == AUTO and teacher_better is False)
    if not wanted or teacher is None or scratch is None or not logit_method(ctx.config):
        return teacher
    return AveragedTeacher([teacher, scratch])


def distil_line(config: RunConfig) -> str | None:
    """The plan's sentence on what the distilled student learns from, when it may not be the teacher alone."""
    if config.distil_from not in (ENSEMBLE, AUTO):
        return None
    if not logit_method(config):
        return f"The distilled student learns from the teacher alone: --method {config.method} needs its feature maps."
    if config.distil_from == AUTO:
        return (
            "If the teacher is still not better than the scratch student on val, the distilled student learns from "
            "both together, their logits averaged."
        )
    return "The distilled student learns from the teacher and the scratch student together, their logits averaged."


def logit_method(config: RunConfig) -> bool:
    """Whether the run's method learns from logits only (``auto`` searches logit methods)."""
    return config.method == AUTO_METHOD or not METHODS.entry(config.method).factory.uses_features


def cached_teacher_logits(ctx: RunContext, teacher: torch.nn.Module) -> torch.Tensor:
    """The teacher's logits (N, K) on the train split, computed once per teacher and images (an averaged teacher's:
    the mean of its first member's cached logits and the others', computed here).

    They are read from the run folder, or from the folder of the run whose teacher file is reused, when they were
    computed for the same teacher bytes (SHA-256) and images; else computed and saved in the run folder (rank 0).
    """
    folder, train = ctx.folder, ctx.batches["train"]
    if isinstance(teacher, AveragedTeacher):
        first, *others = teacher.members
        return mean_logits([cached_teacher_logits(ctx, first)] + [teacher_logits(m, train, ctx.device) for m in others])
    identity = ctx.teacher.identity(folder.teacher_file() if folder.has_weights("teacher") else None)
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
    logits = teacher_logits(teacher, train, ctx.device)
    if dist.is_main() and key["teacher_sha256"]:
        save_weights({"logits": logits}, path, metadata=key)
    return logits
