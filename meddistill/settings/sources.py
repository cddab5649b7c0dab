"""Where a run's teacher comes from, resolved once from the settings, and the one way to build a role's model.

``TEACHER_SOURCES`` holds the kinds: ``reused`` (another run's teacher, ``--teacher-from``), ``pretrained``
(ImageNet weights, fine-tuned here), ``imported`` (an ONNX or TorchScript file, used as is), ``weights`` (a
state dict for an architecture, used as is or fine-tuned) and ``trained`` (from random weights, here). The first
whose ``matches(config)`` holds is the run's (``priority`` orders them). Each knows how to build its model, whether
the run trains it, whether its feature maps and gradients are there (feature methods, Grad-CAM), what to check
before a student learns from it, and how the report names it. Adding a kind is one registered class.

Example:
    >>> source = config.teacher_source()        # e.g. ImportedTeacher
    >>> source.trains, source.feature_maps      # (False, False): used as is, logit methods only
    >>> model = build_model(config, "teacher", ModelShape(classes, channels, size))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from meddistill.data.tensors import Batches
from meddistill.distillation.base import METHODS, logit_methods
from meddistill.errors import WeightsError
from meddistill.evaluation.metrics import auc_score
from meddistill.io.weights import file_sha256, load_weights
from meddistill.models.external import is_external, load_external_teacher, teacher_file_kind
from meddistill.models.factory import check_model_name, create_model, is_timm_model
from meddistill.models.pretrained import pretrained_state
from meddistill.registry import Registry
from meddistill.training import distributed as dist

TEACHER_SOURCES = Registry("teacher source")
AUTO_METHOD = "auto"  # not a method: search the logit methods on validation data (meddistill.pipeline.search)
PRETRAINED_CHOICES = ("none", "teacher", "student", "both")  # which models start from ImageNet weights
# The models --pretrained starts from when the user named none: timm models that have ImageNet weights.
PRETRAINED_DEFAULTS = {"teacher": "timm/resnet18", "student": "timm/mobilenetv3_small_050"}


@dataclass(frozen=True)
class ModelShape:
    """What a model is built for: the class names (K), channels C and training side S."""

    classes: tuple[str, ...]
    channels: int
    size: int

    @classmethod
    def of(cls, summary: dict) -> ModelShape:
        """From a dataset summary (``dataset.json``)."""
        return cls(tuple(summary["classes"]), int(summary["channels"]), int(summary["train_image_size"]))


def val_scores(model: torch.nn.Module, val: Batches, device: torch.device) -> dict[str, float]:
    """{"val_acc", "val_auc"} of a model on the val split."""
    probs = dist.gather_predictions(model, val, device)
    labels = val.split.labels
    return {"val_acc": float((probs.argmax(1) == labels).mean()), "val_auc": auc_score(labels, probs)}


class TeacherSource:
    """The base of a teacher source (see the module docstring); ``config`` is the run's ``RunConfig``."""

    name = ""
    label = ""  # what the Train page calls it
    priority = 9
    feature_maps = True  # its feature maps can be hooked (attention, fitnet)
    gradients = True  # gradients flow through it (Grad-CAM, Integrated Gradients)
    from_file = False  # a file the user gave, checked against the data before anything is queued
    default_epochs: int | None = None  # the teacher epochs unless the user gives them (None: the preset's)

    def __init__(self, config) -> None:
        self.config = config

    @staticmethod
    def matches(config) -> bool:
        raise NotImplementedError

    @property
    def trains(self) -> bool:
        """Whether this run trains (or fine-tunes) the teacher."""
        return self.config.teacher_epochs > 0

    @property
    def file(self) -> Path | None:
        return Path(self.config.teacher_weights) if self.config.teacher_weights else None

    def validate(self) -> None:
        """Refuse settings this teacher cannot run with (``ValueError``, one sentence)."""
        check_model_name(self.config.teacher)

    def supports(self, method: str) -> bool:
        """Whether distillation method ``method`` can learn from this teacher."""
        return self.feature_maps or not METHODS.entry(method).factory.uses_features

    def build(self, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
        """The teacher to train or use: its initial weights, or ``saved`` (the run folder's own teacher file)."""
        torch.manual_seed(self.config.seed)
        model = create_model(self.config.teacher, len(shape.classes), shape.channels, shape.size)
        return load_weights(model, saved) if saved is not None else model

    def identity(self, own: Path | None) -> Path | None:
        """The file whose bytes identify the teacher (keys its cached logits): the run's own teacher file."""
        return own

    def check(self, model: torch.nn.Module, val: Batches, device: torch.device, classes: list[str]) -> dict:
        """The val scores of a teacher used as is; refuses one whose two classes are evidently the other way round
        (val AUC under 0.3), before any student learns from it.

        Raises:
            WeightsError: the teacher's class order does not match the dataset's.
        """
        scores = val_scores(model, val, device)
        if len(classes) == 2 and scores["val_auc"] < 0.3:
            raise WeightsError(
                f"{self.file.name} ranks the val images backwards (val AUC {scores['val_auc']:.2f}): its class "
                f"order is probably not this dataset's ({classes[0]}, then {classes[1]}); re-save it with the "
                "output classes in that order, or fine-tune it with --teacher-epochs N."
            )
        return scores

    def record(self, scores: dict | None = None) -> dict:
        """The report's ``source`` entry of the teacher."""
        return {"kind": "trained here", "source": self.name}

    @staticmethod
    def describe(record: dict, arch: str) -> str:
        """One line for people from the report's ``source`` entry."""
        return f"Teacher: {record['kind']}"


@TEACHER_SOURCES.register("trained")
class TrainedTeacher(TeacherSource):
    """Trained here from random weights (the default)."""

    name, label, priority = "trained", "Train it here", 9

    @staticmethod
    def matches(config) -> bool:
        return True


@TEACHER_SOURCES.register("pretrained")
class PretrainedTeacher(TeacherSource):
    """A timm model started from ImageNet weights (cache, download or ``--teacher-weights``), fine-tuned here."""

    name, label, priority = "pretrained", "Start from ImageNet weights", 1

    @staticmethod
    def matches(config) -> bool:
        return config.starts_pretrained("teacher")

    def validate(self) -> None:
        super().validate()
        if not is_timm_model(self.config.teacher):
            raise ValueError(
                f"{self.config.teacher} is MedDistill's own small-image model and has no ImageNet weights; pick a "
                f"timm model for --pretrained, such as {PRETRAINED_DEFAULTS['teacher']}."
            )
        if self.config.teacher_epochs == 0:
            raise ValueError(
                "--pretrained starts the teacher from ImageNet weights, which must then be trained on this data; "
                "give --teacher-epochs 1 or more."
            )

    def build(self, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
        if saved is not None:
            return super().build(shape, saved)
        state, _ = pretrained_state(self.config.teacher, self.config.teacher_weights)
        torch.manual_seed(self.config.seed)
        return create_model(self.config.teacher, len(shape.classes), shape.channels, shape.size, pretrained=state)

    def record(self, scores: dict | None = None) -> dict:
        record = {"kind": "pretrained (ImageNet), fine-tuned here", "weights": self.config.teacher}
        if self.file is not None:
            record.update(file=self.file.name, sha256=file_sha256(self.file) if self.file.is_file() else "")
        return {**record, "source": self.name}

    @staticmethod
    def describe(record: dict, arch: str) -> str:
        start = f" ({record['file']})" if record.get("file") else ""
        return f"Teacher: {record.get('weights', arch)} from ImageNet weights{start}, fine-tuned here"


@TEACHER_SOURCES.register("weights")
class WeightsTeacher(TeacherSource):
    """A state dict (``.safetensors``, ``.pt``/``.pth``, never unpickled) for ``--teacher ARCH``: used as is with
    0 teacher epochs, else fine-tuned here."""

    name, label, priority = "weights", "Upload a trained model", 3
    from_file = True

    @staticmethod
    def matches(config) -> bool:
        return bool(config.teacher_weights)

    def validate(self) -> None:
        super().validate()
        if self.config.teacher_epochs < 0:
            raise ValueError("epochs must be at least 1 (teacher epochs may be 0 with --teacher-weights)")

    def build(self, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
        return super().build(shape, saved if saved is not None else self.file)

    def identity(self, own: Path | None) -> Path | None:
        return own if self.trains else self.file  # a file used as is: runs that reuse it share its logits

    def record(self, scores: dict | None = None) -> dict:
        kind = "imported, fine-tuned here" if self.trains else "imported, used as is"
        fmt = teacher_file_kind(self.file) if self.file.is_file() else "weights"
        sha = file_sha256(self.file) if self.file.is_file() else ""
        return {
            "kind": kind,
            "format": fmt,
            "file": self.file.name,
            "sha256": sha,
            **(scores or {}),
            "source": self.name,
        }

    @staticmethod
    def describe(record: dict, arch: str) -> str:
        kind = record["kind"].removeprefix("imported, ")
        fmt = {"onnx": "ONNX model ", "torchscript": "TorchScript model "}.get(record.get("format", ""), "")
        val = f" (val AUC {record['val_auc']:.3f})" if "val_auc" in record else ""
        return f"Teacher: imported {fmt}{record['file']} (sha256 {record.get('sha256', '')[:12]}…), {kind}{val}"


@TEACHER_SOURCES.register("imported")
class ImportedTeacher(WeightsTeacher):
    """An ONNX or TorchScript file from any framework: used as is (outputs only: logit methods, Occlusion)."""

    name, priority = "imported", 2
    feature_maps = gradients = False
    default_epochs = 0

    @staticmethod
    def matches(config) -> bool:
        return is_external(config.teacher_weights)

    def validate(self) -> None:
        if self.config.teacher_epochs:
            raise ValueError(
                f"{self.file.name} is an ONNX or TorchScript teacher, which is used as is and not fine-tuned; leave "
                "out --teacher-epochs (or give 0), or give its weights as .safetensors/.pth with --teacher ARCH to "
                "fine-tune it."
            )
        if self.config.method != AUTO_METHOD and not self.supports(self.config.method):
            raise ValueError(
                f"{self.config.method} distils the teacher's feature maps, which {self.file.name} does not expose "
                f"(only its outputs); choose a logit method: {', '.join(logit_methods())}."
            )

    def build(self, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
        path = saved if saved is not None else self.file
        classes, config = list(shape.classes), self.config
        return load_external_teacher(
            path, len(classes), shape.channels, shape.size, classes, config.teacher_classes, config.threads
        )


@TEACHER_SOURCES.register("reused")
class ReusedTeacher(TeacherSource):
    """Another run's trained teacher (``--teacher-from RUN``, ``meddistill tune``): not trained again, its cached
    logits reused. Built as the file it is (weights, ONNX or TorchScript)."""

    name, label, priority = "reused", "Reuse another run's teacher", 0
    from_file = True
    default_epochs = 0

    @staticmethod
    def matches(config) -> bool:
        return bool(config.teacher_from) and bool(config.teacher_weights)

    def _as_file(self) -> TeacherSource:
        return (ImportedTeacher if is_external(self.file) else WeightsTeacher)(self.config)

    @property
    def feature_maps(self) -> bool:  # type: ignore[override]
        return self._as_file().feature_maps

    @property
    def gradients(self) -> bool:  # type: ignore[override]
        return self._as_file().gradients

    def validate(self) -> None:
        self._as_file().validate()

    def build(self, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
        return self._as_file().build(shape, saved)

    def identity(self, own: Path | None) -> Path | None:
        return self._as_file().identity(own)

    def record(self, scores: dict | None = None) -> dict:
        return {**self._as_file().record(scores), "run": Path(self.config.teacher_from).name, "source": self.name}

    @staticmethod
    def describe(record: dict, arch: str) -> str:
        return WeightsTeacher.describe(record, arch) + (f", from run {record['run']}" if record.get("run") else "")


def resolve_teacher_source(config) -> TeacherSource:
    """The run's teacher source: the registered kind of lowest ``priority`` that matches the settings."""
    kinds = sorted((TEACHER_SOURCES.entry(n).factory for n in TEACHER_SOURCES.available()), key=lambda k: k.priority)
    return next(kind for kind in kinds if kind.matches(config))(config)


def describe_source(record: dict | None, arch: str) -> str:
    """The line that names where a report's teacher came from (a report before 2026-12 has no ``source`` name)."""
    record = record or {"kind": "trained here"}
    name = record.get("source") or _legacy_source(record)
    return TEACHER_SOURCES.entry(name).factory.describe(record, arch)


def _legacy_source(record: dict) -> str:
    if record["kind"].startswith("pretrained"):
        return "pretrained"
    return "weights" if "file" in record else "trained"


def build_model(config, role: str, shape: ModelShape, saved: Path | None = None) -> torch.nn.Module:
    """The one way a run's model is built: the teacher through its source, a student from its architecture (ImageNet
    weights with ``--pretrained student``); both students start from the same initial weights.

    Args:
        config: The run's ``RunConfig``.
        role: ``teacher``, ``student_scratch`` or ``student_kd``.
        shape: Classes, channels and training side.
        saved: The trained weights in the run folder, loaded instead of the initial ones.

    Raises:
        MedDistillError: pretrained weights unavailable offline, or an imported teacher that does not fit.
    """
    if role == "teacher":
        return config.teacher_source().build(shape, saved)
    state = None
    if saved is None and config.starts_pretrained(role):
        state, _ = pretrained_state(config.student, config.student_weights)
    torch.manual_seed(config.seed + 1)
    model = create_model(config.student, len(shape.classes), shape.channels, shape.size, pretrained=state)
    return load_weights(model, saved) if saved is not None else model
