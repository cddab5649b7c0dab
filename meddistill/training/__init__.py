"""Training one model: the epoch loop, per-epoch checkpoints, moving averages and torchrun helpers."""

from meddistill.training.averaging import class_weights_for, moving_average
from meddistill.training.engine import fit
from meddistill.training.state import FitResult, FitSettings, Progress
from meddistill.training.teacher import FeatureHook, teacher_logits

__all__ = [
    "FeatureHook",
    "FitResult",
    "FitSettings",
    "Progress",
    "class_weights_for",
    "fit",
    "moving_average",
    "teacher_logits",
]
