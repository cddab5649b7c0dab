"""How good a distillation target the teacher and the scratch student make together, from finished runs' predictions.

For every run folder ``NAME-seedS`` under ``--runs`` (as ``benchmarks/suite.py --logs`` leaves them), reads
``predictions.npz`` (the uncalibrated val and test probabilities of each model) and prints, on val and on test, the
NLL, AUC and balanced ACC of the teacher, the scratch student, their logit average (``--distil-from ensemble``: the
softmax of the mean logits, the normalised geometric mean of the two models' probabilities) and the distilled
student. Reads files only; trains nothing (docs/benchmarks.md, section 13).

Usage:
    python benchmarks/ensemble_val.py --runs DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.calibration import nll  # noqa: E402
from meddistill.evaluation.metrics import auc_score  # noqa: E402


def geometric_mean(*probs: np.ndarray) -> np.ndarray:
    """(N, K) probability rows of several models -> (N, K) rows of the softmax of their mean log probabilities."""
    log_p = np.mean([np.log(np.clip(p, 1e-12, 1.0)) for p in probs], axis=0)
    e = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def figures(labels: np.ndarray, probs: np.ndarray) -> str:
    """NLL, AUC (one-vs-rest macro above two classes) and balanced ACC of (N, K) ``probs`` against (N,) labels."""
    balanced = balanced_accuracy_score(labels, probs.argmax(axis=1))
    return f"NLL {nll(labels, probs, 'softmax'):.3f} AUC {auc_score(labels, probs):.4f} bal {balanced:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    args = parser.parse_args()
    for folder in sorted(p for p in args.runs.iterdir() if (p / "predictions.npz").is_file()):
        saved = np.load(folder / "predictions.npz")
        print(folder.name)
        for split, prefix in (("val", "val_"), ("test", "")):
            labels = saved[f"{prefix}labels"]
            teacher, scratch = saved[f"{prefix}probs_teacher"], saved[f"{prefix}probs_student_scratch"]
            models = {
                "teacher": teacher,
                "scratch": scratch,
                "both": geometric_mean(teacher, scratch),
                "distilled": saved[f"{prefix}probs_student_kd"],
            }
            for name, probs in models.items():
                print(f"  {split:4} {name:9} {figures(labels, probs)}")


if __name__ == "__main__":
    main()
