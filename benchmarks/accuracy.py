"""Accuracy of the default CPU run on the real MedMNIST files, over three seeds.

Runs ``meddistill run --data FILE --seed S --out DIR`` exactly as a user
would (default settings: the ``cpu`` preset on a machine without a GPU), reads
each ``report.json`` and prints a Markdown table of mean and spread, the wall
time of each run, and the thresholds from the MedMNIST v2 paper.

Usage:
    python benchmarks/accuracy.py [--seeds 0 1 2] [--datasets pneumoniamnist breastmnist]

The last line is ``ratio=X``: the worst ACC or AUC over its threshold among
the models the issue sets a bar for (teacher and distilled student on
PneumoniaMNIST, distilled student on BreastMNIST); >= 1 means every seed met
every bar.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.paths import shared_data  # noqa: E402

THRESHOLDS = {"pneumoniamnist": {"acc": 0.854, "auc": 0.944}, "breastmnist": {"acc": 0.83, "auc": 0.88}}
JUDGED = {"pneumoniamnist": ("teacher", "student_kd"), "breastmnist": ("student_kd",)}


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(THRESHOLDS))
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="meddistill-accuracy-"))
    print(f"CPU: {describe_cpu()}", flush=True)
    rows, worst = [], float("inf")
    for name in args.datasets:
        data = shared_data() / "medmnist" / f"{name}.npz"
        for seed in args.seeds:
            run_dir = out / f"{name}-seed{seed}"
            command = [
                sys.executable,
                "-m",
                "meddistill",
                "run",
                "--data",
                str(data),
                "--seed",
                str(seed),
                "--out",
                str(run_dir),
            ]
            print("$ meddistill run --data", data, "--seed", seed, flush=True)
            start = time.perf_counter()
            subprocess.run(
                command,
                check=True,
                stderr=subprocess.DEVNULL,
                env={**__import__("os").environ, "MEDDISTILL_HOME": str(out / "home")},
            )
            wall = time.perf_counter() - start
            report = json.loads((run_dir / "report.json").read_text())
            rows.append((name, seed, wall, report))
            for role in JUDGED[name]:
                test = report["models"][role]["test"]
                worst = min(worst, test["acc"] / THRESHOLDS[name]["acc"], test["auc"] / THRESHOLDS[name]["auc"])
            print(
                f"  {name} seed {seed}: "
                + ", ".join(
                    f"{r} ACC {m['test']['acc']:.4f} AUC {m['test']['auc']:.4f}" for r, m in report["models"].items()
                )
                + f", {wall:.0f} s",
                flush=True,
            )

    print("\n| dataset | model | params | test ACC mean ± sd | test AUC mean ± sd | per seed (ACC / AUC) |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets:
        reports = [r for n, _, _, r in rows if n == name]
        for role in ("teacher", "student_scratch", "student_kd"):
            accs = [r["models"][role]["test"]["acc"] for r in reports]
            aucs = [r["models"][role]["test"]["auc"] for r in reports]
            seeds = "; ".join(f"{a:.3f} / {u:.3f}" for a, u in zip(accs, aucs))
            print(
                f"| {name} | {role} | {reports[0]['models'][role]['params']:,} | {statistics.mean(accs):.3f} ± "
                f"{sd(accs):.3f} | {statistics.mean(aucs):.3f} ± {sd(aucs):.3f} | {seeds} |"
            )
    print("\n| dataset | seed | wall time (s) | teacher train (s) | student_kd train (s) |")
    print("|---|---|---|---|---|")
    for name, seed, wall, report in rows:
        print(
            f"| {name} | {seed} | {wall:.0f} | {report['models']['teacher']['train_seconds']:.0f} | "
            f"{report['models']['student_kd']['train_seconds']:.0f} |"
        )
    print(f"\nratio={worst:.3f}")


if __name__ == "__main__":
    main()
