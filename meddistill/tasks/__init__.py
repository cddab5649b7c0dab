"""What a model is asked to predict, and so how its outputs are read, trained and scored.

A task owns the output activation (logits -> probabilities), the training loss, the test metrics and the
dataclass those metrics are read into in ``report.json`` (``ModelEntry.test``). The pipeline and the report ask the
run's task instead of assuming one label per image, so a new task (several findings per image, 3D volumes) is one
registration here. Registered tasks: ``single_label`` (one class per 2D image; softmax, cross-entropy) and
``multi_label`` (any number of findings per image; sigmoid, binary cross-entropy per finding).

Example:
    >>> task = task_for("single_label")
    >>> probs = task.activation(logits)           # (N, K) logits -> (N, K) probabilities
    >>> metrics = task.metrics(labels, probs)      # a ClassificationMetrics
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from meddistill.distillation.base import label_loss
from meddistill.evaluation.findings import finding_auc_intervals, findings_metrics, macro_auc, thresholds_on
from meddistill.evaluation.metrics import agreement, auc_score, classification_metrics
from meddistill.registry import Registry
from meddistill.training.averaging import class_weights_for
from meddistill.training.engine import balanced_accuracy

TASKS = Registry("task")
DEFAULT_TASK = "single_label"


@dataclass
class ClassificationMetrics:
    """Test figures of a model with one class per image (``meddistill.evaluation.metrics.classification_metrics``).

    ``sensitivity`` and ``specificity`` are per class (K,), ``confusion_matrix`` is (K, K) with rows = truth,
    ``roc`` one-vs-rest curves and ``reliability`` the calibration bins.
    """

    acc: float
    balanced_acc: float
    auc: float
    f1: float
    ece: float
    sensitivity: list[float]
    specificity: list[float]
    confusion_matrix: list[list[int]]
    roc: list[dict]
    reliability: list[dict]


@dataclass
class FindingsMetrics:
    """Test figures of a model with several findings per image (``meddistill.evaluation.findings``).

    ``auc`` is the macro AUC over findings (the headline), ``acc`` the accuracy over every counted label (not the
    headline: predicting every finding absent scores high), ``sensitivity`` / ``specificity`` per finding at the
    threshold chosen on val, ``findings`` one row per finding (name, positives, prevalence, auc, ap, threshold,
    sensitivity, specificity, f1, ece), ``roc`` per-finding curves and ``reliability`` the pooled calibration bins.
    """

    acc: float
    balanced_acc: float
    auc: float
    micro_auc: float
    map: float
    f1: float
    ece: float
    sensitivity: list[float]
    specificity: list[float]
    findings: list[dict]
    roc: list[dict]
    reliability: list[dict]
    auc_ci: list[float] | None = None  # the macro AUC's 95% bootstrap interval, whole patients resampled


class Task:
    """The base of a task; subclasses set ``metrics_type`` and implement its methods."""

    name = ""
    metrics_type: type = ClassificationMetrics
    headline = "AUC"  # what the val score and the verdicts rank by, as the pages name it
    card = ("acc", "ACC")  # (metrics field, name): the figure the summary cards and short tables lead with
    short = ("ACC", "AUC")  # the plain-text table's names of ``acc`` and ``auc``
    note: str | None = None  # a line under the plain-text table, when its figures need one
    findings = False  # each output is a finding with its own probability (pick one to explain, filter by it)
    kind = "softmax"  # how logits become probabilities, as calibration reads it (softmax or sigmoid)

    def figure(self, test) -> str:
        """The lead figure of one model's test metrics, formatted (``card``)."""
        value = getattr(test, self.card[0])
        return _pct(value) if self.card[0] == "acc" else f"{value:.3f}"

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, K) logits -> (N, K) probabilities."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The label loss of a batch: (B, K) logits and (B,) or (B, K) labels -> scalar."""
        return label_loss(logits.float(), labels, weights)

    def class_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor:
        """The (K,) weights of the label loss that balance the training labels."""
        raise NotImplementedError

    def val_scores(self, labels: np.ndarray, probs: np.ndarray) -> tuple[float, float, float, float]:
        """(loss, accuracy, AUC, balanced accuracy) on a split, what the engine keeps the best epoch by."""
        raise NotImplementedError

    def agreement(self, probs_a: np.ndarray, probs_b: np.ndarray) -> float:
        """How often two models give the same answer: the same class, or the same call on each finding at 0.5."""
        return agreement(probs_a, probs_b)

    def columns(self, test, classes: list[str]) -> dict[str, str]:
        """The test figures of one model as the comparison tables show them (column name -> formatted value)."""
        raise NotImplementedError

    def metrics(self, labels: np.ndarray, probs: np.ndarray, names: list[str], val: tuple | None = None, groups=None):
        """Test metrics from the labels and (N, K) probabilities, as a ``metrics_type``; ``val`` is (labels, probs)
        of the val split, where operating points are chosen; ``groups`` the test images' patient keys (intervals
        resample whole patients)."""
        raise NotImplementedError


