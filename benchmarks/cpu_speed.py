"""The default CPU command before and after the speed work, interleaved on the same data and the same machine.

* ``old``: the default as it was: the ``cpu`` preset with the teacher ``resnet18_fullres`` (the MedMNIST v2 stem,
  full-resolution 64-channel maps in the first block: the layout ``resnet18`` had before layout 2), the training
  state saved after every epoch (``--checkpoint-seconds 0``), the default NCHW memory format
  (``--no-channels-last``) and at least 150 steps per model (``--min-steps 150``: the preset's 5 teacher epochs
  raised to 30 on BreastMNIST, 5 on PneumoniaMNIST, as the old preset's 4 were), as before. Every other setting
  is the preset's.
* ``new``: the default as it is: ``meddistill run --data FILE --seed S`` (``resnet18`` with the pooled stem, at
  least 75 steps per model: 15 teacher epochs on BreastMNIST, 5 on PneumoniaMNIST).

Each pair runs old then new (new then old on odd seeds), as a user would, in fresh processes. For each run it
prints the wall time of the whole command, the teacher's training steps per second and every model's test
ACC/AUC. The last line is ``ratio=`` old wall time / new wall time of the BreastMNIST command (median over seeds).

Usage:
    python benchmarks/cpu_speed.py [--datasets breastmnist pneumoniamnist] [--seeds 0] [--isa avx2]

``--isa avx2`` holds PyTorch and oneDNN to AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``) on a
machine with AVX-512 or AMX, to measure what an AVX2-only laptop would see.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.paths import shared_data  # noqa: E402

OLD = ["--teacher", "resnet18_fullres", "--checkpoint-seconds", "0", "--no-channels-last", "--min-steps", "150"]
VARIANTS = {"old": OLD, "new": []}
ISA_HOLDS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def print_machine(isa: str | None, env: dict) -> None:
    """The CPU, its flags, the ISA limit for the runs and the kernels PyTorch then uses."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    kernel = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip()
    limits = ", ".join(f"{k}={v}" for k, v in ISA_HOLDS.get(isa, {}).items()) or "none"
    print(f"CPU: {describe_cpu()}")
    print(f"ISA limit for the runs: {limits}; PyTorch CPU kernels in use: {kernel}", flush=True)


def run(variant: str, data: Path, seed: int, out: Path, env: dict) -> tuple[float, dict]:
    """Wall seconds of one ``meddistill run`` and its report."""
    run_dir = out / f"{data.stem}-{variant}-seed{seed}"
    command = [sys.executable, "-m", "meddistill", "run", "--data", str(data), "--seed", str(seed)]
    command += [*VARIANTS[variant], "--out", str(run_dir)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    return wall, json.loads((run_dir / "report.json").read_text())


def teacher_steps_per_second(report: dict) -> float:
    teacher = report["models"]["teacher"]
    steps = teacher["epochs_run"] * math.ceil(report["dataset"]["sizes"]["train"] / report["config"]["batch_size"])
    return steps / teacher["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["breastmnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--isa", choices=list(ISA_HOLDS), help="hold PyTorch and oneDNN to this instruction set")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="meddistill-cpu-speed-"))
    env = {**os.environ, "MEDDISTILL_HOME": str(out / "home"), **ISA_HOLDS.get(args.isa, {})}
    print_machine(args.isa, env)
    print(
        "| dataset | seed | variant | wall time (s) | teacher steps/s | teacher ACC / AUC | scratch ACC / AUC "
        "| distilled ACC / AUC |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    walls: dict[tuple[str, str], list[float]] = {}
    for name in args.datasets:
        data = shared_data() / "medmnist" / f"{name}.npz"
        for seed in args.seeds:
            order = ["old", "new"] if seed % 2 == 0 else ["new", "old"]
            for variant in order:
                wall, report = run(variant, data, seed, out, env)
                walls.setdefault((name, variant), []).append(wall)
                scores = " | ".join(
                    f"{m['test']['acc']:.3f} / {m['test']['auc']:.3f}" for m in report["models"].values()
                )
                print(
                    f"| {name} | {seed} | {variant} | {wall:.0f} | {teacher_steps_per_second(report):.2f} | {scores} |",
                    flush=True,
                )
    for name in args.datasets:
        old, new = statistics.median(walls[(name, "old")]), statistics.median(walls[(name, "new")])
        print(f"{name}: old {old:.0f} s, new {new:.0f} s, {old / new:.2f}x faster")
    if "breastmnist" in args.datasets:
        ratio = statistics.median(walls[("breastmnist", "old")]) / statistics.median(walls[("breastmnist", "new")])
        print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
