"""Metrics a radiologist reads for several findings per image: per finding and over all of them.

Labels are (N, K) with 1 (present), 0 (absent) and NaN (uncertain, left out); probabilities are (N, K) sigmoid
outputs. A finding's figures use only the images whose label for it counts. Accuracy over all labels is reported
but is not the headline: on ChestX-ray14 predicting every finding absent already scores about 0.95.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from meddistill.evaluation.metrics import binary_auc

DEFAULT_THRESHOLD = 0.5  # when val cannot choose one (a finding with no positive or no negative val image)


def _known(labels: np.ndarray, k: int) -> np.ndarray:
    return ~np.isnan(labels[:, k])


def _has_both(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def finding_auc(labels: np.ndarray, probs: np.ndarray, k: int) -> float:
    """ROC AUC of finding ``k`` over its counted images; NaN without both a positive and a negative one."""
    known = _known(labels, k)
    y = labels[known, k]
    return float(binary_auc(y == 1, probs[known, k])) if _has_both(y) else float("nan")  # = skm.roc_auc_score


def macro_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """The mean ROC AUC over the findings that have both classes among the counted images (NaN if none has)."""
    aucs = [finding_auc(labels, probs, k) for k in range(labels.shape[1])]
    finite = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(finite)) if finite else float("nan")


def thresholds_on(labels: np.ndarray, probs: np.ndarray) -> list[float]:
    """Per finding, the threshold of highest Youden's J (sensitivity + specificity - 1) on these (val) images;
    ``DEFAULT_THRESHOLD`` for a finding val cannot decide."""
    out = []
    for k in range(labels.shape[1]):
        known = _known(labels, k)
        y = labels[known, k]
        if not _has_both(y):
            out.append(DEFAULT_THRESHOLD)
            continue
        fpr, tpr, cut = skm.roc_curve(y, probs[known, k])
        best = int(np.argmax(tpr - fpr))
        out.append(float(min(cut[best], 1.0)))
    return out


def _binary_ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE of one finding's probabilities: sum_b |B|/N * |positive rate(B) - mean probability(B)|."""
    if not len(y):
        return float("nan")
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    return float(sum((which == b).mean() * abs(y[which == b].mean() - p[which == b].mean()) for b in np.unique(which)))


