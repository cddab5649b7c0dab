"""Distillation methods, selectable by name: ``create_method("kd", temperature=4.0, alpha=0.5)``.

Importing this package registers every method.
"""

from meddistill.distillation import features, logits  # noqa: F401  (registers the methods)
from meddistill.distillation.base import METHODS, Distiller, available_methods, create_method, kd_loss, method_summary
from meddistill.distillation.features import AttentionTransfer, FitNetHint, attention_map
from meddistill.distillation.logits import HintonKD

__all__ = [
    "METHODS",
    "AttentionTransfer",
    "Distiller",
    "FitNetHint",
    "HintonKD",
    "attention_map",
    "available_methods",
    "create_method",
    "kd_loss",
    "method_summary",
]
