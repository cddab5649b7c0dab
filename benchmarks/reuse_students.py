"""Retrain only the distilled student of finished runs with other settings, reusing their teacher and scratch student.

A study tool for the student side (docs/benchmarks.md): for every run folder ``NAME-seedS`` under ``--runs`` (as
``benchmarks/suite.py --logs`` leaves them), the folder is copied to ``--out`` without the distilled student's
weights, checkpoint and report, the ``--set NAME=VALUE`` settings are applied to its ``config.json`` (as typed
settings), and the run is finished again: the teacher and the scratch student are loaded, not trained, so the same
teacher (and its second round, whose length the run kept in ``checkpoints/teacher_on.plan.json``; a run made before
that file existed decides the round again, on a fresh clock) and the same scratch student face each variant. Prints,
per run, the distilled student's best-epoch val AUC / val balanced ACC and its test balanced ACC beside the original
run's, with the distillation verdict against the scratch student and the original run's teacher check.

Usage:
    python benchmarks/reuse_students.py --runs DIR --out DIR2 [--isa avx2] --set distil_from=ensemble
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ISA = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
DROP = ("report.json", "predictions.npz", "status.json", "search.json", "card.html")


def _row(report: dict, role: str) -> str:
    model = report["models"][role]
    history = json.loads((Path(report["_dir"]) / "metrics.json").read_text())[role]
    best = history[model["best_epoch"] - 1] if model["best_epoch"] else {}
    nan, test = float("nan"), model["test"]
    row = (
        f"val AUC {best.get('val_auc', nan):.4f} bal {best.get('val_balanced_acc', nan):.3f} | "
        f"test ACC {test.get('acc', nan):.3f} bal {test.get('balanced_acc', nan):.3f} AUC {test.get('auc', nan):.3f}"
    )
    if role == "student_kd":
        row += f" | {report.get('verdict', {}).get('distillation', {}).get('direction', '')}"
    return row


def _report(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text())
    report["_dir"] = str(folder)
    return report


def _setting(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def copy_without_kd(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` without the distilled student's files and the report."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("student_kd*", *DROP))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--isa", choices=list(ISA))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting (JSON value)")
    args = parser.parse_args()
    changes = dict(_setting(text) for text in args.set)
    env = {**os.environ, **ISA.get(args.isa or "", {})}
    args.out.mkdir(parents=True, exist_ok=True)
    for source in sorted(p for p in args.runs.iterdir() if (p / "report.json").is_file()):
        target = args.out / source.name
        if not (target / "report.json").is_file():
            shutil.rmtree(target, ignore_errors=True)
            copy_without_kd(source, target)
            code = (
                "from meddistill.settings.config import RunConfig; from meddistill.pipeline.runner import execute; "
                f"config = RunConfig.load({str(target / 'config.json')!r}); changes = {changes!r}; "
                "config = config.replace(**changes, given=sorted(set(config.given) | set(changes))).validate(); "
                f"execute(config, {str(target)!r})"
            )
            with open(args.out / f"{source.name}.log", "w") as log:
                subprocess.run([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
        if not (target / "report.json").is_file():
            print(f"{source.name}: FAILED, see {args.out / (source.name + '.log')}", flush=True)
            continue
        before, after = _report(source), _report(target)
        check, nan = before.get("teacher_check") or {}, float("nan")
        verdict = "better" if check.get("better") else "not better"
        teacher, scratch = check.get("teacher_val_auc", nan), check.get("scratch_val_auc", nan)
        print(f"{source.name} (teacher val AUC {teacher:.4f} against the scratch student's {scratch:.4f}: {verdict})")
        print(f"  scratch        {_row(before, 'student_scratch')}")
        print(f"  distilled was  {_row(before, 'student_kd')}  headline {before.get('headline')}")
        print(f"  distilled now  {_row(after, 'student_kd')}  headline {after.get('headline')}", flush=True)


if __name__ == "__main__":
    main()
