"""Bootstrap AUC intervals by ranks against one scikit-learn call per resample, on a finished run's predictions.

The report's paired verdicts (``meddistill.evaluation.significance``) score 2,000 resamples of the test images per
comparison, and the trust section 1,000 per model. Before, every resample of a run with more than two classes was
one ``sklearn.metrics.roc_auc_score`` call (about 12 ms each, mostly input checks); now all resamples are ranked at
once (``meddistill.evaluation.metrics.resampled_auc``). This times both on the same draws of a real run's saved test
predictions (``predictions.npz``) and checks that the intervals agree.

Usage:
    python benchmarks/auc_speed.py --run RUN_FOLDER [--resamples 2000]

Prints the per-resample AUC difference of the distilled and scratch students both ways, the largest disagreement,
the seconds of each and, last, ``ratio=`` (scikit-learn seconds / rank seconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import setup  # noqa: E402  (puts the repository on sys.path)
from sklearn.metrics import roc_auc_score

from meddistill.evaluation.metrics import resampled_auc  # noqa: E402  (after common)
from meddistill.store.layout import predictions_key  # noqa: E402


def sklearn_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """The AUC as the report computed it before: one scikit-learn call (NaN where a class is missing)."""
    present = np.unique(labels)
    if len(present) < 2 or (probs.shape[1] > 2 and len(present) < probs.shape[1]):
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder (with predictions.npz)")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    setup("AUC of bootstrap resamples: ranks against scikit-learn")
    saved = np.load(args.run / "predictions.npz")
    labels = saved["labels"]
    kd, scratch = saved[predictions_key("student_kd")], saved[predictions_key("student_scratch")]
    draws = np.random.default_rng(0).integers(0, len(labels), size=(args.resamples, len(labels)))
    print(f"run: {args.run.name}, {len(labels)} test images, {kd.shape[1]} classes, {args.resamples} resamples\n")

    start = time.perf_counter()
    before = np.array([sklearn_auc(labels[d], kd[d]) - sklearn_auc(labels[d], scratch[d]) for d in draws])
    sklearn_seconds = time.perf_counter() - start
    start = time.perf_counter()
    after = resampled_auc(labels, kd, draws) - resampled_auc(labels, scratch, draws)
    rank_seconds = time.perf_counter() - start

    same_nan = bool((np.isnan(before) == np.isnan(after)).all())
    finite = np.isfinite(before)
    worst = float(np.abs(before[finite] - after[finite]).max()) if finite.any() else 0.0
    ci = {
        name: np.percentile(values[np.isfinite(values)], [2.5, 97.5])
        for name, values in (("sklearn", before), ("ranks", after))
    }
    print("| way | seconds | AUC difference 95% interval |")
    print("|---|---|---|")
    print(
        f"| scikit-learn, one call per resample | {sklearn_seconds:.2f} | {ci['sklearn'][0]:+.4f} to "
        f"{ci['sklearn'][1]:+.4f} |"
    )
    print(f"| ranks, all resamples at once | {rank_seconds:.2f} | {ci['ranks'][0]:+.4f} to {ci['ranks'][1]:+.4f} |")
    print(f"\nlargest per-resample disagreement: {worst:.2e}; undefined resamples agree: {same_nan}")
    print(f"ratio={sklearn_seconds / rank_seconds:.2f}")


if __name__ == "__main__":
    main()
