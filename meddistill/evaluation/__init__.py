"""How good and how fast: test metrics, predictions over a split, latency, and exported models."""

from meddistill.evaluation.export import (
    EXPORTS,
    available_formats,
    check_export,
    export_model,
    format_extension,
    load_exported,
)
from meddistill.evaluation.latency import measure_exported_latency, measure_latency
from meddistill.evaluation.metrics import (
    agreement,
    auc_score,
    classification_metrics,
    expected_calibration_error,
    reliability,
)
from meddistill.evaluation.predict import predict

__all__ = [
    "EXPORTS",
    "agreement",
    "auc_score",
    "available_formats",
    "check_export",
    "classification_metrics",
    "expected_calibration_error",
    "export_model",
    "format_extension",
    "load_exported",
    "measure_exported_latency",
    "measure_latency",
    "predict",
    "reliability",
]
