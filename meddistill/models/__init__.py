"""Models built by name: MedDistill's teachers and small students in one registry, and any timm model.

Importing this package registers every model (as ``timm.models`` does), so ``create_model(name, ...)`` and
``available_models()`` see them all; a name that is not registered is looked up in timm (``timm_models``).
Teachers from other frameworks (TorchScript, ONNX) are loaded by ``external``.
"""

from meddistill.models import ensembles, students, torchvision_models, volumes  # noqa: F401  (registers the models)
from meddistill.models.external import load_external_teacher
from meddistill.models.factory import ModelInfo, check_model_name, create_model, example_input, model_info
from meddistill.models.registry import MODELS, available_models, model_dims, target_module

__all__ = [
    "MODELS",
    "ModelInfo",
    "available_models",
    "check_model_name",
    "create_model",
    "example_input",
    "load_external_teacher",
    "model_dims",
    "model_info",
    "target_module",
]
