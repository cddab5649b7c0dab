"""Choose a training schedule on validation data: the default command under variants of its settings.

Runs ``meddistill run --data FILE --seed S [VARIANT OPTIONS]`` as fresh processes, interleaved per seed, and
prints for each run the wall time, the best-epoch **validation** AUC of the teacher and of the distilled student
(what a choice between variants is made on) and their test ACC / AUC (reported, not chosen on). The summary lines
give the mean per variant.

Usage:
    python benchmarks/schedule.py --variants "" "--min-steps 100" --seeds 0 1 2 3 4 [--isa avx2]

The last line is ``ratio=`` the mean wall time of the first variant over that of the last.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cpu_speed import ISA_HOLDS, print_machine  # noqa: E402

from meddistill.paths import shared_data  # noqa: E402


def best_val_auc(history: list[dict]) -> float:
    """The validation AUC the engine selected on (its best epoch's)."""
    return max(row["val_auc"] for row in history)


def run(data: Path, seed: int, variant: str, out: Path, env: dict) -> dict:
    """One command: wall seconds, best val AUC and test figures of the teacher and distilled student."""
    run_dir = out / f"{data.stem}-{abs(hash(variant)) % 10_000}-seed{seed}"
    command = [sys.executable, "-m", "meddistill", "run", "--data", str(data), "--seed", str(seed)]
    command += [*shlex.split(variant), "--out", str(run_dir)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    report = json.loads((run_dir / "report.json").read_text())
    history = json.loads((run_dir / "metrics.json").read_text())
    row = {"wall": wall}
    for role in ("teacher", "student_kd"):
        row[role] = (best_val_auc(history[role]), report["models"][role]["test"])
    row["teacher_epochs"] = report["models"]["teacher"]["epochs_run"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["", "--min-steps 100"])
    parser.add_argument("--datasets", nargs="+", default=["breastmnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--isa", choices=list(ISA_HOLDS), help="hold PyTorch and oneDNN to this instruction set")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="meddistill-schedule-"))
    env = {**os.environ, "MEDDISTILL_HOME": str(out / "home"), **ISA_HOLDS.get(args.isa, {})}
    print_machine(args.isa, env)
    print(f"Run folders: {out}")
    print(
        "| dataset | seed | variant | wall (s) | teacher epochs | teacher val AUC | distilled val AUC "
        "| teacher test ACC / AUC | distilled test ACC / AUC |"
    )
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    rows: dict[tuple[str, str], list[dict]] = {}
    for name in args.datasets:
        data = shared_data() / "medmnist" / f"{name}.npz"
        for seed in args.seeds:
            order = args.variants if seed % 2 == 0 else list(reversed(args.variants))
            for variant in order:
                row = run(data, seed, variant, out, env)
                rows.setdefault((name, variant), []).append(row)
                (tv, tt), (sv, st) = row["teacher"], row["student_kd"]
                print(
                    f"| {name} | {seed} | `{variant or 'default'}` | {row['wall']:.0f} | {row['teacher_epochs']} "
                    f"| {tv:.3f} | {sv:.3f} | {tt['acc']:.3f} / {tt['auc']:.3f} | {st['acc']:.3f} / {st['auc']:.3f} |",
                    flush=True,
                )
    for (name, variant), group in rows.items():
        mean = {
            key: statistics.mean(r[key] if key == "wall" else r[key][0] for r in group)
            for key in ("wall", "teacher", "student_kd")
        }
        worst = {
            role: (min(r[role][1]["acc"] for r in group), min(r[role][1]["auc"] for r in group))
            for role in ("teacher", "student_kd")
        }
        print(
            f"{name} `{variant or 'default'}`: mean wall {mean['wall']:.0f} s, mean val AUC teacher "
            f"{mean['teacher']:.3f} distilled {mean['student_kd']:.3f}; worst test ACC / AUC teacher "
            f"{worst['teacher'][0]:.3f} / {worst['teacher'][1]:.3f}, distilled "
            f"{worst['student_kd'][0]:.3f} / {worst['student_kd'][1]:.3f}"
        )
    first, last = args.variants[0], args.variants[-1]
    walls = [statistics.mean(r["wall"] for r in rows[(n, v)]) for n in args.datasets for v in (first, last)]
    print(f"ratio={sum(walls[0::2]) / sum(walls[1::2]):.2f}")


if __name__ == "__main__":
    main()
