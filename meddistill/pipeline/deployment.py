"""Latency as deployed: each model of a run exported to ONNX (and int8 ONNX for the students) and timed in
ONNX Runtime on the same CPU threads as PyTorch eager.

The exported files stay in the run folder's ``exports/``, so what was timed is what a user downloads.
"""

from __future__ import annotations

import shutil

import torch

from meddistill.data.tensors import Batches
from meddistill.evaluation.export import EXPORTS, calibration_images, export_model, format_extension
from meddistill.evaluation.latency import measure_exported_latency
from meddistill.store.layout import EXPORTS_DIR, RunFolder
from meddistill.store.report import DEPLOYED_FORMATS, deployed_fields


def deployed_latency(
    model: torch.nn.Module,
    role: str,
    folder: RunFolder,
    train: Batches,
    threads: int,
    runs: int,
    seed: int = 0,
) -> dict:
    """Export ``model`` in its deployed formats and time each file.

    Args:
        model: The trained model (moved to the CPU for export).
        role: Its role in the run (chooses the formats, see ``DEPLOYED_FORMATS``).
        folder: The run folder (files go to ``exports/<role><ext>``).
        train: Train batches (calibration images for int8).
        threads: ONNX Runtime intra-op threads (the same as PyTorch's).
        runs: Batch-1 calls whose median is reported.
        seed: Seeds the choice of calibration images.

    Returns:
        ``{"onnx_latency_ms_b1": ..., "onnx_throughput_b64": ..., ...}`` per format; ``deployed_error`` with one
        sentence instead when a format cannot be exported or run (the run itself still succeeds).
    """
    fields = {}
    for fmt in DEPLOYED_FORMATS[role]:
        path = folder.file(EXPORTS_DIR) / f"{role}{format_extension(fmt)}"
        try:
            calibration = calibration_images(train, seed=seed) if EXPORTS.entry(fmt).factory.needs_calibration else None
            if getattr(model, "kind", None) == fmt:  # an imported ONNX teacher is deployed as the file it came as
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(model.source, path)
            else:
                exported = getattr(model, "exportable", model)  # a TorchScript teacher: its scripted module
                export_model(exported, fmt, path, train.channels, train.size, calibration)
            latency, throughput = measure_exported_latency(
                path, fmt, train.channels, train.size, threads, runs, spatial_dims=train.spatial_dims
            )
        except (RuntimeError, ValueError, OSError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            fields["deployed_error"] = f"{fmt} export of the {role} failed ({first}); eager latency only."
            continue
        latency_field, throughput_field = deployed_fields(fmt)
        fields[latency_field], fields[throughput_field] = latency, throughput
    return fields