@TASKS.register("single_label", dims=2)
class SingleLabel(Task):
    """One class per 2D image: softmax over K classes, (class-weighted) cross-entropy, accuracy, AUC and
    calibration per ``classification_metrics``."""

    name = "single_label"
    metrics_type = ClassificationMetrics

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    def class_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor:
        return class_weights_for(labels, num_classes)

    def val_scores(self, labels: np.ndarray, probs: np.ndarray) -> tuple[float, float, float, float]:
        loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
        accuracy = float((probs.argmax(1) == labels).mean())
        return loss, accuracy, auc_score(labels, probs), balanced_accuracy(labels, probs)

    def metrics(
        self,
        labels: np.ndarray,
        probs: np.ndarray,
        names: list[str] | None = None,
        val: tuple | None = None,
        groups=None,
    ) -> ClassificationMetrics:
        return ClassificationMetrics(**classification_metrics(labels, probs))

    def columns(self, test: ClassificationMetrics, classes: list[str]) -> dict[str, str]:
        return {
            "ACC": _pct(test.acc),
            "balanced ACC": _pct(test.balanced_acc),
            "AUC": f"{test.auc:.3f}",
            "sensitivity": _per_class(test.sensitivity, classes),
            "specificity": _per_class(test.specificity, classes),
            "F1": f"{test.f1:.3f}",
            "ECE": f"{test.ece:.3f}",
        }


@TASKS.register("multi_label", dims=2)
class MultiLabel(Task):
    """Any number of findings per 2D image: a sigmoid per finding, binary cross-entropy with per-finding positive
    weights (NaN labels left out), macro AUC on val, and per-finding figures (``findings_metrics``) on test with
    the operating threshold of each finding chosen on val."""

    name = "multi_label"
    metrics_type = FindingsMetrics
    headline = "macro AUC"
    card = ("auc", "macro AUC")
    short = ("lblACC", "mAUC")
    findings = True
    kind = "sigmoid"
    note = "mAUC: macro AUC over findings (the headline); lblACC: accuracy over every label, not the headline."

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def class_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor:
        """Positive weights: negatives / positives of each finding among its counted train labels, capped at
        ``MAX_POS_WEIGHT`` (a finding with 2 positives in 700 would otherwise weigh 350 times)."""
        present = np.nansum(labels, axis=0)
        counted = (~np.isnan(labels)).sum(0)
        ratio = (counted - present) / np.maximum(present, 1)
        return torch.tensor(np.clip(ratio, 1.0, MAX_POS_WEIGHT), dtype=torch.float32)

    def agreement(self, probs_a: np.ndarray, probs_b: np.ndarray) -> float:
        return float(((probs_a >= 0.5) == (probs_b >= 0.5)).mean())

    def val_scores(self, labels: np.ndarray, probs: np.ndarray) -> tuple[float, float, float, float]:
        known = ~np.isnan(labels)
        y, p = labels[known], np.clip(probs[known], 1e-7, 1 - 1e-7)
        loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if len(y) else float("nan")
        acc = float(((p >= 0.5) == (y == 1)).mean()) if len(y) else float("nan")
        balanced = []  # per finding with both classes counted: (sensitivity + specificity) / 2 at 0.5
        for k in range(labels.shape[1]):
            yk, pk = labels[known[:, k], k], probs[known[:, k], k] >= 0.5
            if 0 < yk.sum() < len(yk):
                balanced.append((pk[yk == 1].mean() + (~pk[yk == 0]).mean()) / 2)
        return loss, acc, macro_auc(labels, probs), float(np.mean(balanced)) if balanced else float("nan")

    def metrics(
        self,
        labels: np.ndarray,
        probs: np.ndarray,
        names: list[str] | None = None,
        val: tuple | None = None,
        groups=None,
    ) -> FindingsMetrics:
        names = names or [str(k) for k in range(labels.shape[1])]
        thresholds = thresholds_on(*val) if val is not None else None
        figures = findings_metrics(labels, probs, names, thresholds)
        per_finding, macro = finding_auc_intervals(labels, probs, groups, INTERVAL_RESAMPLES, seed=0)
        for row, interval in zip(figures["findings"], per_finding):
            row["auc_ci"] = interval
        return FindingsMetrics(**figures, auc_ci=macro)

    def columns(self, test: FindingsMetrics, classes: list[str]) -> dict[str, str]:
        return {
            "macro AUC": f"{test.auc:.3f}",
            "micro AUC": f"{test.micro_auc:.3f}",
            "mAP": f"{test.map:.3f}",
            "balanced ACC (mean per finding)": _pct(test.balanced_acc),
            "macro F1": f"{test.f1:.3f}",
            "ECE (mean per finding)": f"{test.ece:.3f}",
            LABEL_ACC: _pct(test.acc),
        }


# Accuracy over every label, named so that no one reads it as the headline.
LABEL_ACC = "label ACC (not the headline: all-absent scores high)"


MAX_POS_WEIGHT = 20.0
INTERVAL_RESAMPLES = 2000  # bootstrap draws of the per-finding and macro AUC intervals (patients resampled)


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"


def _per_class(values: list[float], classes: list[str]) -> str:
    return ", ".join(f"{c}: {_pct(v)}" for c, v in zip(classes, values))


def task_for(name: str) -> Task:
    """The registered task ``name``; raises ``ValueError`` listing the valid ones."""
    return TASKS.create(name)


def available_tasks() -> list[str]:
    return TASKS.available()


__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "ClassificationMetrics",
    "FindingsMetrics",
    "MultiLabel",
    "SingleLabel",
    "Task",
    "available_tasks",
    "task_for",
]
