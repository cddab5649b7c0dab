"""Models built by name: torchvision teachers and small students, in one registry.

Importing this package registers every model (as ``timm.models`` does), so
``create_model(name, ...)`` and ``available_models()`` see them all.
"""

from meddistill.models import students, torchvision_models  # noqa: F401  (registers the models)
from meddistill.models.factory import ModelInfo, create_model, model_info
from meddistill.models.registry import MODELS, available_models, target_module

__all__ = ["MODELS", "ModelInfo", "available_models", "create_model", "model_info", "target_module"]
