"""The development suite: the default command (and any variant) on every real collection we have, several seeds.

Runs ``meddistill run --data SOURCE --seed S --out DIR [variant options]`` as a user would, on:

* ``breastmnist``, ``pneumoniamnist``: the official MedMNIST npz files;
* ``chest_xray``: the 224-px JPEG folders at 64 px, split by patient (``--group-pattern``);
* ``pbc_blood_cells``: 8 blood-cell classes, one folder per class inside a wrapping folder, no given splits;
* ``cxr14_binary``: the ChestX-ray14 sample read as normal vs abnormal (``Finding Labels`` is ``No Finding`` or not),
  with the official split lists and the patient id, built as a labels CSV beside links to its images (until
  multi-label lands).

and prints one table per variant: teacher, scratch and distilled test ACC / balanced ACC / AUC, their best-epoch val
AUC, the paired verdict's direction, the wall time against the target of its size class, the CPU and the ISA limit.
The last lines are ``teacher_ratio=`` (worst teacher val AUC / scratch val AUC over sets and seeds; above 1 means the
teacher was better on val everywhere), ``kd_ratio=`` (worst distilled / scratch test balanced ACC) and
``time_ratio=`` (worst wall time / its target; at most 1 meets every target). Logs of every run stay in ``--logs``.

Usage:
    python benchmarks/suite.py [--sets breastmnist pbc_blood_cells] [--seeds 0 1 2] [--isa avx2]
        [--variant "timm18=--teacher timm/resnet18"] [--no-default]
"""

from __future__ import annotations

import argparse
import csv
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
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.paths import shared_data  # noqa: E402

ISA_LIMITS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
PATIENT_PATTERN = r"^(person\d+|(?:NORMAL2-)?IM-\d+)"
# The time targets of the teachers issue, on 2 cores held to AVX2: the demo (BreastMNIST) 3 minutes, PneumoniaMNIST
# 5, a 5,000-image 64-px folder 10 (the other folders here are smaller, so 10 is generous for them).
TARGETS = {"breastmnist": 180, "pneumoniamnist": 300, "chest_xray": 600, "pbc_blood_cells": 600, "cxr14_binary": 600}
ROLES = ("teacher", "student_scratch", "student_kd")


