"""Test-set metrics (scikit-learn), calibration and agreement, from labels and probabilities.

ROC AUC is computed here by the Mann-Whitney rank sum rather than by ``sklearn.metrics.roc_auc_score``: the two
agree to rounding (ties share their average rank, which is what the trapezoidal area under scikit-learn's curve
gives), but the bootstrap intervals score thousands of resamples, and scikit-learn's input checks cost about 12 ms
a call: 24 s per paired comparison of an 8-class run's 2,000 resamples before this, 2.4 s now
(``benchmarks/auc_speed.py``, docs/benchmarks.md section 10).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

CHUNK_VALUES = 4_000_000  # resampled AUCs are ranked this many values at a time (about 32 MB per array)


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` against 0/1 ``positive`` along the last axis ((..., N) each; NaN where one class only).

    Returns:
        (...,) AUCs (a 0-d array for (N,) inputs).
    """
    positive = np.asarray(positive, dtype=float)
    ranks = rankdata(scores, axis=-1)
    n_pos = positive.sum(-1)
    n_neg = positive.shape[-1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * positive).sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _class_aucs(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(..., N) classes and (..., N, K) probabilities to the (...,) AUC of ``auc_score`` (NaN where undefined)."""
    if probs.shape[-1] == 2:
        return binary_auc(labels == 1, probs[..., 1])
    return np.mean([binary_auc(labels == k, probs[..., k]) for k in range(probs.shape[-1])], axis=0)


def auc_score(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC: binary on the positive class, one-vs-rest macro for several classes; NaN if undefined (a class of
    ``probs`` absent from ``labels``). Equal to scikit-learn's ``roc_auc_score`` (``multi_class="ovr"``, macro)."""
    if len(labels) == 0:
        return float("nan")
    return float(_class_aucs(np.asarray(labels), np.asarray(probs)))


def resampled_auc(labels: np.ndarray, probs: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``auc_score`` on each resample of the images, all at once.

    Args:
        labels: (N,) classes.
        probs: (N, K) probabilities.
        draws: (R, M) image indices, one resample per row.

    Returns:
        (R,) AUCs (NaN for a resample that lacks a class).
    """
    draws = np.asarray(draws)
    rows = max(1, CHUNK_VALUES // max(1, draws.shape[1] * probs.shape[1]))
    parts = [_class_aucs(labels[chunk], probs[chunk]) for chunk in np.array_split(draws, range(rows, len(draws), rows))]
    return np.concatenate(parts) if parts else np.empty(0)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width confidence bins: sum_b |B|/N * |acc(B) - conf(B)| (Guo et al., 2017)."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> list[dict]:
    """Per-bin confidence, accuracy and count, for a reliability diagram."""
    confidence, correct = probs.max(1), (probs.argmax(1) == labels)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            rows.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return rows


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """All test metrics for one model.

    Args:
        labels: (N,) true classes.
        probs: (N, K) predicted probabilities.

    Returns:
        acc, balanced_acc, auc, f1 (binary: positive class 1; else macro), ece,
        per-class sensitivity and specificity, confusion_matrix (rows = truth),
        roc (per class one-vs-rest: fpr, tpr) and reliability bins.
    """
    k = probs.shape[1]
    predicted = probs.argmax(1)
    matrix = skm.confusion_matrix(labels, predicted, labels=list(range(k)))
    total = matrix.sum()
    sensitivity, specificity = [], []
    for c in range(k):
        tp = matrix[c, c]
        fn = matrix[c].sum() - tp
        fp = matrix[:, c].sum() - tp
        tn = total - tp - fn - fp
        sensitivity.append(float(tp / (tp + fn)) if tp + fn else float("nan"))
        specificity.append(float(tn / (tn + fp)) if tn + fp else float("nan"))
    roc = []
    for c in range(k if k > 2 else 1):
        positive = 1 if k == 2 else c
        if len(np.unique(labels == positive)) == 2:
            fpr, tpr, _ = skm.roc_curve(labels == positive, probs[:, positive])
            roc.append({"class": positive, "fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()})
    return {
        "acc": float(skm.accuracy_score(labels, predicted)),
        "balanced_acc": float(skm.balanced_accuracy_score(labels, predicted)),
        "auc": auc_score(labels, probs),
        "f1": float(skm.f1_score(labels, predicted, average="binary" if k == 2 else "macro", zero_division=0)),
        "ece": expected_calibration_error(labels, probs),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "confusion_matrix": matrix.tolist(),
        "roc": roc,
        "reliability": reliability(labels, probs),
    }


def agreement(probs_a: np.ndarray, probs_b: np.ndarray) -> float:
    """Fraction of images on which two models predict the same class."""
    return float((probs_a.argmax(1) == probs_b.argmax(1)).mean())
