"""The model registry: ``@MODELS.register(name, role=..., target_layer=...)`` on a factory.

A factory takes ``(num_classes, in_channels, image_size)`` and returns a module
mapping (B, C, S, S) to logits (B, K). ``role`` ("teacher" or "student") sorts
the names in the pickers; ``target_layer`` names the last convolutional block
(Grad-CAM and feature distillation hook it).
"""

from __future__ import annotations

from torch import nn

from meddistill.registry import Registry

MODELS = Registry("model")


def available_models(role: str | None = None) -> list[str]:
    """Registered model names, optionally only ``"teacher"`` or ``"student"`` ones."""
    return MODELS.available(role=role) if role else MODELS.available()


def target_module(model: nn.Module, layer: str | None = None) -> nn.Module:
    """The module named ``layer`` (default: the model's ``target_layer``)."""
    return model.get_submodule(layer or model.target_layer)
