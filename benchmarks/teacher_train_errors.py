"""How often a finished run's teacher contradicts the labels of its own training images (docs/benchmarks.md, 14).

For every run folder ``NAME-seedS`` under ``--runs`` (as ``benchmarks/suite.py --logs`` leaves them) that kept the
teacher's cached logits (``teacher_logits.safetensors``: the teacher the students learned from, on the unaugmented
training images at the training size), the run's data are loaded again from its ``config.json`` and the teacher's
top class is compared with each training label: the share of images ``--method kd_ka`` would adjust, and the
teacher's balanced ACC on them. Reads files only; trains nothing.

Usage:
    python benchmarks/teacher_train_errors.py --runs DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.io.weights import read_weights  # noqa: E402
from meddistill.settings.config import RunConfig  # noqa: E402
from meddistill.store.layout import TEACHER_LOGITS_FILE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    args = parser.parse_args()
    for run in sorted(p for p in args.runs.iterdir() if (p / TEACHER_LOGITS_FILE).is_file()):
        labels = RunConfig.load(run / "config.json").load_data().splits["train"].labels
        if labels.ndim != 1:
            print(f"{run.name}: several findings per image, skipped")
            continue
        top = read_weights(run / TEACHER_LOGITS_FILE)["logits"].argmax(1).numpy()
        wrong = top != labels
        print(
            f"{run.name}: {len(labels)} training images, the teacher's top class is not the label on {wrong.sum()} "
            f"({wrong.mean():.1%}); its balanced ACC on them {balanced_accuracy_score(labels, top):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
