"""How much faster is the default student (tiny_cnn) than the default teacher (resnet18) at inference?

Both at 28 px (MedMNIST) and 224 px (full-size X-rays), in three runtimes:
PyTorch eager (``torch.inference_mode``), TorchScript (``torch.jit.trace``,
the file ``meddistill export --format torchscript`` writes) and ONNX Runtime
on CPU (the ``--format onnx`` file). Batch 1: median milliseconds over
``--runs`` calls after warm-up, teacher and student calls interleaved so that
load from other processes hits both alike. Batch 64: images/s, median of 3
timed calls after one warm-up. Weights are random (speed does not depend on
them); inputs are real PneumoniaMNIST test images, resized for 224 px.

Run: ``python benchmarks/latency.py`` (about 3 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common
import torch

from meddistill.data.tensors import to_tensor
from meddistill.evaluation.export import export_model, load_exported
from meddistill.models import create_model

BACKENDS = ("eager", "torchscript", "onnx")


def runner(model, backend: str, size: int, folder: Path):
    """A function images -> logits for one runtime."""
    if backend == "eager":

        def run_eager(images):
            with torch.inference_mode():
                return model(images)

        return run_eager
    path = export_model(model, backend, folder / f"{model.arch}_{size}.{backend}", 1, size)
    return load_exported(path, backend, threads=common.THREADS)


def timed(run, images) -> float:
    start = time.perf_counter()
    run(images)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 calls per model and runtime")
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 224])
    args = parser.parse_args()
    common.setup("latency: teacher resnet18 vs student tiny_cnn, batch 1 and batch 64")
    _, batches = common.pneumonia(28)
    raw = batches["test"].split.images[:64]

    rows, speedups = [], {}
    with tempfile.TemporaryDirectory(prefix="meddistill-latency-") as work:
        for size in args.sizes:
            images = to_tensor(raw, 1, size)
            one = images[:1]
            torch.manual_seed(0)
            models = {
                "teacher": create_model("resnet18", 2, 1, size).eval(),
                "student": create_model("tiny_cnn", 2, 1, size).eval(),
            }
            for backend in BACKENDS:
                runs = {role: runner(model, backend, size, Path(work)) for role, model in models.items()}
                for run in runs.values():
                    for _ in range(10):
                        run(one)
                single = {role: [] for role in runs}
                for _ in range(args.runs):
                    for role, run in runs.items():
                        single[role].append(timed(run, one))
                for role, run in runs.items():
                    run(images)
                    batch_s = common.median(timed(run, images) for _ in range(3))
                    ms = common.median(single[role]) * 1000
                    rows.append([size, backend, role, models[role].arch, ms, len(images) / batch_s])
                speedups[(size, backend)] = common.median(single["teacher"]) / common.median(single["student"])

    common.table(["px", "runtime", "role", "arch", "b1 ms (median)", "b64 img/s"], rows, widths=[4, 12, 8, 9, 15, 10])
    common.table(
        ["px", "runtime", "student speed-up b1", "speed-up b64"],
        [[size, backend, speedups[(size, backend)], _b64_speedup(rows, size, backend)] for size, backend in speedups],
        widths=[4, 12, 20, 13],
    )
    headline = speedups.get((28, "eager"), next(iter(speedups.values())))
    print(
        "target: student >= 20x faster than teacher at batch 1 (28 px, eager) -> "
        f"{'met' if headline >= 20 else 'MISSED'} ({headline:.1f}x)"
    )
    common.ratio(headline)


def _b64_speedup(rows: list, size: int, backend: str) -> float:
    rate = {row[2]: row[5] for row in rows if row[0] == size and row[1] == backend}
    return rate["student"] / rate["teacher"]


if __name__ == "__main__":
    main()
