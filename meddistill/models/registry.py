"""The model registry: ``@MODELS.register(name, role=..., target_layer=...)`` on a factory.

A factory takes ``(num_classes, in_channels, image_size)`` and returns a module
mapping (B, C, S, S) to logits (B, K). ``role`` ("teacher" or "student") sorts
the names in the pickers; ``target_layer`` names the last convolutional block
(Grad-CAM and feature distillation hook it); ``spatial_dims=3`` marks a model of
volumes (B, C, S, S, S) (``meddistill.models.volumes``; 2 when absent).
"""

from __future__ import annotations

from torch import nn

from meddistill.registry import Registry

MODELS = Registry("model")


def available_models(role: str | None = None, spatial_dims: int | None = None) -> list[str]:
    """Registered model names, optionally only ``"teacher"`` or ``"student"`` ones, and only those for images
    (``spatial_dims`` 2) or volumes (3)."""
    names = MODELS.available(role=role) if role else MODELS.available()
    return [n for n in names if spatial_dims is None or model_dims(n) == spatial_dims]


def model_dims(name: str) -> int:
    """3 for a registered model of volumes, else 2 (any other model, timm's included, takes images)."""
    return int(MODELS.entry(name).meta.get("spatial_dims", 2)) if name in MODELS else 2


def target_module(model: nn.Module, layer: str | None = None) -> nn.Module:
    """The module named ``layer`` (default: the model's ``target_layer``)."""
    return model.get_submodule(layer or model.target_layer)