def findings_metrics(
    labels: np.ndarray, probs: np.ndarray, names: list[str], thresholds: list[float] | None = None
) -> dict:
    """All test figures of one model for several findings.

    Args:
        labels: (N, K) test labels (1, 0, NaN).
        probs: (N, K) test probabilities.
        names: The K finding names.
        thresholds: Per finding, the operating threshold chosen on val (``thresholds_on``); 0.5 when None.

    Returns:
        ``acc`` (over every counted label, not the headline), ``balanced_acc`` (mean over findings of
        (sensitivity + specificity) / 2), ``auc`` (macro), ``micro_auc``, ``map`` (mean average precision), ``f1``
        (macro), ``ece`` (mean over findings), ``sensitivity`` / ``specificity`` per finding at its threshold,
        ``findings`` (one dict per finding: name, positives, prevalence, auc, ap, threshold, sensitivity,
        specificity, ece), ``roc`` (per finding: fpr, tpr) and pooled ``reliability`` bins.
    """
    thresholds = thresholds or [DEFAULT_THRESHOLD] * labels.shape[1]
    rows, roc, correct, counted = [], [], 0, 0
    for k, name in enumerate(names):
        known = _known(labels, k)
        y, p = labels[known, k], probs[known, k]
        predicted = p >= thresholds[k]
        tp, fn = int((predicted & (y == 1)).sum()), int((~predicted & (y == 1)).sum())
        tn, fp = int((~predicted & (y == 0)).sum()), int((predicted & (y == 0)).sum())
        both = _has_both(y)
        rows.append(
            {
                "name": name,
                "positives": int((y == 1).sum()),
                "prevalence": float((y == 1).mean()) if len(y) else float("nan"),
                "auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
                "ap": float(skm.average_precision_score(y, p)) if both else float("nan"),
                "threshold": float(thresholds[k]),
                "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
                "specificity": tn / (tn + fp) if tn + fp else float("nan"),
                "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
                "ece": _binary_ece(y, p),
            }
        )
        if both:
            fpr, tpr, _ = skm.roc_curve(y, p)
            roc.append({"class": k, "fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()})
        correct, counted = correct + tp + tn, counted + len(y)
    known = ~np.isnan(labels)
    flat_y, flat_p = labels[known], probs[known]
    scored = [r for r in rows if np.isfinite(r["auc"])]

    def mean(key: str, among: list[dict]) -> float:
        values = [r[key] for r in among if np.isfinite(r[key])]
        return float(np.mean(values)) if values else float("nan")

    balanced = [(r["sensitivity"] + r["specificity"]) / 2 for r in scored]
    return {
        "acc": correct / counted if counted else float("nan"),
        "balanced_acc": float(np.mean(balanced)) if balanced else float("nan"),
        "auc": mean("auc", scored),
        "micro_auc": float(skm.roc_auc_score(flat_y, flat_p)) if _has_both(flat_y) else float("nan"),
        "map": mean("ap", scored),
        "f1": mean("f1", scored),
        "ece": mean("ece", rows),
        "sensitivity": [r["sensitivity"] for r in rows],
        "specificity": [r["specificity"] for r in rows],
        "findings": rows,
        "roc": roc,
        "reliability": _pooled_reliability(flat_y, flat_p),
    }


def _pooled_reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Reliability bins over every counted label: mean probability against the rate of present findings."""
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (p > low) & (p <= high) if low > 0 else (p >= low) & (p <= high)
        if mask.any():
            out.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "confidence": float(p[mask].mean()),
                    "accuracy": float(y[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return out


def patient_draws(groups: list | None, n: int, resamples: int, seed: int) -> list[np.ndarray]:
    """Bootstrap resamples of image indices, whole patients at a time (every image of a drawn patient; images
    without a patient key count as their own patient)."""
    rng = np.random.default_rng(seed)
    keys = [g if g is not None else f"\0{i}" for i, g in enumerate(groups)] if groups is not None else list(range(n))
    _, codes = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    members = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    draws = []
    for _ in range(resamples):
        picked = rng.integers(0, len(members), size=len(members))
        draws.append(np.concatenate([members[c] for c in picked]))
    return draws


def macro_auc_interval(
    labels: np.ndarray, probs: np.ndarray, groups: list | None, resamples: int, seed: int, level: float = 0.95
) -> tuple[float, list[float]]:
    """A model's macro AUC and its bootstrap interval, patients resampled together."""
    values = np.array([macro_auc(labels[d], probs[d]) for d in patient_draws(groups, len(labels), resamples, seed)])
    finite = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    ci = [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [float("nan")] * 2
    return macro_auc(labels, probs), ci


def paired_macro_auc(
    labels: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    groups: list | None,
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict:
    """The paired verdict's figures for several findings: macro AUC ``a - b`` with its bootstrap interval (patients
    resampled together); the ACC entries are NaN, since accuracy is not the headline here."""
    diffs = []
    for d in patient_draws(groups, len(labels), resamples, seed):
        diffs.append(macro_auc(labels[d], probs_a[d]) - macro_auc(labels[d], probs_b[d]))
    diffs = np.array(diffs)
    finite = diffs[np.isfinite(diffs)]
    tail = (1 - level) / 2 * 100
    nan = float("nan")
    return {
        "n": int(len(labels)),
        "resamples": int(resamples),
        "acc_diff": nan,
        "acc_ci": [nan, nan],
        "auc_diff": macro_auc(labels, probs_a) - macro_auc(labels, probs_b),
        "auc_ci": [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [nan, nan],
        "resampled": "patients" if groups is not None else "images",
    }


def finding_auc_intervals(
    labels: np.ndarray, probs: np.ndarray, groups: list | None, resamples: int, seed: int, level: float = 0.95
) -> tuple[list[list[float]], list[float]]:
    """Bootstrap intervals of each finding's AUC and of the macro AUC, whole patients resampled together (the same
    draws for every finding). Returns (per finding [low, high], macro [low, high]); NaN where undefined."""
    k = labels.shape[1]
    values = np.array(
        [
            [finding_auc(labels[d], probs[d], j) for j in range(k)]
            for d in patient_draws(groups, len(labels), resamples, seed)
        ]
    )
    tail = (1 - level) / 2 * 100

    def interval(column: np.ndarray) -> list[float]:
        finite = column[np.isfinite(column)]
        return [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [np.nan, np.nan]

    scored = np.isfinite(values)
    macro = np.where(scored.any(1), np.nansum(values, 1) / np.maximum(scored.sum(1), 1), np.nan)
    return [interval(values[:, j]) for j in range(k)], interval(macro)
