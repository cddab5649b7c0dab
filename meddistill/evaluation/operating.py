"""Operating points: the threshold on a model's score chosen on val, and what it gives on test.

A case is called positive when its score (the calibrated probability of the positive class, or of one class against
the rest, or of one finding) is at or above the threshold. Three rules choose the threshold on val:

* ``youden``: the one maximising Youden's J = sensitivity + specificity - 1 (Youden 1950);
* ``sensitivity``: the highest threshold whose val sensitivity reaches the target (the most specific such point);
* ``specificity``: the lowest threshold whose val specificity reaches the target (the most sensitive such point).

Test sensitivity, specificity, PPV and NPV at that threshold come with 95 % percentile bootstrap intervals over the
test images (whole patients when their keys are known).

Example:
    >>> t = choose_threshold(val_y, val_score, "sensitivity", 0.95)
    >>> at_threshold(test_y, test_score, t)["sensitivity"]
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_curve

RULES = ("youden", "sensitivity", "specificity")
FIGURES = ("sensitivity", "specificity", "ppv", "npv")
LEVEL = 0.95


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold of maximal Youden's J on (N,) 0/1 ``labels`` and scores (the highest on a tie)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    finite = np.isfinite(thresholds)  # scikit-learn's first threshold is +inf (nothing called positive)
    j = (tpr - fpr)[finite]
    return float(thresholds[finite][int(np.argmax(j))])


def sensitivity_threshold(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The highest threshold at which at least ``target`` of the positives score at or above it."""
    positives = np.sort(scores[labels == 1])[::-1]
    needed = max(1, math.ceil(target * len(positives) - 1e-9))
    return float(positives[min(needed, len(positives)) - 1])


def specificity_threshold(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The lowest threshold below which at least ``target`` of the negatives score (strictly)."""
    negatives = np.sort(scores[labels == 0])
    needed = max(1, math.ceil(target * len(negatives) - 1e-9))
    return float(np.nextafter(negatives[min(needed, len(negatives)) - 1], np.inf))


def choose_threshold(labels: np.ndarray, scores: np.ndarray, rule: str, target: float | None = None) -> float:
    """The threshold ``rule`` (``RULES``) chooses on val; ``target`` is the sensitivity or specificity sought."""
    if rule == "youden":
        return youden_threshold(labels, scores)
    if rule == "sensitivity":
        return sensitivity_threshold(labels, scores, target)
    if rule == "specificity":
        return specificity_threshold(labels, scores, target)
    raise ValueError(f"unknown operating rule {rule!r}; choose one of: {', '.join(RULES)}")


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.maximum(b, 1), np.nan)


def _counts(labels: np.ndarray, called: np.ndarray, axis: int = -1) -> dict[str, np.ndarray]:
    tp = (called & (labels == 1)).sum(axis)
    fp = (called & (labels == 0)).sum(axis)
    fn = (~called & (labels == 1)).sum(axis)
    tn = (~called & (labels == 0)).sum(axis)
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def at_threshold(
    labels: np.ndarray, scores: np.ndarray, threshold: float, draws: list[np.ndarray] | None = None
) -> dict:
    """Sensitivity, specificity, PPV, NPV (and tp, fp, fn, tn) of calling ``scores >= threshold`` positive.

    Args:
        labels: (N,) 0/1 truth.
        scores: (N,) scores.
        threshold: The operating threshold.
        draws: Bootstrap resamples of the indices; with them each figure gets ``<figure>_ci`` [low, high].
    """
    called = scores >= threshold
    found = _counts(labels, called)
    out = {k: (float(v) if k in FIGURES else int(v)) for k, v in found.items()}
    if draws:
        tail = (1 - LEVEL) / 2 * 100
        if len({len(d) for d in draws}) == 1:  # image resamples: one (R, N) array at once
            rows = np.stack(draws)
            stacked = _counts(labels[rows], called[rows], axis=1)
            per = None
        else:  # whole patients: resamples of different sizes
            per = [_counts(labels[d], called[d]) for d in draws]
        for figure in FIGURES:
            values = np.asarray(stacked[figure] if per is None else [p[figure] for p in per], dtype=float)
            values = values[np.isfinite(values)]
            out[f"{figure}_ci"] = (
                [float(x) for x in np.percentile(values, [tail, 100 - tail])] if len(values) else [math.nan] * 2
            )
    return out


def image_draws(n: int, resamples: int, seed: int) -> list[np.ndarray]:
    """Bootstrap resamples of ``n`` image indices (with replacement)."""
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, n, size=(resamples, n)))
