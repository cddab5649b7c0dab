"""MedDistill: train a teacher on medical images, distill it into a small student, and check the student.

The public API, re-exported from the subpackages::

    from meddistill import load_dataset, create_model, RunConfig, execute, RunStore

Subpackages: ``data`` (datasets, DICOM, de-identification), ``models``,
``distillation``, ``training`` (the epoch loop, checkpoints, torchrun),
``evaluation`` (metrics, latency, export), ``explain`` (saliency and
faithfulness), ``runs`` (settings, run folders, the index, the pipeline,
background jobs), ``io`` (atomic writes, safetensors), ``cli`` and ``views``
(helpers for the dashboard's pages).
"""

from meddistill.data import MedDataset, load_dataset
from meddistill.distillation import available_methods, create_method, kd_loss
from meddistill.errors import Cancelled, DataError, MedDistillError, TrainingError, WeightsError
from meddistill.evaluation import available_formats, classification_metrics, export_model
from meddistill.explain import available_explainers, overlay, saliency
from meddistill.models import available_models, create_model, load_external_teacher, model_info
from meddistill.pipeline import execute
from meddistill.reports import export_run
from meddistill.services import JobManager
from meddistill.settings import PRESETS, RunConfig
from meddistill.store import LABELS, ROLES, RunFolder, RunStore
from meddistill.training import FitSettings, fit

__all__ = [
    "LABELS",
    "PRESETS",
    "ROLES",
    "Cancelled",
    "DataError",
    "FitSettings",
    "JobManager",
    "MedDataset",
    "MedDistillError",
    "RunConfig",
    "RunFolder",
    "RunStore",
    "TrainingError",
    "WeightsError",
    "available_explainers",
    "available_formats",
    "available_methods",
    "available_models",
    "classification_metrics",
    "create_method",
    "create_model",
    "load_external_teacher",
    "execute",
    "export_model",
    "export_run",
    "fit",
    "kd_loss",
    "load_dataset",
    "model_info",
    "overlay",
    "saliency",
]
__version__ = "0.1.0"
