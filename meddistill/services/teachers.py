"""Teachers for the command line and the Train page: the choices (from ``meddistill.settings.sources``), uploaded
teacher files (content-addressed under ``MEDDISTILL_HOME/teachers``), the check of a teacher file against the data
before a run is queued, the runs whose teacher can be reused, and the model pickers' lists and descriptions."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.errors import MedDistillError
from meddistill.io.content import store_bytes
from meddistill.models.factory import create_model, model_info
from meddistill.models.registry import available_models
from meddistill.models.timm_models import timm_model_names
from meddistill.paths import TEACHERS_DIR, home_dir
from meddistill.pipeline.context import pick_device
from meddistill.settings.config import RunConfig
from meddistill.settings.sources import TEACHER_SOURCES, ModelShape, build_model
from meddistill.store.index import RunStatus, RunStore

UPLOAD_TYPES = ("safetensors", "pt", "pth", "bin", "onnx")
# The Train page's teacher choices, in order: the sources a user picks (an ONNX or TorchScript upload is resolved
# from the file, under "weights").
PAGE_SOURCES = ("trained", "pretrained", "weights", "reused")


def teacher_choices() -> dict[str, str]:
    """The Train page's teacher choices: label -> source name (``meddistill.settings.sources``)."""
    return {TEACHER_SOURCES.entry(name).factory.label: name for name in PAGE_SOURCES}


def model_choices(role: str, spatial_dims: int = 2) -> list[str]:
    """MedDistill's curated models for ``role`` first, then its other models, then every timm model; for volumes
    (``spatial_dims`` 3) MedDistill's 3D models only."""
    curated = available_models(role, spatial_dims)
    others = [m for m in available_models(spatial_dims=spatial_dims) if m not in curated]
    return [*curated, *others, *(timm_model_names() if spatial_dims == 2 else [])]


@functools.lru_cache(maxsize=64)
def describe_model(name: str, channels: int, size: int, classes: int = 2) -> str:
    """'11.2 M parameters · 0.24 GFLOPs per 28-px image' (one model built and counted, cached per shape)."""
    try:
        model = create_model(name, classes, channels, size)
        info = model_info(model, channels, size)
    except (MedDistillError, ValueError, RuntimeError) as error:
        return str(error)
    unit = f"{size}^3 volume" if getattr(model, "spatial_dims", 2) == 3 else f"{size}-px image"
    return f"{info.params / 1e6:.2f} M parameters · {info.flops / 1e9:.3f} GFLOPs per {unit}"


def store_teacher_upload(data: bytes, name: str) -> Path:
    """Keep an uploaded teacher file under ``MEDDISTILL_HOME/teachers/`` (named by its SHA-256; written once)."""
    return store_bytes(home_dir(TEACHERS_DIR), data, name)


def check_teacher(config: RunConfig, dataset: MedDataset | None = None) -> str:
    """Load the run's imported teacher as the run will and score it on the val split, before anything is queued
    (``dataset``: the run's data if already loaded).

    Returns:
        One line: what the file is and its val ACC / AUC.

    Raises:
        MedDistillError: the file does not fit the dataset (channels, size, classes, class order).
    """
    dataset = dataset or config.load_data()
    size = config.resolved_image_size(dataset.image_size)
    source = config.teacher_source()
    model = build_model(config, "teacher", ModelShape(tuple(dataset.class_names), dataset.channels, size))
    val = Batches(dataset.splits["val"], dataset.channels, size)
    device = pick_device(config.device)
    with torch.no_grad():
        scores = source.check(model.to(device).eval(), val, device, dataset.class_names)
    name = Path(config.teacher_weights).name
    return (
        f"{name} fits: {dataset.channels} channel(s) at {size} px in, {dataset.num_classes} outputs "
        f"({', '.join(dataset.class_names)}); val ACC {scores['val_acc']:.3f}, AUC {scores['val_auc']:.3f}."
    )


def reusable_teachers(data: str) -> dict[str, tuple[str, str, int, str]]:
    """Finished runs on ``data`` with a teacher: label -> (teacher architecture, teacher file, training side, run
    folder)."""
    found = {}
    for record in RunStore().list():
        folder = record.folder
        if record.status != RunStatus.DONE or not folder.has_weights("teacher"):
            continue
        config = folder.config()
        if config.data != data:
            continue
        report = folder.report()
        teacher = report.models.get("teacher") if report else None
        auc = teacher.test.auc if teacher else None
        label = f"{record.id}: {teacher.arch if teacher else config.teacher}" + (
            f" (test AUC {auc:.3f})" if auc else ""
        )
        found[label] = (
            config.teacher,
            str(folder.teacher_file()),
            folder.summary()["train_image_size"],
            str(folder.path),
        )
    return found
