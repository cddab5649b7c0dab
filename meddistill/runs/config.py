"""A run's settings: one typed dataclass, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.distillation.base import METHODS
from meddistill.io.atomic import atomic_write_json
from meddistill.models.external import is_external
from meddistill.models.factory import check_model_name, is_timm_model

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


AUTO_METHOD = "auto"  # not a method: search the logit methods on validation data (meddistill.runs.search)
PRETRAINED_CHOICES = ("none", "teacher", "student", "both")  # which models start from ImageNet weights
# The models --pretrained starts from when the user named none: timm models that have ImageNet weights.
PRETRAINED_DEFAULTS = {"teacher": "timm/resnet18", "student": "timm/mobilenetv3_small_050"}


def pretrained_roles(pretrained: str) -> tuple[str, ...]:
    """The settings (``teacher``, ``student``) whose models start from ImageNet weights."""
    return {"none": (), "teacher": ("teacher",), "student": ("student",), "both": ("teacher", "student")}[pretrained]


@dataclass
class RunConfig:
    """Everything that decides what a run trains and how."""

    data: str = ""  # dataset source: .npz, folder, .zip or MedMNIST name
    file_column: str | None = None  # labels-CSV column with the image files (None: guessed from common names)
    label_column: str | None = None  # labels-CSV column with the classes (None: guessed)
    split_column: str | None = None  # labels-CSV column with train/val/test (None: guessed)
    group_column: str | None = None  # labels-CSV column with the patient id: splits keep a patient together
    group_pattern: str | None = None  # regular expression over file names; its first group is the patient key
    drop_duplicates: bool = False  # drop val and test images that copy a training image (exactly or nearly)
    teacher: str = "resnet18"  # teacher architecture: one of MedDistill's models or any timm name (timm/NAME)
    student: str = "tiny_cnn"  # student architecture, likewise
    method: str = "kd"  # distillation method: kd, dkd, dist, kd_ls, attention, fitnet, or auto (chosen on val)
    kd_temperature: float = 4.0  # softmax temperature T of Hinton KD
    kd_alpha: float = 0.5  # weight of the soft (teacher) term; 1 - alpha goes to the labels
    kd_beta: float = 8.0  # DKD: weight of the non-target-class term
    feature_weight: float = 100.0  # weight of the feature term for attention / fitnet
    preset: str = "cpu"  # name in PRESETS that filled the fields below
    teacher_epochs: int = 5  # epochs for the teacher
    student_epochs: int = 30  # epochs for each student (scratch and distilled)
    min_steps: int = 75  # at least this many optimisation steps per model (small datasets get more epochs)
    ema_decay: float = 0.0  # > 0: validate and keep a moving average of the weights (smoother best-epoch choice)
    lr: float = 2e-3  # AdamW learning rate (cosine schedule)
    weight_decay: float = 1e-4  # AdamW weight decay
    batch_size: int = 128  # images per optimisation step
    image_size: int | None = None  # side in pixels; None = native size capped at max_image_size
    max_image_size: int = 64  # cap on the native size when image_size is None
    augment: bool = False  # random affine + intensity jitter on the teacher's train images
    augment_students: bool = False  # the same for both students; distillation then runs the teacher on every batch
    class_weighted: bool = False  # weight cross-entropy by inverse class frequency
    patience: int = 8  # early stopping: epochs without val improvement
    seed: int = 0  # seed for splits, initialisation and batch order
    device: str = "auto"  # auto, cpu or cuda
    num_workers: int = 0  # data-loader worker processes for folder sources
    teacher_weights: str | None = (
        None  # local .safetensors or .pt/.pth state dict to start the teacher from (used as is if teacher_epochs is 0)
    )
    teacher_classes: list[str] | None = None  # an imported teacher's class names in the order of its outputs
    pretrained: str = "none"  # none, teacher, student or both: start from timm's ImageNet weights
    student_weights: str | None = None  # local ImageNet weights file for the student (with pretrained)
    latency_runs: int = 200  # batch-1 timings whose median is reported
    world_size: int = 1  # processes that trained the run (torchrun)
    checkpoint_seconds: float = 30.0  # training state is saved after the first epoch, then at most this often
    channels_last: bool = True  # train in the NHWC memory format (faster convolutions; False: as before 2026-11)
    threads: int = 0  # torch intra-op threads on the CPU; 0 = one per available core (per process under torchrun)
    given: list[str] = field(default_factory=list)  # settings the user gave explicitly: presets never adapt these
    extra: dict = field(default_factory=dict)  # free-form notes kept with the run

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
        if is_external(values.get("teacher_weights")) and "teacher_epochs" not in given:
            values["teacher_epochs"] = 0  # an ONNX / TorchScript teacher is used as is unless the user said otherwise
        for setting in pretrained_roles(values.get("pretrained", "none")):  # a default the user did not type
            if setting not in given:
                values[setting] = PRETRAINED_DEFAULTS[setting]
        return cls(**values)

    def validate(self) -> "RunConfig":
        """Check names and ranges before anything is trained.

        Raises:
            ValueError: an unknown architecture or method (listing the valid
                names) or a setting out of range.
        """
        if self.pretrained not in PRETRAINED_CHOICES:
            raise ValueError(f"pretrained must be one of {', '.join(PRETRAINED_CHOICES)}, got {self.pretrained!r}")
        external = is_external(self.teacher_weights)
        if not external:
            check_model_name(self.teacher)
        check_model_name(self.student)
        if self.method != AUTO_METHOD:
            METHODS.entry(self.method)
        if external:
            name = Path(self.teacher_weights).name
            if self.teacher_epochs:
                raise ValueError(
                    f"{name} is an ONNX or TorchScript teacher, which is used as is and not fine-tuned; leave out "
                    "--teacher-epochs (or give 0), or give its weights as .safetensors/.pth with --teacher ARCH to "
                    "fine-tune it."
                )
            if self.method != AUTO_METHOD and METHODS.entry(self.method).factory.uses_features:
                raise ValueError(
                    f"{self.method} distils the teacher's feature maps, which {name} does not expose (only its "
                    "outputs); choose a logit method: kd, dkd, dist or kd_ls."
                )
        for role in ("teacher", "student_kd"):
            if self.starts_pretrained(role) and not is_timm_model(self.arch_for(role)):
                raise ValueError(
                    f"{self.arch_for(role)} is MedDistill's own small-image model and has no ImageNet weights; pick a "
                    f"timm model for --pretrained, such as {PRETRAINED_DEFAULTS[self.epochs_field(role)[:-7]]}."
                )
        if "teacher" in pretrained_roles(self.pretrained) and self.teacher_epochs == 0:
            raise ValueError(
                "--pretrained starts the teacher from ImageNet weights, which must then be trained on this data; "
                "give --teacher-epochs 1 or more."
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
        if epochs == 0 or not self.min_steps or self.epochs_field(role) in self.given:
            return epochs
        steps_per_epoch = max(1, -(-train_images // (self.batch_size * world_size)))
        return max(epochs, -(-self.min_steps // steps_per_epoch))

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

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a ``config.json``; unknown keys (from a newer version) are ignored."""
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
