"""``report.json`` as dataclasses: the report, a model's entry, the verdicts and the data checks.

``report.json`` is written from these (``Report.to_dict``) and read back into them (``Report.from_dict``), so the
file's schema lives here and nowhere else; ``schema_version`` says which version wrote it. A report without one
(written before 2026-12) is read through ``_upgrade_v0``; one from a newer version is refused with a sentence.

A model's ``test`` figures belong to the run's task (``meddistill.tasks``): the task names the dataclass they are
read into, so a new task brings its own metrics without changing this module.

Example:
    >>> report = RunFolder(path).report()
    >>> report.models["student_kd"].test.acc      # a float in [0, 1]
    >>> report.verdict["distillation"].direction  # "gained", "lost" or "no difference"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from meddistill.data.summary import DataCheck, leakage_checks
from meddistill.errors import MedDistillError
from meddistill.evaluation.significance import direction
from meddistill.evaluation.trust import Trust
from meddistill.tasks import DEFAULT_TASK, task_for

SCHEMA_VERSION = 1
# What each model is deployed as, and so which ONNX Runtime fields its entry has: the teacher in fp32, the students
# in fp32 and int8 (meddistill.pipeline.deployment exports and times them).
DEPLOYED_FORMATS = {"teacher": ("onnx",), "student_scratch": ("onnx", "onnx-int8"), "student_kd": ("onnx", "onnx-int8")}


def deployed_fields(fmt: str) -> tuple[str, str]:
    """report.json field names of a format's batch-1 latency and batch-64 throughput: ``onnx_int8_latency_ms_b1``."""
    stem = fmt.replace("-", "_")
    return f"{stem}_latency_ms_b1", f"{stem}_throughput_b64"


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts (fields that are None left out), recursively."""
    if dataclasses.is_dataclass(value):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _known(cls: type, values: dict) -> dict:
    """The items of ``values`` that are fields of ``cls``; unknown keys raise (a report is never silently cut)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise MedDistillError(
            f"report.json has a field this MedDistill does not know ({unknown[0]!r} in {cls.__name__}); "
            "upgrade MedDistill to read it."
        )
    return values


@dataclass
class Deployment:
    """Latency of one exported file in ONNX Runtime: its report.json field names come from ``deployed_fields``."""

    latency_ms_b1: float
    throughput_b64: float


@dataclass
class ModelEntry:
    """One model of a run: its architecture, size, speed, training and test figures (``test``: the task's)."""

    arch: str
    params: int
    size_mb: float
    flops: int
    latency_ms_b1: float  # PyTorch eager, median of batch-1 calls
    throughput_b64: float  # PyTorch eager, best of 5 batches of 64
    train_seconds: float
    epochs_run: int
    best_epoch: int
    onnx_latency_ms_b1: float | None = None
    onnx_throughput_b64: float | None = None
    onnx_int8_latency_ms_b1: float | None = None
    onnx_int8_throughput_b64: float | None = None
    deployed_error: str | None = None  # one sentence when an export could not be made or run
    test: Any = None  # the task's metrics dataclass (``Task.metrics_type``)
    source: dict | None = None  # the teacher only: where it came from (``meddistill.settings.sources``)

    def deployed(self, fmt: str) -> Deployment | None:
        """The ONNX Runtime timing of ``fmt`` ("onnx", "onnx-int8"), or None when it was not measured."""
        latency_field, throughput_field = deployed_fields(fmt)
        latency = getattr(self, latency_field, None)
        return None if latency is None else Deployment(latency, getattr(self, throughput_field))

    def fastest_deployed(self, role: str) -> tuple[float, str] | None:
        """(batch-1 latency in ms, format) of the fastest file ``role`` is deployed as, or None."""
        timed = [(d.latency_ms_b1, fmt) for fmt in DEPLOYED_FORMATS.get(role, ()) if (d := self.deployed(fmt))]
        return min(timed) if timed else None

    @classmethod
    def from_dict(cls, values: dict, metrics_type: type) -> ModelEntry:
        values = dict(_known(cls, values))
        values["test"] = metrics_type(**_known(metrics_type, values["test"]))
        return cls(**values)


@dataclass
class Verdict:
    """A paired bootstrap comparison of two models on the same test images (``meddistill.evaluation.significance``).

    ``direction`` is ``"gained"``, ``"lost"`` (the first model against the second, significant at 95 %) or
    ``"no difference"``; ``sentence`` says it for people.
    """

    n: int
    resamples: int
    acc_diff: float
    acc_ci: list[float]
    auc_diff: float
    auc_ci: list[float]
    val_acc_diff: float | None = None
    val_auc_diff: float | None = None
    direction: str = ""
    sentence: str = ""
    resampled: str = "images"  # what the bootstrap draws: images, or whole patients (several findings per image)

    @classmethod
    def from_dict(cls, values: dict) -> Verdict:
        return cls(**_known(cls, values))


