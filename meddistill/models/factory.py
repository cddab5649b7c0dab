"""Build a registered model by name, and measure its size and cost.

Example:
    >>> model = create_model("resnet18", num_classes=2, in_channels=1, image_size=28)
    >>> model(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from meddistill.io.weights import load_weights
from meddistill.models.registry import MODELS
from meddistill.models.timm_models import create_timm_model, timm_name


def is_timm_model(name: str) -> bool:
    """Whether ``name`` builds a timm model: not one of MedDistill's own (``resnet18``), but known to timm
    (``timm/resnet18``, ``mobilenetv4_conv_small``)."""
    return name not in MODELS and timm_name(name) is not None


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    image_size: int = 28,
    weights: str | None = None,
    pretrained: dict[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Build one of MedDistill's models, or any timm model (``meddistill.models.timm_models``).

    Args:
        name: A name from ``available_models()``, or a timm model name (``timm/NAME`` always means timm's).
        num_classes: Number of output logits K.
        in_channels: Image channels C (1 grey, 3 colour).
        image_size: Side S of the square input; small inputs get a stride-1 stem.
        weights: Optional local ``.safetensors`` file to load (never a hub download).
        pretrained: ImageNet weights to start a timm model from (``meddistill.models.pretrained``).

    Returns:
        A module mapping images (B, C, S, S) (volumes (B, C, S, S, S) for a 3D model) to logits (B, K). Its attribute
        ``spatial_dims`` is 2 or 3,
        ``target_layer`` names the last convolutional block (for Grad-CAM and
        feature distillation), ``arch`` the registry name and ``layout`` the version of its layout (weights
        saved with another layout are refused on load).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    if is_timm_model(name):
        model = create_timm_model(name, num_classes, in_channels, image_size, state_dict=pretrained)
        if weights:
            load_weights(model, weights)
        return model
    entry = MODELS.entry(name)
    model = entry.factory(num_classes, in_channels, image_size)
    model.arch = name
    model.spatial_dims = int(entry.meta.get("spatial_dims", 2))
    model.target_layer = entry.meta["target_layer"]
    model.layout = str(entry.meta.get("layout", 1))
    if weights:
        load_weights(model, weights)
    return model


def example_input(model: nn.Module, channels: int, size: int, batch: int = 1) -> torch.Tensor:
    """Zeros of the shape ``model`` takes: (B, C, S, S), or (B, C, S, S, S) for a model of volumes, on its
    device."""
    device = next(iter(model.parameters()), torch.zeros(0)).device
    return torch.zeros(batch, channels, *[size] * getattr(model, "spatial_dims", 2), device=device)


@dataclass(frozen=True)
class ModelInfo:
    """Size and cost of a model for one input shape."""

    params: int
    size_mb: float
    flops: int


def model_info(model: nn.Module, in_channels: int, image_size: int) -> ModelInfo:
    """Parameters, size in MB (float32 weights and buffers) and FLOPs per image.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
    (1, C, S, S) input ((1, C, S, S, S) for a model of volumes) in eval mode.
    """
    params = getattr(model, "parameter_count", None)  # an imported ONNX/TorchScript teacher counts its own
    params = sum(p.numel() for p in model.parameters()) if params is None else params
    nbytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example_input(model, in_channels, image_size))
    model.train(was_training)
    return ModelInfo(params=params, size_mb=nbytes / 1e6, flops=int(counter.get_total_flops()))


def check_model_name(name: str) -> str:
    """``name`` if it is one of MedDistill's models or a timm model.

    Raises:
        ValueError: neither (lists MedDistill's models and says where timm's are listed).
    """
    if name in MODELS or timm_name(name):
        return name
    try:
        MODELS.entry(name)
    except ValueError as error:
        raise ValueError(f"{error}; or any timm model name (timm.list_models())") from None
    return name
