"""What a model is asked to predict, and so how its outputs are read, trained and scored.

A task owns the output activation (logits -> probabilities), the training loss, the test metrics and the
dataclass those metrics are read into in ``report.json`` (``ModelEntry.test``). The pipeline and the report ask the
run's task instead of assuming one label per image, so a new task (several findings per image, 3D volumes) is one
registration here. Registered tasks: ``single_label`` (one class per 2D image; softmax, cross-entropy).

Example:
    >>> task = task_for("single_label")
    >>> probs = task.activation(logits)           # (N, K) logits -> (N, K) probabilities
    >>> metrics = task.metrics(labels, probs)      # a ClassificationMetrics
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from meddistill.evaluation.metrics import classification_metrics
from meddistill.registry import Registry

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


class Task:
    """The base of a task; subclasses set ``metrics_type`` and implement the three methods."""

    name = ""
    metrics_type: type = ClassificationMetrics

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, K) logits -> (N, K) probabilities."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The label loss of a batch: (B, K) logits and (B,) labels -> scalar."""
        raise NotImplementedError

    def metrics(self, labels: np.ndarray, probs: np.ndarray):
        """Test metrics from (N,) labels and (N, K) probabilities, as a ``metrics_type``."""
        raise NotImplementedError


@TASKS.register("single_label", dims=2)
class SingleLabel(Task):
    """One class per 2D image: softmax over K classes, (class-weighted) cross-entropy, accuracy, AUC and
    calibration per ``classification_metrics``."""

    name = "single_label"
    metrics_type = ClassificationMetrics

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, weight=weights)

    def metrics(self, labels: np.ndarray, probs: np.ndarray) -> ClassificationMetrics:
        return ClassificationMetrics(**classification_metrics(labels, probs))


def task_for(name: str) -> Task:
    """The registered task ``name``; raises ``ValueError`` listing the valid ones."""
    return TASKS.create(name)


def available_tasks() -> list[str]:
    return TASKS.available()


__all__ = ["DEFAULT_TASK", "TASKS", "ClassificationMetrics", "SingleLabel", "Task", "available_tasks", "task_for"]