@dataclass
class TeacherCheck:
    """The teacher against the student trained from scratch on val (``meddistill.pipeline.guards``)."""

    teacher_val_auc: float
    scratch_val_auc: float
    better: bool
    sentence: str
    trained_on_epochs: int = 0  # epochs the teacher trained on because it was not better (``teacher_train_on``)


@dataclass
class Report:
    """Everything ``report.json`` holds.

    Attributes:
        models: Per role (``ROLES``), the model's entry.
        verdict: ``distillation`` (distilled against scratch student) and ``student_vs_teacher``.
        data_checks: The duplicate and leakage findings on the run's data, each with a kind and a level.
        search: The ``--method auto`` record (every candidate, the choice), when the run searched.
        teacher_check: Whether the teacher is better than the scratch student on val, and the sentence saying so.
        headline: The student presented as the result (``student_kd`` unless the scratch student is better on val).
        distilled_from: The sentence saying what the distilled student learned from when it was not the teacher alone
            (``--distil-from ensemble``: the teacher and the scratch student, logits averaged); None otherwise.
        agreement: Per student, the fraction of test images on which it predicts the teacher's class.
        trust: Calibration, operating points, referral, subgroups and leak-free figures of every model
            (``meddistill.evaluation.trust``); the models' ``test`` figures use the calibrated probabilities.
    """

    run_id: str
    dataset: dict  # the dataset summary (``MedDataset.summary()`` plus ``train_image_size``)
    config: dict  # the run's settings as in config.json
    device: str
    cpu: str
    threads: int
    models: dict[str, ModelEntry] = field(default_factory=dict)
    task: str = DEFAULT_TASK
    data_checks: list[DataCheck] = field(default_factory=list)
    search: dict | None = None
    verdict: dict[str, Verdict] = field(default_factory=dict)
    teacher_check: TeacherCheck | None = None
    headline: str = "student_kd"  # the student presented as the result: the better of the two on val
    headline_reason: str | None = None
    distilled_from: str | None = None
    agreement: dict[str, float] | None = None
    trust: Trust | None = None
    seconds: float = 0.0
    schema_version: int = SCHEMA_VERSION

    @property
    def warnings(self) -> list[str]:
        """The sentences of the data checks at warning level."""
        return [check.text for check in self.data_checks if check.level == "warning"]

    def to_dict(self) -> dict:
        """The report as report.json holds it."""
        return _plain(self)

    def __getitem__(self, key: str) -> Any:
        """Read-only: ``report["models"]`` is report.json's ``"models"`` (plain dicts), for scripts written against
        the file; the library itself reads the attributes."""
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    @classmethod
    def from_dict(cls, values: dict, source: str = "The report") -> Report:
        """Read a report written by this or an older MedDistill.

        Raises:
            MedDistillError: written by a newer MedDistill (``schema_version`` above ``SCHEMA_VERSION``), or a field
                this version does not know.
        """
        version = values.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            raise MedDistillError(
                f"{source} was written by a newer MedDistill (report schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}); upgrade MedDistill to read it."
            )
        if version == 0:
            values = _upgrade_v0(values)
        values = dict(_known(cls, values))
        metrics_type = task_for(values.get("task", DEFAULT_TASK)).metrics_type
        values["models"] = {r: ModelEntry.from_dict(m, metrics_type) for r, m in values["models"].items()}
        values["verdict"] = {k: Verdict.from_dict(v) for k, v in values.get("verdict", {}).items()}
        values["data_checks"] = [DataCheck(**c) for c in values.get("data_checks", [])]
        if values.get("trust") is not None:
            values["trust"] = Trust.from_dict(values["trust"])
        if values.get("teacher_check") is not None:
            values["teacher_check"] = TeacherCheck(**_known(TeacherCheck, values["teacher_check"]))
        return cls(**values)


def _upgrade_v0(values: dict) -> dict:
    """A report from before ``schema_version`` (2026-11): every figure kept; the fields added since then (the
    task, each verdict's direction, the data checks) computed from what it holds."""
    values = {**values, "schema_version": SCHEMA_VERSION, "task": DEFAULT_TASK}
    values["verdict"] = {k: {**v, "direction": direction(v)} for k, v in values.get("verdict", {}).items()}
    leakage = values.get("dataset", {}).get("provenance", {}).get("leakage")
    values["data_checks"] = [dataclasses.asdict(c) for c in leakage_checks(leakage)] if leakage is not None else []
    return values
