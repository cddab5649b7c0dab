"""What does int8 quantization buy the student, and what does it cost in accuracy?

By default a tiny_cnn is trained from scratch with meddistill's ``fit`` for
``--epochs`` epochs on PneumoniaMNIST at 28 px (the cheap route: distilling
needs a trained resnet18 teacher, about 10 minutes more on 2 cores). With
``--run RUN_DIR`` the run's distilled student is used instead. The model is
exported to fp32 ONNX and to int8 ONNX (``meddistill.evaluation.export``: ONNX Runtime
static quantization, QDQ, per-channel int8 weights, uint8 activations,
calibrated on 256 train images); size, ONNX Runtime latency and test ACC/AUC
are compared. A second table tries other quantization settings.

Run: ``python benchmarks/quantize.py`` (about 2 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch

from meddistill.evaluation import auc_score
from meddistill.evaluation.export import calibration_images, export_model, load_exported


def test_metrics(run, images: torch.Tensor, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(ACC, AUC, predicted classes) of a runner on the test images."""
    probs = torch.cat([torch.softmax(run(chunk).float(), 1) for chunk in images.split(256)]).double().numpy()
    return float((probs.argmax(1) == labels).mean()), auc_score(labels, probs), probs.argmax(1)


def latency(run, one: torch.Tensor, many: torch.Tensor, runs: int) -> tuple[float, float]:
    """(median ms at batch 1, images/s at batch 64)."""
    for _ in range(10):
        run(one)

    def timed(x) -> float:
        start = time.perf_counter()
        run(x)
        return time.perf_counter() - start

    single = common.median(timed(one) for _ in range(runs))
    run(many)
    return single * 1000, len(many) / common.median(timed(many) for _ in range(5))


def weight_bytes(path: Path) -> int:
    """Bytes of the graph's weight initializers (tensors of 2 or more dimensions) as stored."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer if len(t.dims) >= 2)


def student(args, batches):
    """(model, description): a run's distilled student, or tiny_cnn trained from scratch with fit."""
    if args.run:
        from meddistill.store.layout import load_trained

        model, config, _ = load_trained(args.run, "student_kd")
        return model, f"distilled student of run {args.run} ({config.student} <- {config.teacher}, {config.method})"
    from meddistill.models import create_model
    from meddistill.training import FitSettings, fit

    torch.manual_seed(1)
    model = create_model("tiny_cnn", 2, 1, 28)
    start = time.perf_counter()
    result = fit(
        model,
        batches["train"],
        batches["val"],
        FitSettings(epochs=args.epochs, lr=0.002, batch_size=128, patience=args.epochs),
        role="student_scratch",
    )
    return model.eval(), (
        f"tiny_cnn trained FROM SCRATCH (not distilled) with fit, {args.epochs} epochs, best val epoch "
        f"{result.best_epoch}, "
        f"{time.perf_counter() - start:.0f} s"
    )


