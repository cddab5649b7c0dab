"""Is Grad-CAM faithful on a real run? RISE deletion and insertion of each model's maps against random blocks.

For a finished run folder, explains up to N test scans (a seeded sample) with each model's Grad-CAM and prints the
mean deletion and insertion areas of the maps and of random block orders at the same resolution (docs/explain.md).

Usage:
    python benchmarks/faithfulness.py RUN_DIR [--images 50] [--method gradcam]

The last line is ``ratio=`` the random deletion area over the teacher map's (above 1: the map is more faithful).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.store.layout import RunFolder  # noqa: E402
from meddistill.views.cases import mean_faithfulness, run_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--method", default="gradcam")
    args = parser.parse_args()
    folder = RunFolder(args.run)
    summary = folder.summary()
    test = run_dataset(folder.path).splits["test"]
    print(f"CPU: {describe_cpu()}")
    size = summary["train_image_size"]
    print(f"run {folder.path.name}: {summary['name']}, {len(test)} test scans, trained at {size} px")
    print(
        "| model | scans | blocks | deletion: map / random (lower wins) | insertion: map / random (higher wins) "
        "| map wins deletion / insertion | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    teacher_ratio = None
    for role in ("teacher", "student_kd"):
        start = time.perf_counter()
        model = folder.load_model(role)
        m = mean_faithfulness(model, test, summary["channels"], summary["train_image_size"], args.method, args.images)
        print(
            f"| {role} | {m['images']} | {m['grid']}x{m['grid']} | {m['deletion']:.3f} / {m['random_deletion']:.3f} "
            f"| {m['insertion']:.3f} / {m['random_insertion']:.3f} | {m['deletion_wins']} / {m['insertion_wins']} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )
        teacher_ratio = teacher_ratio or m["random_deletion"] / max(m["deletion"], 1e-9)
    print(f"ratio={teacher_ratio:.2f}")


if __name__ == "__main__":
    main()
