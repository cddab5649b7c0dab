"""MedDistill: train a teacher on medical images, distill it into a small student, and check the student.

The public API::

    from meddistill import load_dataset, create_model, RunConfig, execute, RunStore
"""

from meddistill.config import PRESETS, RunConfig
from meddistill.data import MedDataset, load_dataset
from meddistill.distill import available_methods, create_method, kd_loss
from meddistill.errors import Cancelled, DataError, MedDistillError, TrainingError, WeightsError
from meddistill.models import available_models, create_model, model_info
from meddistill.pipeline import ROLES, execute
from meddistill.runs import RunStore

__all__ = [
    "PRESETS", "ROLES", "Cancelled", "DataError", "MedDataset", "MedDistillError", "RunConfig", "RunStore",
    "TrainingError", "WeightsError", "available_methods", "available_models", "create_method", "create_model",
    "execute", "kd_loss", "load_dataset", "model_info",
]
__version__ = "0.1.0"
