"""The Train page's teacher choices, in plain Python: train here, start from ImageNet weights, upload a trained
model (checked against the dataset before the run is queued), or reuse another run's teacher."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.errors import MedDistillError
from meddistill.io.atomic import atomic_write
from meddistill.io.weights import load_weights
from meddistill.models.external import is_external
from meddistill.models.factory import create_model, model_info
from meddistill.models.registry import available_models
from meddistill.models.timm_models import timm_model_names
from meddistill.paths import home
from meddistill.runs.building import build, pick_device
from meddistill.runs.config import RunConfig
from meddistill.runs.imported import check_imported_teacher
from meddistill.runs.store import RunStore

TRAIN_HERE, PRETRAINED, UPLOAD, REUSE = (
    "Train it here",
    "Start from ImageNet weights",
    "Upload a trained model",
    ("Reuse another run's teacher"),
)
TEACHER_SOURCES = (TRAIN_HERE, PRETRAINED, UPLOAD, REUSE)
UPLOAD_TYPES = ("safetensors", "pt", "pth", "bin", "onnx")
TEACHERS_DIR = "teachers"  # uploaded teacher files, named by their content hash, under MEDDISTILL_HOME


def model_choices(role: str) -> list[str]:
    """MedDistill's curated models for ``role`` first, then its other models, then every timm model."""
    curated = available_models(role)
    return [*curated, *(m for m in available_models() if m not in curated), *timm_model_names()]


@functools.lru_cache(maxsize=64)
def describe_model(name: str, channels: int, size: int, classes: int = 2) -> str:
    """'11.2 M parameters · 0.24 GFLOPs per 28-px image' (one model built and counted, cached per shape)."""
    try:
        info = model_info(create_model(name, classes, channels, size), channels, size)
    except (MedDistillError, ValueError, RuntimeError) as error:
        return str(error)
    return f"{info.params / 1e6:.2f} M parameters · {info.flops / 1e9:.3f} GFLOPs per {size}-px image"


def store_teacher_upload(data: bytes, name: str) -> Path:
    """Keep an uploaded teacher file under ``MEDDISTILL_HOME/teachers/`` (named by its SHA-256; written once)."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = home() / TEACHERS_DIR / f"{digest}-{Path(name).name}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def check_teacher(config: RunConfig, dataset: MedDataset | None = None) -> str:
    """Load the run's imported teacher as the run will and score it on the val split, before anything is queued
    (``dataset``: the run's data if already loaded).

    Returns:
        One line: what the file is and its val ACC / AUC.

    Raises:
        MedDistillError: the file does not fit the dataset (channels, size, classes, class order).
    """
    dataset = dataset or config.load_data()
    model = build(config, dataset, "teacher")
    if not is_external(config.teacher_weights):
        load_weights(model, config.teacher_weights)
    size = config.resolved_image_size(dataset.image_size)
    val = Batches(dataset.splits["val"], dataset.channels, size)
    device = pick_device(config.device)
    with torch.no_grad():
        scores = check_imported_teacher(model.to(device).eval(), val, device, dataset.class_names, config)
    name = Path(config.teacher_weights).name
    return (
        f"{name} fits: {dataset.channels} channel(s) at {size} px in, {dataset.num_classes} outputs "
        f"({', '.join(dataset.class_names)}); val ACC {scores['val_acc']:.3f}, AUC {scores['val_auc']:.3f}."
    )


def reusable_teachers(data: str) -> dict[str, tuple[str, str, int]]:
    """Finished runs on ``data`` with a teacher: label -> (teacher architecture, teacher file, training side)."""
    found = {}
    for record in RunStore().list():
        folder = record.folder
        if record.status != "done" or not folder.has_weights("teacher"):
            continue
        config = folder.config()
        if config.data != data:
            continue
        teacher = (folder.report() or {}).get("models", {}).get("teacher", {})
        auc = teacher.get("test", {}).get("auc")
        label = f"{record.id}: {teacher.get('arch', config.teacher)}" + (f" (test AUC {auc:.3f})" if auc else "")
        found[label] = (config.teacher, str(folder.teacher_file()), folder.summary()["train_image_size"])
    return found
