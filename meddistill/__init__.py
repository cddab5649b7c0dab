"""MedDistill: train a teacher on medical images, distill it into a small student, and check the student.

The public API, re-exported from the subpackages::

    from meddistill import load_dataset, create_model, RunConfig, execute, RunStore

Subpackages, from the bottom up: ``io`` (atomic writes, safetensors, content-addressed files), ``web`` (the
offline page and the vendored ONNX Runtime Web), ``tracking`` (TensorBoard, MLflow), ``data``
(datasets, DICOM, de-identification, data checks), ``models``, ``distillation``, ``evaluation`` (metrics,
latency, verdicts, export formats), ``training`` (the epoch loop, checkpoints, torchrun), ``explain`` (saliency
and faithfulness), ``tasks`` (what a model predicts), ``settings`` (every setting declared once, presets, teacher
sources), ``store`` (run folders, the typed report, the run index, reviews), ``pipeline`` (one run end to end),
``reports`` (tables, the model card, export), ``services`` (jobs, uploads and checks shared by the CLI and the
pages), ``cli`` and ``views`` (page state and figures behind the dashboard).
"""

from meddistill.data import MedDataset, load_dataset
from meddistill.distillation import available_methods, create_method, kd_loss
from meddistill.distillation.ensemble import AveragedTeacher
from meddistill.errors import Cancelled, DataError, MedDistillError, TrainingError, WeightsError
from meddistill.evaluation import available_formats, classification_metrics, export_model
from meddistill.evaluation.trust import Trust, TrustSettings, assess
from meddistill.explain import available_explainers, overlay, saliency
from meddistill.models import available_models, create_model, load_external_teacher, model_info
from meddistill.pipeline import execute
from meddistill.pipeline.trust import reassess
from meddistill.reports import export_run
from meddistill.services import JobManager
from meddistill.settings import PRESETS, RunConfig
from meddistill.store import LABELS, ROLES, RunFolder, RunStore
from meddistill.store.index import RunStatus
from meddistill.store.report import Report
from meddistill.tasks import TASKS, available_tasks, task_for
from meddistill.training import FitSettings, fit
from meddistill.web import build_page

__all__ = [
    "AveragedTeacher",
    "build_page",
    "Trust",
    "TrustSettings",
    "assess",
    "reassess",
    "LABELS",
    "PRESETS",
    "ROLES",
    "Cancelled",
    "DataError",
    "FitSettings",
    "JobManager",
    "MedDataset",
    "MedDistillError",
    "Report",
    "RunConfig",
    "RunFolder",
    "RunStatus",
    "RunStore",
    "TASKS",
    "TrainingError",
    "WeightsError",
    "available_explainers",
    "available_formats",
    "available_methods",
    "available_models",
    "available_tasks",
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
    "task_for",
]
__version__ = "0.1.0"
