"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) and the Brier score.

One temperature ``T > 0`` divides a model's logits before the output activation; it is fitted on the val split by
minimising the negative log-likelihood, so the argmax (and, for two classes or one finding, the ranking) is kept and
only the confidence changes. A softmax model's logits are recovered from its probabilities as ``log p`` (softmax is
unchanged by a constant per row), a sigmoid model's as ``log(p / (1 - p))``, so a temperature can be fitted and
applied to stored probabilities. Several findings per image (sigmoid) get one temperature per finding.

Example:
    >>> t = fit_temperature(val_labels, val_probs, "softmax")   # [1.84]
    >>> calibrated = apply_temperature(test_probs, t, "softmax")
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

EPS = 1e-7
LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))  # the temperatures searched: 0.05 to 20


def logits_of(probs: np.ndarray, kind: str) -> np.ndarray:
    """Logits (up to a per-row constant for softmax) of (N, K) probabilities; ``kind`` is softmax or sigmoid."""
    p = np.clip(probs.astype(np.float64), EPS, 1 - EPS)
    return np.log(p) if kind == "softmax" else np.log(p) - np.log1p(-p)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature, kind: str) -> np.ndarray:
    """(N, K) probabilities recomputed from ``logits / T``; ``temperature`` is one value or, for sigmoid, one per
    column (K,)."""
    t = np.asarray(temperature, dtype=np.float64)
    if np.all(t == 1.0):  # no temperature: the probabilities as they are
        return probs.astype(np.float32)
    z = logits_of(probs, kind) / t
    out = _softmax(z) if kind == "softmax" else 1 / (1 + np.exp(-z))
    return out.astype(np.float32)


def nll(labels: np.ndarray, probs: np.ndarray, kind: str) -> float:
    """Mean negative log-likelihood: of the true class (softmax), or per counted finding label (sigmoid)."""
    p = np.clip(probs.astype(np.float64), EPS, 1 - EPS)
    if kind == "softmax":
        return float(-np.log(p[np.arange(len(labels)), labels]).mean())
    known = ~np.isnan(labels)
    y, q = labels[known], p[known]
    return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean()) if len(y) else float("nan")


def _fit_one(objective) -> float:
    found = minimize_scalar(objective, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-5})
    return float(np.exp(found.x))


def fit_temperature(labels: np.ndarray, probs: np.ndarray, kind: str) -> list[float]:
    """The temperature(s) minimising the NLL of ``labels`` under ``probs`` tempered.

    Args:
        labels: (N,) classes (softmax) or (N, K) findings with NaN for a label left out (sigmoid).
        probs: (N, K) probabilities of the same images.
        kind: ``softmax`` (one temperature) or ``sigmoid`` (one per finding; 1.0 for a finding whose val labels
            are all one value, where no temperature can be fitted).

    Returns:
        ``[T]`` or ``[T_1, ..., T_K]``.
    """
    z = logits_of(probs, kind)
    if kind == "softmax":
        rows = np.arange(len(labels))

        def objective(log_t: float) -> float:
            scaled = z / np.exp(log_t)
            scaled = scaled - scaled.max(1, keepdims=True)
            return float((np.log(np.exp(scaled).sum(1)) - scaled[rows, labels]).mean())

        return [_fit_one(objective)]
    temperatures = []
    for k in range(z.shape[1]):
        known = ~np.isnan(labels[:, k])
        y, zk = labels[known, k], z[known, k]
        if len(np.unique(y)) < 2:
            temperatures.append(1.0)
            continue

        def objective(log_t: float, y=y, zk=zk) -> float:
            s = zk / np.exp(log_t)
            return float((np.logaddexp(0, s) - y * s).mean())  # -[y log sig(s) + (1-y) log(1-sig(s))]

        temperatures.append(_fit_one(objective))
    return temperatures


def fit_temperature_checked(labels: np.ndarray, probs: np.ndarray, kind: str) -> tuple[list[float], list[bool]]:
    """The temperature(s) of ``fit_temperature``, each kept only when the fit found an optimum inside the search
    (0.05 < T < 20); a fit that runs to a bound is degenerate (at 0.05 it sharpens every probability to 0 or 1, at
    20 it flattens them to the class frequencies), and the raw probabilities are kept instead (T = 1).

    Returns:
        (temperatures, kept): one entry per temperature, ``kept[k]`` False where 1.0 was used instead.
    """
    full = fit_temperature(labels, probs, kind)
    low, high = np.exp(LOG_T_BOUNDS)
    kept = [bool(low * 1.01 < t < high * 0.99) for t in full]
    return [t if ok else 1.0 for t, ok in zip(full, kept)], kept


def brier_score(labels: np.ndarray, probs: np.ndarray, kind: str) -> float:
    """Brier score (Brier 1950), lower is better: two classes, ``mean (p_1 - y)^2``; more classes, ``mean over
    images of sum_k (p_k - [y = k])^2``; findings, ``mean (p - y)^2`` over every counted label."""
    if kind == "sigmoid":
        known = ~np.isnan(labels)
        return float(((probs[known] - labels[known]) ** 2).mean()) if known.any() else float("nan")
    onehot = np.eye(probs.shape[1])[labels]
    if probs.shape[1] == 2:
        return float(((probs[:, 1] - onehot[:, 1]) ** 2).mean())
    return float(((probs - onehot) ** 2).sum(1).mean())
