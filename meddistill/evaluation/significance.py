"""Did distillation help? Paired bootstrap confidence intervals for the ACC and AUC difference of two models
on the same test images, and the one-sentence verdict the report and the Compare page show.

The test images are resampled with replacement ``resamples`` times (seeded); both models are scored on each
resample, so the interval reflects that they were tested on the same images (paired). The 95 % interval is the
2.5th to 97.5th percentile of the differences (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993).
"""

from __future__ import annotations

import numpy as np

from meddistill.evaluation.findings import paired_macro_auc
from meddistill.evaluation.metrics import auc_score, resampled_auc

RESAMPLES = 2000
LEVEL = 0.95


def paired_bootstrap(
    labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """Differences ``a - b`` in ACC and AUC with their 95 % paired bootstrap intervals.

    Args:
        labels: (N,) true classes of the test images.
        probs_a: (N, K) probabilities of model a.
        probs_b: (N, K) probabilities of model b on the same images.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``{"acc_diff", "acc_ci": [low, high], "auc_diff", "auc_ci": [low, high], "n", "resamples"}``; ACC in
        fractions (0.031 = 3.1 points); AUC entries NaN when AUC is undefined on these labels.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    correct_a, correct_b = probs_a.argmax(1) == labels, probs_b.argmax(1) == labels
    draws = rng.integers(0, n, size=(resamples, n))
    acc = correct_a[draws].mean(1) - correct_b[draws].mean(1)
    auc = resampled_auc(labels, probs_a, draws) - resampled_auc(labels, probs_b, draws)
    tail = (1 - LEVEL) / 2 * 100
    out = {"n": int(n), "resamples": int(resamples)}
    out["acc_diff"] = float(correct_a.mean() - correct_b.mean())
    out["acc_ci"] = [float(x) for x in np.percentile(acc, [tail, 100 - tail])]
    out["auc_diff"] = float(auc_score(labels, probs_a) - auc_score(labels, probs_b))
    finite = auc[np.isfinite(auc)]
    out["auc_ci"] = [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [np.nan] * 2
    return out


def bootstrap_interval(labels: np.ndarray, probs: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """A model's test ACC and AUC with their 95 % bootstrap (percentile) intervals over the test images.

    Returns:
        ``{"acc", "acc_ci": [low, high], "auc", "auc_ci": [low, high], "n", "resamples"}``.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(labels), size=(resamples, len(labels)))
    correct = probs.argmax(1) == labels
    auc = resampled_auc(labels, probs, draws)
    tail = (1 - LEVEL) / 2 * 100
    finite = auc[np.isfinite(auc)]
    return {
        "n": int(len(labels)),
        "resamples": int(resamples),
        "acc": float(correct.mean()),
        "acc_ci": [float(x) for x in np.percentile(correct[draws].mean(1), [tail, 100 - tail])],
        "auc": float(auc_score(labels, probs)),
        "auc_ci": [float(x) for x in np.percentile(finite, [tail, 100 - tail])] if len(finite) else [np.nan] * 2,
    }


def _significant(ci: list[float]) -> bool:
    return bool(np.isfinite(ci).all()) and (ci[0] > 0 or ci[1] < 0)


GAINED, LOST, NO_DIFFERENCE = "gained", "lost", "no difference"  # a verdict's direction, as report.json spells it


def direction(diff: dict) -> str:
    """``GAINED`` or ``LOST`` when the ACC interval (else the AUC interval) excludes zero, else ``NO_DIFFERENCE``."""
    if _significant(diff["acc_ci"]):
        return GAINED if diff["acc_diff"] > 0 else LOST
    if _significant(diff["auc_ci"]):
        return GAINED if diff["auc_diff"] > 0 else LOST
    return NO_DIFFERENCE


def sentence(diff: dict, a: str, b: str) -> str:
    """'the distilled student gained +3.1 ACC points over the scratch student (95% CI +0.8 to +5.4) ...' or
    'no significant difference between ... (ACC +0.6 points, 95% CI -1.8 to +3.0) ...'."""
    auc = f"AUC {diff['auc_diff']:+.3f} (95% CI {diff['auc_ci'][0]:+.3f} to {diff['auc_ci'][1]:+.3f})"
    if np.isnan(diff["acc_diff"]):  # several findings per image: the verdict is on the macro AUC alone
        figures = f"macro {auc}, {diff.get('resampled', 'images')} resampled"
    else:
        low, high = (100 * x for x in diff["acc_ci"])
        figures = f"{100 * diff['acc_diff']:+.1f} ACC points (95% CI {low:+.1f} to {high:+.1f}), {auc}"
    verb = direction(diff)
    if verb != NO_DIFFERENCE:
        return f"The {a} {verb} against the {b}: {figures}."
    return f"No significant difference between the {a} and the {b} on {diff['n']} test images: {figures}."


def verdicts(
    labels: np.ndarray, probs: dict[str, np.ndarray], val: dict[str, dict], seed: int = 0, groups: list | None = None
) -> dict:
    """The report's verdicts: distilled against scratch student, and distilled student against teacher.

    Args:
        labels: (N,) test labels, or (N, K) findings (the verdict is then on the macro AUC, whole patients
            resampled together when ``groups`` gives their keys).
        probs: Test probabilities per role (``teacher``, ``student_scratch``, ``student_kd``).
        val: Per role, the best epoch's ``{"val_acc", "val_auc"}`` (empty for an imported model).
        seed: Seed of the resampling.
    """
    pairs = {
        "distillation": ("student_kd", "student_scratch", "distilled student", "scratch student"),
        "student_vs_teacher": ("student_kd", "teacher", "distilled student", "teacher"),
    }
    out = {}
    for key, (a, b, name_a, name_b) in pairs.items():
        if a not in probs or b not in probs:
            continue
        if labels.ndim == 2:
            diff = paired_macro_auc(labels, probs[a], probs[b], groups, RESAMPLES, seed)
        else:
            diff = paired_bootstrap(labels, probs[a], probs[b], seed=seed)
        if val.get(a) and val.get(b):
            diff["val_acc_diff"] = val[a]["val_acc"] - val[b]["val_acc"]
            diff["val_auc_diff"] = val[a]["val_auc"] - val[b]["val_auc"]
        diff["direction"] = direction(diff)
        diff["sentence"] = sentence(diff, name_a, name_b)
        out[key] = diff
    return out
