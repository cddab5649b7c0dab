"""A run's settings: one typed dataclass, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import field
from pathlib import Path

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.distillation.base import METHODS
from meddistill.io.atomic import atomic_write_json
from meddistill.models.factory import check_model_name, is_timm_model
from meddistill.settings.declarations import SETTINGS, Setting, comma_list, declare
from meddistill.settings.sources import (
    AUTO_METHOD,
    PRETRAINED_CHOICES,
    PRETRAINED_DEFAULTS,
    TeacherSource,
    resolve_teacher_source,
)

PRESETS: dict[str, dict] = {
    # Fast enough for a 2-core laptop: 28 px MedMNIST in minutes, larger images capped at 64 px.
    # The teacher is augmented; the students are not, so distillation reuses the teacher's logits computed once.
    # 5 teacher epochs, raised to at least 75 steps: 15 on BreastMNIST, 5 on PneumoniaMNIST (chosen on val AUC over
    # 5 seeds against 4 epochs raised to 150 steps: docs/results.md). Sets over 4,736 train images get 5 epochs, not 4.
    "cpu": dict(
        teacher_epochs=5,
        student_epochs=30,
        min_steps=75,
        batch_size=128,
        max_image_size=64,
        augment=True,
        augment_students=False,
        class_weighted=True,
        patience=8,
        ema_decay=0.98,
    ),
    # What a GPU affords: full resolution up to 224 px, augmentation, longer schedules.
    "thorough": dict(
        teacher_epochs=30,
        student_epochs=60,
        min_steps=1000,
        batch_size=128,
        max_image_size=224,
        augment=True,
        augment_students=True,
        class_weighted=True,
        patience=15,
        ema_decay=0.999,
    ),
    # For tests and demos of the workflow itself: seconds, not minutes.
    "smoke": dict(
        teacher_epochs=1,
        student_epochs=1,
        min_steps=0,
        batch_size=64,
        max_image_size=28,
        augment=False,
        augment_students=False,
        patience=2,
        latency_runs=20,
    ),
}


def default_preset() -> str:
    """``thorough`` when a CUDA GPU is present, ``cpu`` otherwise."""
    return "thorough" if torch.cuda.is_available() else "cpu"


def pretrained_roles(pretrained: str) -> tuple[str, ...]:
    """The settings (``teacher``, ``student``) whose models start from ImageNet weights."""
    return {"none": (), "teacher": ("teacher",), "student": ("student",), "both": ("teacher", "student")}[pretrained]


# Every setting, declared once (meddistill.settings.declarations): RunConfig's fields, `meddistill run`'s options
# and the Train page's fields are made from these lines, in this order.
declare("data", "", "dataset source: .npz, folder, .zip or MedMNIST name", cli=False)
declare("file_column", None, "labels-CSV column with the image files", kind=str, optional=True, cli=False)
declare("label_column", None, "labels-CSV column with the classes", kind=str, optional=True, cli=False)
declare("split_column", None, "labels-CSV column with train/val/test", kind=str, optional=True, cli=False)
declare("group_column", None, "labels-CSV column with the patient id", kind=str, optional=True, cli=False)
declare(
    "group_pattern", None, "regular expression whose first group is the patient key", kind=str, optional=True, cli=False
)
declare("drop_duplicates", False, "drop val and test images that copy a training image", cli=False)
declare("teacher", "resnet18", "teacher architecture: one of MedDistill's models or any timm name (timm/NAME)")
declare("student", "tiny_cnn", "student architecture, likewise")
declare("method", "kd", "distillation method: kd, dkd, dist, kd_ls, attention, fitnet, or auto (chosen on val)")
declare(
    "kd_temperature",
    4.0,
    "softmax temperature T of Hinton KD",
    minimum=1.0,
    maximum=10.0,
    step=0.5,
    widget="slider",
    page="distillation",
    label="Temperature T",
)
declare(
    "kd_alpha",
    0.5,
    "weight of the teacher term; 1 - alpha goes to the labels",
    minimum=0.0,
    maximum=1.0,
    step=0.05,
    widget="slider",
    page="distillation",
    label="alpha (weight of the teacher)",
)
declare("kd_beta", 8.0, "DKD: weight of the non-target-class term (default 8)")
declare("feature_weight", 100.0, "weight of the feature term for attention / fitnet", cli=False)
declare("preset", "cpu", "name in PRESETS that filled the fields below", cli=False)
declare(
    "teacher_epochs",
    5,
    "epochs for the teacher (0: a teacher file used as is)",
    minimum=0,
    maximum=500,
    page="schedule",
    label="Teacher epochs",
)
declare(
    "student_epochs",
    30,
    "epochs for each student (scratch and distilled)",
    minimum=1,
    maximum=500,
    page="schedule",
    label="Student epochs",
)
declare("min_steps", 75, "raise the preset's default epochs to reach this many steps per model", minimum=0)
declare(
    "teacher_min_steps",
    None,
    "the teacher's own minimum of optimisation steps (default: --min-steps)",
    kind=int,
    optional=True,
    minimum=0,
)
declare("ema_decay", 0.0, "> 0: validate and keep a moving average of the weights", cli=False)
declare(
    "lr", 2e-3, "AdamW learning rate (cosine schedule)", minimum=1e-5, maximum=1.0, page="input", label="Learning rate"
)
declare("weight_decay", 1e-4, "AdamW weight decay", cli=False)
declare(
    "batch_size",
    128,
    "images per optimisation step",
    minimum=1,
    page="input",
    label="Batch size",
    widget="select",
    options=(16, 32, 64, 128, 256),
)
declare(
    "image_size",
    None,
    "train at this side in pixels (default: native, capped by the preset)",
    kind=int,
    optional=True,
    page="input",
    label="Image size (px)",
    widget="select",
    options=(None, 28, 32, 64, 128, 224),
    none_label="native",
)
declare("max_image_size", 64, "cap on the native size when image_size is not given", cli=False)
declare(
    "augment",
    False,
    "augment the teacher's training images (default: on in cpu and thorough)",
    page="input",
    label="Augment the teacher",
)
declare(
    "augment_students",
    False,
    "augment the students' training images too (thorough only)",
    page="input",
    label="Augment the students",
)
declare(
    "class_weighted",
    False,
    "weight cross-entropy by inverse class frequency",
    page="input",
    label="Class-weighted loss",
)
declare("patience", 8, "stop a model after this many epochs without val improvement", minimum=1)
declare(
    "seed", 0, "seed for splits, initialisation and batch order", minimum=0, maximum=10_000, page="input", label="Seed"
)
declare("device", "auto", "where to train", choices=("auto", "cpu", "cuda"))
declare("num_workers", 0, "data-loader worker processes for folder sources", cli=False)
declare(
    "teacher_weights",
    None,
    "a teacher trained elsewhere: .safetensors or a PyTorch state dict (.pt/.pth; never "
    "unpickled) for --teacher ARCH, a TorchScript file or an ONNX model; with --teacher-epochs 0 it is used as is. "
    "With --pretrained: the ImageNet weights file to start from instead of the cache or a download",
    kind=str,
    optional=True,
)
declare(
    "teacher_classes",
    None,
    "an imported teacher's class names in the order of its outputs, comma-separated "
    "(default: the dataset's order, as check-data prints it)",
    kind=list,
    optional=True,
    parse=comma_list,
)
declare(
    "teacher_from",
    None,
    "the run whose trained teacher this run reuses as is (--teacher-from RUN)",
    kind=str,
    optional=True,
    cli=False,
)
declare(
    "pretrained",
    "none",
    "start the teacher (the default when given alone), the student or both from timm's "
    f"ImageNet weights; without --teacher it is {PRETRAINED_DEFAULTS['teacher']}, without --student "
    f"{PRETRAINED_DEFAULTS['student']}",
    choices=PRETRAINED_CHOICES,
    cli_extra={"nargs": "?", "const": "teacher"},
)
declare(
    "student_weights", None, "with --pretrained student/both: the ImageNet weights file to use", kind=str, optional=True
)
declare("latency_runs", 200, "batch-1 timings whose median is reported", cli=False)
declare("world_size", 1, "processes that trained the run (torchrun)", cli=False)
declare(
    "checkpoint_seconds",
    30.0,
    "save the training state after the first epoch, then at most this often (default 30; 0: every epoch)",
    minimum=0.0,
)
declare("channels_last", True, "train in the NHWC memory format (default: on; faster convolutions)")
declare("threads", 0, "CPU threads for torch (default: one per available core)", minimum=0)
declare("given", [], "settings the user gave explicitly: presets never adapt these", kind=list, cli=False)
declare("extra", {}, "free-form notes kept with the run", kind=dict, cli=False)


# Settings whose ranges validate() checks with their own sentences (wider than the page's widget limits).
_CHECKED_ABOVE = {"kd_temperature", "kd_alpha", "teacher_epochs", "student_epochs", "lr", "batch_size", "threads"}
_CHECKED_ABOVE |= {"checkpoint_seconds", "seed", "image_size", "device", "pretrained"}


def _field(setting: Setting) -> tuple:
    kind = setting.value_kind | None if setting.optional else setting.value_kind
    if isinstance(setting.default, (list, dict)):
        return setting.name, kind, field(default_factory=lambda d=setting.default: copy.deepcopy(d))
    return setting.name, kind, field(default=setting.default)


class _RunConfigMethods:
    @classmethod
    def from_preset(cls, preset: str | None = None, **overrides) -> "RunConfig":
        """A config filled from ``PRESETS[preset]`` (default: by hardware), then ``overrides``.

        Raises:
            ValueError: unknown preset or unknown field, listing the valid ones.
        """
        preset = preset or default_preset()
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}; valid settings: {', '.join(sorted(names))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        values = {**PRESETS[preset], "preset": preset, **given}
        values["given"] = sorted(set(given) - {"data", "given"})
        for setting in pretrained_roles(values.get("pretrained", "none")):  # a default the user did not type
            if setting not in given:
                values[setting] = PRETRAINED_DEFAULTS[setting]
        config = cls(**values)
        epochs = config.teacher_source().default_epochs  # e.g. an ONNX teacher: used as is unless the user says so
        if epochs is not None and "teacher_epochs" not in given:
            config = dataclasses.replace(config, teacher_epochs=epochs)
        return config

    def teacher_source(self) -> TeacherSource:
        """Where the teacher comes from (``meddistill.settings.sources``): trained here, pretrained, a weights
        file, an imported ONNX / TorchScript file, or another run's teacher."""
        return resolve_teacher_source(self)

    def validate(self) -> "RunConfig":
        """Check names and ranges before anything is trained.

        Raises:
            ValueError: an unknown architecture or method (listing the valid
                names) or a setting out of range.
        """
        if self.pretrained not in PRETRAINED_CHOICES:
            raise ValueError(f"pretrained must be one of {', '.join(PRETRAINED_CHOICES)}, got {self.pretrained!r}")
        source = self.teacher_source()
        check_model_name(self.student)
        if self.method != AUTO_METHOD:
            METHODS.entry(self.method)
        source.validate()
        if self.starts_pretrained("student_kd") and not is_timm_model(self.student):
            raise ValueError(
                f"{self.student} is MedDistill's own small-image model and has no ImageNet weights; pick a "
                f"timm model for --pretrained, such as {PRETRAINED_DEFAULTS['student']}."
            )
        checks = [
            (self.kd_temperature > 0, f"kd_temperature must be > 0, got {self.kd_temperature}"),
            (0 <= self.kd_alpha <= 1, f"kd_alpha must be between 0 and 1, got {self.kd_alpha}"),
            (
                self.teacher_epochs >= 0 and self.student_epochs >= 1,
                "epochs must be at least 1 (teacher epochs may be 0 with --teacher-weights)",
            ),
            (
                self.teacher_epochs > 0 or bool(self.teacher_weights),
                "teacher_epochs is 0, so give --teacher-weights to start from",
            ),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (
                self.image_size is None or 8 <= self.image_size <= 1024,
                f"image_size must be between 8 and 1024 px, got {self.image_size}",
            ),
            (self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"),
            (self.threads >= 0, f"threads must be 0 (automatic) or more, got {self.threads}"),
            (self.checkpoint_seconds >= 0, f"checkpoint_seconds must be 0 or more, got {self.checkpoint_seconds}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        for setting in SETTINGS.values():  # every other declared range and choice (a new setting's too)
            problem = None if setting.name in _CHECKED_ABOVE else setting.out_of_range(getattr(self, setting.name))
            if problem:
                raise ValueError(problem)
        return self

    def data_options(self) -> DataOptions:
        """How the dataset is read (labels-CSV columns, patient key, duplicates)."""
        return DataOptions(**{name: getattr(self, name) for name in DataOptions.names()})

    def load_data(self, verify: str = "sample") -> MedDataset:
        """The run's dataset, read with its seed and data options (the same splits every time)."""
        return load_dataset(self.data, seed=self.seed, verify=verify, options=self.data_options())

    def epochs_field(self, role: str) -> str:
        """The setting that holds a role's epochs: ``teacher_epochs`` or ``student_epochs``."""
        return "teacher_epochs" if role == "teacher" else "student_epochs"

    def epochs_for(self, role: str, train_images: int, world_size: int = 1) -> int:
        """Epochs for ``role``: the configured number; a preset's default (never a number the user gave) is raised so
        that a small dataset still gets ``min_steps`` optimisation steps."""
        epochs = getattr(self, self.epochs_field(role))
        min_steps = (
            self.teacher_min_steps if role == "teacher" and self.teacher_min_steps is not None else self.min_steps
        )
        if epochs == 0 or not min_steps or self.epochs_field(role) in self.given:
            return epochs
        steps_per_epoch = max(1, -(-train_images // (self.batch_size * world_size)))
        return max(epochs, -(-min_steps // steps_per_epoch))

    def arch_for(self, role: str) -> str:
        """The architecture of a run's model: the teacher's for "teacher", the student's for both students."""
        return self.teacher if role == "teacher" else self.student

    def starts_pretrained(self, role: str) -> bool:
        """Whether ``role``'s model starts from ImageNet weights (``--pretrained``)."""
        return ("teacher" if role == "teacher" else "student") in pretrained_roles(self.pretrained)

    def pretrained_file(self, role: str) -> str | None:
        """The local ImageNet weights file for ``role`` (``--teacher-weights`` / ``--student-weights`` beside
        ``--pretrained``), None to use the cache or download."""
        if not self.starts_pretrained(role):
            return None
        return self.teacher_weights if role == "teacher" else self.student_weights

    def resolved_image_size(self, native: int) -> int:
        """The training side: ``image_size`` if set, else the native size capped at ``max_image_size``."""
        return int(self.image_size or min(native, self.max_image_size))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes`` (the config itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a ``config.json``; unknown keys (from a newer version) are ignored."""
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _build_run_config() -> type:
    """The frozen ``RunConfig`` dataclass with one field per declared setting."""
    cls = dataclasses.make_dataclass(
        "RunConfig",
        [_field(setting) for setting in SETTINGS.values()],
        bases=(_RunConfigMethods,),
        frozen=True,
        namespace={
            "__doc__": "Everything that decides what a run trains and how (frozen once made; see ``SETTINGS``).",
            "__module__": __name__,
        },
    )
    return cls


RunConfig = _build_run_config()
