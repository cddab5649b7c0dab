"""Replay early stopping with a least improvement (``min_delta``) on the saved val histories of finished runs.

A study tool for the stopping rule (``meddistill/training/stopping.py``, docs/benchmarks.md): for every run folder
under ``--runs`` (as ``benchmarks/suite.py --logs`` leaves them, made with ``min_delta`` 0), each model's per-epoch
val history in ``metrics.json`` is replayed with each ``--deltas`` value. The cosine schedule does not depend on
when a fit stops, so the replay is exact: the epochs a model would have run, its kept epoch, and that epoch's val
AUC and balanced ACC against the run's own. Val figures only; test is never read. The teacher is replayed over its
first round (its second round starts from the first round's best weights, a fit of its own).

Usage:
    python benchmarks/stop_rule.py --runs DIR [--deltas 0 0.0005 0.001 0.002] [--patience 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meddistill.training.stopping import replay  # noqa: E402

ROLES = ("teacher", "student_scratch", "student_kd")


def _first_round(history: list[dict]) -> list[dict]:
    """The teacher's first round: its second round (``pipeline/train_on.py``) is a fit of its own, whose epoch
    numbers run on and whose training seconds start again from 0."""
    for index in range(1, len(history)):
        if history[index]["seconds"] < history[index - 1]["seconds"]:
            return history[:index]
    return history


def study(folders: list[Path], deltas: list[float], patience: int) -> None:
    """Print one row per run, model and delta, then the totals per delta."""
    totals = {delta: {"run": 0, "all": 0, "seconds": 0.0, "all_seconds": 0.0, "auc": [], "bal": []} for delta in deltas}
    print("| run | model | min_delta | epochs run / of | kept epoch | val AUC kept (run's) | val bal. ACC (run's) |")
    print("|---|---|---|---|---|---|---|")
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        for role in ROLES:
            history = metrics.get(role) or []
            if role == "teacher":
                history = _first_round(history)
            if not history:
                continue
            base, _ = replay(history, patience, 0.0)
            for delta in deltas:
                kept, ran = replay(history, patience, delta)
                row, own = history[kept - 1], history[base - 1]
                total = totals[delta]
                total["run"] += ran
                total["all"] += len(history)
                total["seconds"] += history[ran - 1]["seconds"]
                total["all_seconds"] += history[-1]["seconds"]
                total["auc"].append(row["val_auc"] - own["val_auc"])
                total["bal"].append(row["val_balanced_acc"] - own["val_balanced_acc"])
                print(
                    f"| {folder.name} | {role} | {delta:g} | {ran} / {len(history)} | {kept} (run's {base}) | "
                    f"{row['val_auc']:.4f} ({own['val_auc']:.4f}) | {row['val_balanced_acc']:.3f} "
                    f"({own['val_balanced_acc']:.3f}) |"
                )
    print()
    for delta, total in totals.items():
        if not total["auc"]:
            continue
        print(
            f"min_delta={delta:g}: {total['run']} of {total['all']} epochs "
            f"({total['seconds']:.0f} of {total['all_seconds']:.0f} training s), val AUC change mean "
            f"{statistics.mean(total['auc']):+.4f} worst {min(total['auc']):+.4f}, val balanced ACC change mean "
            f"{statistics.mean(total['bal']):+.4f} worst {min(total['bal']):+.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="a folder of run folders (each with metrics.json)")
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.0005, 0.001, 0.002])
    parser.add_argument("--patience", type=int, default=8)
    args = parser.parse_args()
    folders = sorted(path.parent for path in args.runs.glob("**/metrics.json"))
    if not folders:
        sys.exit(f"No run folders with a metrics.json under {args.runs}: give the --logs folder of benchmarks/suite.py")
    study(folders, args.deltas, args.patience)


if __name__ == "__main__":
    main()