def variants(model, calibration, images, labels, folder: Path) -> list[list]:
    """Other ONNX Runtime static-quantization settings, for the record."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = export_model(model, "onnx", folder / "v.onnx", 1, 28)
    prepared = folder / "v.prep.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter([{"images": c.numpy()} for c in calibration.split(64)])

        def get_next(self):
            return next(self.chunks, None)

    settings = [
        ("QDQ per-channel u8/s8 MinMax (used)", QuantFormat.QDQ, True, QuantType.QUInt8, CalibrationMethod.MinMax),
        ("QDQ per-tensor u8/s8 MinMax", QuantFormat.QDQ, False, QuantType.QUInt8, CalibrationMethod.MinMax),
        ("QOperator per-channel u8/s8 MinMax", QuantFormat.QOperator, True, QuantType.QUInt8, CalibrationMethod.MinMax),
        ("QDQ per-channel s8/s8 MinMax", QuantFormat.QDQ, True, QuantType.QInt8, CalibrationMethod.MinMax),
        ("QDQ per-channel u8/s8 Percentile", QuantFormat.QDQ, True, QuantType.QUInt8, CalibrationMethod.Percentile),
    ]
    reference = test_metrics(load_exported(fp32, "onnx"), images, labels)[2]
    rows = []
    for name, fmt, per_channel, activations, method in settings:
        out = folder / f"v{len(rows)}.onnx"
        with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints its progress
            quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=fmt,
                per_channel=per_channel,
                activation_type=activations,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
            )
        run = load_exported(out, "onnx", threads=common.THREADS)
        acc, auc, predicted = test_metrics(run, images, labels)
        ms, _ = latency(run, images[:1], images[:64], 100)
        rows.append(
            [
                name,
                out.stat().st_size,
                fp32.stat().st_size / out.stat().st_size,
                acc,
                auc,
                float((predicted == reference).mean()),
                ms,
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="use this run folder's distilled student instead of training one")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 calls")
    args = parser.parse_args()
    common.setup("quantize: fp32 vs int8 ONNX of the student (PneumoniaMNIST 28 px)")
    _, batches = common.pneumonia(28)
    model, description = student(args, batches)
    print(f"model: {description}")
    images, labels = batches["test"].images, batches["test"].split.labels
    calibration = calibration_images(batches["train"])
    print(f"calibration: {len(calibration)} random train images; test split: {len(labels)} images")
    print()

    with tempfile.TemporaryDirectory(prefix="meddistill-quant-") as work:
        folder = Path(work)
        fp32 = export_model(model, "onnx", folder / "student.onnx", 1, 28)
        int8 = export_model(model, "onnx-int8", folder / "student.int8.onnx", 1, 28, calibration)

        def eager(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(x)

        runners = {
            "PyTorch eager fp32": eager,
            "ONNX fp32": load_exported(fp32, "onnx", threads=common.THREADS),
            "ONNX int8": load_exported(int8, "onnx-int8", threads=common.THREADS),
        }
        sizes = {
            "PyTorch eager fp32": sum(p.numel() * 4 for p in model.parameters()),
            "ONNX fp32": fp32.stat().st_size,
            "ONNX int8": int8.stat().st_size,
        }
        rows, results = [], {}
        for name, run in runners.items():
            acc, auc, predicted = test_metrics(run, images, labels)
            ms, rate = latency(run, images[:1], images[:64], args.runs)
            results[name] = (acc, auc, predicted)
            rows.append([name, sizes[name], acc, auc, ms, rate])
        agree = float((results["ONNX int8"][2] == results["ONNX fp32"][2]).mean())
        fp32_w, int8_w = weight_bytes(fp32), weight_bytes(int8)
        extra = variants(model, calibration, images, labels, folder)

    common.table(["model", "bytes", "test ACC", "test AUC", "b1 ms", "b64 img/s"], rows, widths=[20, 9, 9, 9, 8, 10])
    print("bytes: file size for ONNX; for PyTorch the fp32 parameter bytes (BN folded into convs in the ONNX files)")
    print(
        f"weight initializers: fp32 {fp32_w} B, int8 {int8_w} B ({fp32_w / int8_w:.2f}x); int8 agrees with fp32 ONNX "
        f"on {agree:.1%} of test images"
    )
    print()
    common.table(
        ["other settings tried", "bytes", "fp32/int8", "test ACC", "test AUC", "agree", "b1 ms"],
        extra,
        widths=[36, 7, 9, 9, 9, 7, 7],
    )
    size_ratio = sizes["ONNX fp32"] / sizes["ONNX int8"]
    change = (results["ONNX int8"][0] - results["ONNX fp32"][0]) * 100
    met = size_ratio >= 3 and change >= -1
    print(
        f"target: >= 3x smaller with <= 1 point ACC lost -> {'met' if met else 'MISSED'} ({size_ratio:.2f}x smaller "
        f"file, ACC change {change:+.2f} points)"
    )
    common.ratio(size_ratio)


if __name__ == "__main__":
    main()
