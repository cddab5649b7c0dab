"""A run's settings: one typed dataclass, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import field
from pathlib import Path

import meddistill.settings.fields  # noqa: F401  (declares every setting before RunConfig is built)
from meddistill.data.dataset import MedDataset
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.distillation.base import METHODS
from meddistill.evaluation.trust import TrustSettings
from meddistill.io.atomic import atomic_write_json
from meddistill.models.factory import check_model_name, is_timm_model
from meddistill.models.registry import available_models, model_dims
from meddistill.settings.declarations import SETTINGS, Setting
from meddistill.settings.presets import LARGE_IMAGES, PRESETS, VOLUMES, default_preset
from meddistill.settings.sources import (
    AUTO_METHOD,
    PRETRAINED_CHOICES,
    PRETRAINED_DEFAULTS,
    TeacherSource,
    resolve_teacher_source,
)
from meddistill.tracking import check_trackers


def pretrained_roles(pretrained: str) -> tuple[str, ...]:
    """The settings (``teacher``, ``student``) whose models start from ImageNet weights."""
    return {"none": (), "teacher": ("teacher",), "student": ("student",), "both": ("teacher", "student")}[pretrained]


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
            (
                self.target_sensitivity is None or self.target_specificity is None,
                "give --target-sensitivity or --target-specificity, not both: one operating point is chosen",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_trackers(self.log_to)
        for setting in SETTINGS.values():  # every other declared range and choice (a new setting's too)
            problem = None if setting.name in _CHECKED_ABOVE else setting.out_of_range(getattr(self, setting.name))
            if problem:
                raise ValueError(problem)
        return self

    def data_options(self) -> DataOptions:
        """How the dataset is read (labels-CSV columns, patient key, duplicates)."""
        return DataOptions(**{name: getattr(self, name) for name in DataOptions.names()})

    def trust_settings(self) -> TrustSettings:
        """How the operating points are chosen (``meddistill.evaluation.trust``)."""
        if self.target_sensitivity is not None:
            return TrustSettings("sensitivity", self.target_sensitivity, self.positive_class)
        if self.target_specificity is not None:
            return TrustSettings("specificity", self.target_specificity, self.positive_class)
        return TrustSettings("youden", None, self.positive_class)

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

    def for_data(self, native: int, spatial_dims: int = 2) -> "RunConfig":
        """The settings for data whose native side is ``native``: for volumes (``spatial_dims`` 3) the preset's 3D
        models and cube (``VOLUMES``); for large images the preset's choices (``LARGE_IMAGES``: the teacher and
        its steps) where the user gave neither and the run trains its own teacher; otherwise the settings as they
        are. A value the user gave is never changed.

        Raises:
            ValueError: a model the user named takes images and the data are volumes, or the other way round.
        """
        if spatial_dims == 3:
            changes = {k: v for k, v in VOLUMES.get(self.preset, VOLUMES["cpu"]).items() if k not in self.given}
            return self.replace(**changes).check_dims(3)
        return self._for_images(native).check_dims(2)

    def _for_images(self, native: int) -> "RunConfig":
        rule = LARGE_IMAGES.get(self.preset)
        if not rule or self.resolved_image_size(native) <= rule["above_px"] or "teacher" in self.given:
            return self
        if self.teacher_source().name != "trained":
            return self
        changes = {k: v for k, v in rule.items() if k != "above_px" and k not in self.given}
        if "min_steps" in self.given:  # a minimum the user typed holds for the teacher too
            changes.pop("teacher_min_steps", None)
        return self.replace(**changes)

    def check_dims(self, spatial_dims: int) -> "RunConfig":
        """The settings, if their models take what the data hold (images: 2, volumes: 3).

        Raises:
            ValueError: one sentence naming the model and the ones that fit.
        """
        source = self.teacher_source()
        named = [("student", self.student)] + ([("teacher", self.teacher)] if source.name != "imported" else [])
        for role, name in named:
            if model_dims(name) != spatial_dims:
                kind = "volumes" if spatial_dims == 3 else "2D images"
                fits = ", ".join(available_models(role, spatial_dims))
                raise ValueError(f"--{role} {name} does not take {kind}, which the data are; choose one of: {fits}.")
        return self

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