def cxr14_binary(work: Path) -> Path:
    """The ChestX-ray14 sample as normal vs abnormal: ``labels.csv`` (file, finding, split, patient) and a link to
    the images folder, under ``work``."""
    source = shared_data() / "cxr14_sample"
    target = work / "cxr14_binary"
    if target.is_dir():
        return target
    target.mkdir(parents=True)
    (target / "images").symlink_to(source / "images", target_is_directory=True)
    test = set((source / "test_list.txt").read_text().split())
    with (
        open(source / "Data_Entry_2017.csv", newline="") as handle,
        open(target / "labels.csv", "w", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(["file", "finding", "split", "patient"])
        for row in csv.DictReader(handle):
            finding = "normal" if row["Finding Labels"] == "No Finding" else "abnormal"
            split = "test" if row["Image Index"] in test else "train"
            writer.writerow([f"images/{row['Image Index']}", finding, split, row["Patient ID"]])
    return target


def sets(work: Path) -> dict[str, tuple[Path, list[str]]]:
    """Set name -> (source, extra options)."""
    data = shared_data()
    return {
        "breastmnist": (data / "medmnist" / "breastmnist.npz", []),
        "pneumoniamnist": (data / "medmnist" / "pneumoniamnist.npz", []),
        "chest_xray": (data / "chest_xray", ["--image-size", "64", "--group-pattern", PATIENT_PATTERN]),
        "pbc_blood_cells": (data / "pbc_blood_cells", []),
        "cxr14_binary": (cxr14_binary(work), ["--label-column", "finding", "--group-column", "patient"]),
    }


def best_val(run_dir: Path, report: dict, role: str) -> tuple[float, float]:
    """(val AUC, val ACC) of a model's best epoch (a teacher used as is: its scores on val)."""
    entry = report["models"][role]
    history = json.loads((run_dir / "metrics.json").read_text()).get(role, [])
    if entry["best_epoch"] and history:
        row = history[entry["best_epoch"] - 1]
        return row["val_auc"], row["val_acc"]
    source = entry.get("source") or {}
    return source.get("val_auc", float("nan")), source.get("val_acc", float("nan"))


def run_one(
    name: str, source: Path, extra: list[str], seed: int, options: list[str], out: Path, env: dict, kept_only=False
) -> dict | None:
    """One `meddistill run`; returns its figures (and writes its log beside the run folder)."""
    run_dir = out / f"{name}-seed{seed}"
    command = [sys.executable, "-m", "meddistill", "run", "--data", str(source), "--seed", str(seed)]
    command += [*extra, *options, "--out", str(run_dir)]
    print("$", shlex.join(["meddistill", *command[3:]]), flush=True)
    timing = out / f"{name}-seed{seed}.wall"
    if timing.is_file() and (run_dir / "report.json").is_file():  # finished by an earlier call on these logs
        wall, returncode = float(timing.read_text()), 0
        print(f"  (kept from an earlier call: {wall:.0f} s)", flush=True)
    elif kept_only:
        print("  (not run: --kept-only)", flush=True)
        return None
    else:
        start = time.perf_counter()
        with open(out / f"{name}-seed{seed}.log", "w") as log:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        wall = time.perf_counter() - start
        if returncode == 0:
            timing.write_text(f"{wall:.1f}")
    if returncode != 0:
        print(f"  FAILED ({returncode}); see {out / f'{name}-seed{seed}.log'}", flush=True)
        return {"set": name, "seed": seed, "wall": wall, "failed": True}
    report = json.loads((run_dir / "report.json").read_text())
    row = {"set": name, "seed": seed, "wall": wall, "failed": False}
    for role in ROLES:
        test = report["models"][role]["test"]
        row[role] = {k: test[k] for k in ("acc", "balanced_acc", "auc")}
        row[role]["val_auc"], row[role]["val_acc"] = best_val(run_dir, report, role)
    row["verdict"] = report["verdict"]["distillation"].get("direction", "")
    row["headline"] = report.get("headline", "student_kd")
    print(
        f"  {name} seed {seed}: "
        + ", ".join(
            f"{r} {row[r]['balanced_acc']:.3f}/{row[r]['auc']:.3f} (val AUC {row[r]['val_auc']:.3f})" for r in ROLES
        )
        + f", distillation {row['verdict']}, {wall:.0f} s",
        flush=True,
    )
    return row


def summarise(variant: str, rows: list[dict]) -> None:
    """The variant's table and its three ratios."""
    good = [r for r in rows if not r["failed"]]
    print(f"\n### {variant}\n")
    print("| set | seed | teacher ACC / bal. ACC / AUC (val AUC) | scratch | distilled | distillation | headline | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in good:
        cells = [
            f"{r[x]['acc']:.3f} / {r[x]['balanced_acc']:.3f} / {r[x]['auc']:.3f} ({r[x]['val_auc']:.3f})" for x in ROLES
        ]
        print(
            f"| {r['set']} | {r['seed']} | "
            + " | ".join(cells)
            + f" | {r['verdict']} | {r['headline']} | {r['wall']:.0f} |"
        )
    for r in rows:
        if r["failed"]:
            print(f"| {r['set']} | {r['seed']} | failed | | | | | {r['wall']:.0f} |")
    if not good:
        return
    gains = [r["student_kd"]["balanced_acc"] - r["student_scratch"]["balanced_acc"] for r in good]
    spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
    mean = statistics.mean(gains)
    print(f"\nmean distillation gain (test balanced ACC, distilled - scratch): {mean:+.3f} ± {spread:.3f}")
    print(f"teacher_ratio={min(r['teacher']['val_auc'] / r['student_scratch']['val_auc'] for r in good):.3f}")
    print(f"kd_ratio={min(r['student_kd']['balanced_acc'] / r['student_scratch']['balanced_acc'] for r in good):.3f}")
    lost = [f"{r['set']} seed {r['seed']}" for r in good if r["verdict"] == "lost"]
    print(f"distilled significantly below scratch on test: {', '.join(lost) or 'none'}")
    print(f"time_ratio={max(r['wall'] / TARGETS[r['set']] for r in rows):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", action="append", default=[], help='"NAME=OPTIONS" added to the default command')
    parser.add_argument("--no-default", action="store_true", help="run only the variants")
    parser.add_argument("--kept-only", action="store_true", help="summarise the runs finished in --logs; run nothing")
    parser.add_argument("--isa", choices=list(ISA_LIMITS), help="hold PyTorch to this instruction set")
    parser.add_argument(
        "--logs",
        type=Path,
        help="keep run folders and logs here (default: a temporary folder); runs finished there by an earlier call "
        "are kept, not run again, so one call can summarise several",
    )
    args = parser.parse_args()
    out = args.logs or Path(tempfile.mkdtemp(prefix="meddistill-suite-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ISA_LIMITS.get(args.isa, {}), "MEDDISTILL_HOME": str(out / "home")}
    variants = ([] if args.no_default else [("default", [])]) + [
        (text.split("=", 1)[0], shlex.split(text.split("=", 1)[1])) for text in args.variant
    ]
    print(f"CPU: {describe_cpu()}; ISA limit: {args.isa or 'none'}; logs: {out}", flush=True)
    available = sets(out)
    results = {variant: [] for variant, _ in variants}  # interleaved by set and seed: a slow spell hits them alike
    for name in args.sets:
        source, extra = available[name]
        for seed in args.seeds:
            for variant, options in variants:
                folder = out / variant
                folder.mkdir(exist_ok=True)
                row = run_one(name, source, extra, seed, options, folder, env, args.kept_only)
                if row is not None:
                    results[variant].append(row)
    for variant, rows in results.items():
        summarise(variant, rows)


if __name__ == "__main__":
    main()
