"""Which cases should still go to a human: risk-coverage (Geifman and El-Yaniv, "Selective Classification for Deep
Neural Networks", NeurIPS 2017).

The model keeps the cases it is most confident on (the highest calibrated probability of its predicted class) and
refers the rest. Coverage is the fraction kept; selective accuracy the accuracy on the kept cases. Ties in confidence
keep the earlier case first (a stable sort), so the figures are reproducible.

Example:
    >>> table = referral_table(correct, confidence)          # refer 5 / 10 / 20 %
    >>> coverage_reaching(correct, confidence, 0.862)         # the largest coverage with accuracy >= 0.862
"""

from __future__ import annotations

import numpy as np

REFER = (0.05, 0.10, 0.20)  # the fractions referred in the table
CURVE_POINTS = 101


def _ranked(correct: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Accuracy on the ``k`` most confident cases, k = 1..N: (N,)."""
    order = np.argsort(-confidence, kind="stable")
    return np.cumsum(correct[order]) / np.arange(1, len(order) + 1)


def kept(n: int, refer: float) -> int:
    """Cases kept when the least confident ``refer`` of ``n`` are referred (at least one)."""
    return max(1, n - int(round(refer * n)))


def risk_coverage(correct: np.ndarray, confidence: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """Selective accuracy against coverage, at ``points`` coverages from 1/N to 1.

    Args:
        correct: (N,) bool, the model's answer is right.
        confidence: (N,) the calibrated probability of the answer.

    Returns:
        ``{"coverage": [...], "accuracy": [...]}`` (increasing coverage).
    """
    accuracy = _ranked(correct.astype(float), confidence)
    n = len(correct)
    ks = np.unique(np.clip(np.round(np.linspace(0, 1, points) * n).astype(int), 1, n))
    return {"coverage": (ks / n).round(5).tolist(), "accuracy": accuracy[ks - 1].round(5).tolist()}


def referral_table(correct: np.ndarray, confidence: np.ndarray, refer: tuple[float, ...] = REFER) -> list[dict]:
    """Per referred fraction (0 first): cases kept, coverage and accuracy on the kept cases."""
    accuracy = _ranked(correct.astype(float), confidence)
    n = len(correct)
    rows = []
    for fraction in (0.0, *refer):
        k = kept(n, fraction)
        rows.append({"refer": fraction, "kept": k, "coverage": k / n, "accuracy": float(accuracy[k - 1])})
    return rows


def selective_metric(metric, labels: np.ndarray, probs: np.ndarray, confidence: np.ndarray, points: int = 21) -> dict:
    """A metric (e.g. the macro AUC over findings) on the most confident cases against coverage, for outputs that
    are not right or wrong as a whole (several findings per image).

    Args:
        metric: ``metric(labels, probs) -> float`` (NaN when undefined on a subset).
        labels, probs: (N, K) of the test images.
        confidence: (N,) how sure the model is of each image.
        points: Coverages from 1/N to 1.

    Returns:
        ``{"coverage": [...], "value": [...]}`` and ``table``: per referred fraction (``REFER``, 0 first) the cases
        kept and the metric on them.
    """
    order = np.argsort(-confidence, kind="stable")
    n = len(order)
    ks = np.unique(np.clip(np.round(np.linspace(0, 1, points) * n).astype(int), 1, n))
    curve = {
        "coverage": (ks / n).round(5).tolist(),
        "value": [float(metric(labels[order[:k]], probs[order[:k]])) for k in ks],
    }
    table = []
    for fraction in (0.0, *REFER):
        k = kept(n, fraction)
        table.append(
            {
                "refer": fraction,
                "kept": k,
                "coverage": k / n,
                "value": float(metric(labels[order[:k]], probs[order[:k]])),
            }
        )
    return {"curve": curve, "table": table}


def coverage_reaching(correct: np.ndarray, confidence: np.ndarray, target: float) -> float | None:
    """The largest coverage whose selective accuracy is at or above ``target``, or None if no coverage reaches it."""
    accuracy = _ranked(correct.astype(float), confidence)
    reached = np.flatnonzero(accuracy >= target - 1e-12)
    return float((reached.max() + 1) / len(correct)) if len(reached) else None
