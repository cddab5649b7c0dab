"""Export one model of a finished run and check the file on the run's whole test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meddistill.data.tensors import Batches
from meddistill.errors import MedDistillError
from meddistill.evaluation.export import (
    CHUNK,
    EXPORTS,
    Tempered,
    calibration_images,
    compare_outputs,
    export_model,
    format_extension,
    load_exported,
)
from meddistill.io.atomic import atomic_write_json
from meddistill.pipeline.trust import calibrated
from meddistill.reports.web import page_info
from meddistill.store.layout import EXPORTS_DIR, RunFolder, check_role, predictions_key
from meddistill.tasks import task_for


def export_run(
    run_dir: str | Path, fmt: str, role: str = "student_kd", out: str | Path | None = None, raw: bool = False
) -> dict:
    """Export one model of a finished run and check it on the run's whole test split.

    Args:
        run_dir: The run folder (with ``config.json``, ``dataset.json`` and ``<role>.safetensors``).
        fmt: A name from ``meddistill.evaluation.available_formats()``.
        role: "teacher", "student_scratch" or "student_kd".
        out: Output file (default ``<run_dir>/exports/<role><ext>``, ext .pt, .onnx, .int8.onnx or .html).
        raw: Export the raw logits; by default the file divides them by the model's val-fitted temperature, so its
            probabilities are the calibrated ones every page shows.

    Returns:
        path, format, role, temperature (None: raw), max_abs_prob_diff, agreement (vs the PyTorch model, tempered
        alike; per finding at 0.5 for findings), max_abs_diff_vs_report (vs the run's stored test probabilities with
        the temperature applied: the parity of the calibration), size_bytes, and test_acc / test_auc of the
        exported model itself (for int8 that is the quantized model). The same figures are written to
        ``<run_dir>/exports/<role>.<fmt>.json``.

    Raises:
        ValueError: unknown format or role.
        MedDistillError: the run folder, its weights or its dataset cannot be used.
    """
    extension = format_extension(fmt)
    folder = RunFolder(run_dir)
    model = folder.load_model(check_role(role))
    report = folder.report()
    trust = report.trust if report is not None else None
    temperature = None if raw or trust is None or role not in trust.models else trust.models[role].temperature
    if temperature is not None:
        model = Tempered(model, temperature)
    config, summary = folder.config(), folder.summary()
    channels, size = summary["channels"], summary["train_image_size"]
    dataset = config.load_data()
    test = Batches(dataset.splits["test"], channels, size, config.num_workers)
    calibration = None
    if EXPORTS.entry(fmt).factory.needs_calibration:
        train = Batches(dataset.splits["train"], channels, size, config.num_workers)
        calibration = calibration_images(train, seed=config.seed)

    page = None
    if EXPORTS.entry(fmt).factory.needs_page:
        if summary.get("spatial_dims") == 3:
            raise MedDistillError(
                f"Run {folder.path.name} is of volumes, and the offline page reads 2D scans; export its student as "
                "ONNX (--format onnx) for a viewer that reads volumes."
            )
        if report is None:
            raise MedDistillError(
                f"Run {folder.path.name} has no report.json yet; finish the run, then export the page."
            )
        page = page_info(report, role, temperature, channels, size)
    path = Path(out).expanduser() if out else folder.file(EXPORTS_DIR) / f"{role}{extension}"
    export_model(model, fmt, path, channels, size, calibration, page)
    chunks = (images for images, _, _ in test.iterate(CHUNK))
    task = task_for(dataset.task)
    probs, max_diff, same = compare_outputs(load_exported(path, fmt), model, chunks, task.activation, task.findings)
    labels = dataset.splits["test"].labels
    saved = folder.predictions()
    stored = calibrated(trust, role, saved[predictions_key(role)], task.name, raw=temperature is None)
    _, test_acc, test_auc, _ = task.val_scores(labels, probs)  # accuracy (per label for findings) and (macro) AUC
    result = {
        "path": str(path),
        "format": fmt,
        "role": role,
        "max_abs_prob_diff": max_diff,
        "agreement": same,
        "temperature": temperature,
        "max_abs_diff_vs_report": float(np.abs(probs - stored).max()) if stored.shape == probs.shape else None,
        "size_bytes": path.stat().st_size,
        "test_acc": test_acc,
        "test_auc": test_auc,
    }
    atomic_write_json(folder.file(EXPORTS_DIR) / f"{role}.{fmt}.json", result)
    return result
