"""Does it work for everyone: figures per value of a labels-CSV column (sex, age, view position, site).

Each test image falls in the group of its value: an empty cell in ``(missing)``; a numeric column with more than
``NUMERIC_LEVELS`` distinct values in its quartile bands. Groups with fewer than ``MIN_GROUP`` images are pooled into
one ``other`` group (and said so). Per group: images, AUC with a 95 % bootstrap interval, and (two classes)
sensitivity and specificity at the run's operating threshold with intervals. A group whose AUC is significantly
below the AUC on the other images (the 95 % interval of the difference, group and rest resampled independently,
lies below zero) is flagged.

Example:
    >>> found = subgroup_figures(values, labels, probs, auc_fn, operating=(1, 0.42))
    >>> found["flagged"]   # ["AUC for View Position = AP is 0.712 against 0.834 on the rest ..."]
"""

from __future__ import annotations

import math

import numpy as np

from meddistill.evaluation.operating import LEVEL, at_threshold, image_draws

MIN_GROUP = 30
NUMERIC_LEVELS = 8
RESAMPLES = 500
MISSING = "(missing)"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def assign_groups(values: list[str], min_size: int = MIN_GROUP) -> tuple[np.ndarray, list[str]]:
    """(N,) group name per image, and the sentences saying how groups were formed (bands, pooling)."""
    cells = [(v or "").strip() for v in values]
    notes = []
    numbers = [_number(v) for v in cells if v]
    if numbers and all(x is not None for x in numbers) and len(set(numbers)) > NUMERIC_LEVELS:
        edges = np.unique(np.percentile(numbers, [0, 25, 50, 75, 100]))
        bands = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]
        groups = []
        for v in cells:
            if not v:
                groups.append(MISSING)
                continue
            i = min(int(np.searchsorted(edges, float(v), side="right")) - 1, len(bands) - 1)
            groups.append(bands[max(i, 0)])
        notes.append(f"numeric values in quartile bands ({', '.join(bands)})")
    else:
        groups = [v or MISSING for v in cells]
    names, counts = np.unique(groups, return_counts=True)
    small = [str(n) for n, c in zip(names, counts) if c < min_size]
    if len(small) == len(names):
        notes.append(f"every group has under {min_size} images; their figures are uncertain")
    elif len(small) > 1 or (small and len(names) > 2):
        pooled = f"other ({', '.join(small)})" if len(small) <= 4 else f"other ({len(small)} groups)"
        groups = [pooled if g in small else g for g in groups]
        notes.append(f"{len(small)} groups under {min_size} images pooled into '{pooled}'")
    elif small:
        notes.append(f"group '{small[0]}' has under {min_size} images; its figures are uncertain")
    return np.asarray(groups, dtype=object), notes


def _interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    tail = (1 - LEVEL) / 2 * 100
    return [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [math.nan] * 2


def subgroup_figures(
    values: list[str],
    labels: np.ndarray,
    probs: np.ndarray,
    auc_fn,
    operating: tuple[int, float] | None = None,
    column: str = "",
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> dict:
    """Per-group figures of one model on the test images.

    Args:
        values: (N,) the column's value for each test image.
        labels: (N,) classes or (N, K) findings.
        probs: (N, K) calibrated probabilities.
        auc_fn: ``auc_fn(labels, probs) -> float``, the task's AUC (NaN when undefined).
        operating: (positive class, threshold) for two classes: sensitivity and specificity are given at it.
        column: The column's name, for the sentences.
        seed: Seed of the resampling.
        resamples: Bootstrap resamples per group.

    Returns:
        ``{"column", "notes": [...], "rows": [{"group", "n", "auc", "auc_ci", "rest_auc", "diff_ci", "below",
        ["sensitivity", "sensitivity_ci", "specificity", "specificity_ci"]}], "flagged": [sentences]}``.
    """
    groups, notes = assign_groups(values)
    rows, flagged = [], []
    for index, name in enumerate(sorted(set(groups))):
        inside = np.flatnonzero(groups == name)
        rest = np.flatnonzero(groups != name)
        draws_in = image_draws(len(inside), resamples, seed + index)
        auc_in = np.array([auc_fn(labels[inside[d]], probs[inside[d]]) for d in draws_in])
        row = {"group": str(name), "n": int(len(inside)), "auc": float(auc_fn(labels[inside], probs[inside]))}
        row["auc_ci"] = _interval(auc_in)
        if len(rest):
            draws_rest = image_draws(len(rest), resamples, seed + 1000 + index)
            auc_rest = np.array([auc_fn(labels[rest[d]], probs[rest[d]]) for d in draws_rest])
            row["rest_auc"] = float(auc_fn(labels[rest], probs[rest]))
            row["diff_ci"] = _interval(auc_in - auc_rest)
            row["below"] = bool(np.isfinite(row["diff_ci"]).all() and row["diff_ci"][1] < 0)
            if row["below"]:
                low, high = row["diff_ci"]
                flagged.append(
                    f"AUC for {column} = {name} is {row['auc']:.3f} against {row['rest_auc']:.3f} on the other images "
                    f"(difference 95% CI {low:+.3f} to {high:+.3f}, {len(inside)} images): significantly lower."
                )
        if operating is not None:
            positive, threshold = operating
            y = (labels[inside] == positive).astype(int)
            found = at_threshold(y, probs[inside, positive], threshold, draws_in)
            row["positives"] = int(y.sum())
            for figure in ("sensitivity", "specificity"):
                row[figure], row[f"{figure}_ci"] = found[figure], found[f"{figure}_ci"]
        rows.append(row)
    return {"column": column, "notes": notes, "rows": rows, "flagged": flagged}
