"""Teachers (and one student) from torchvision, adapted to grey or colour input and to small images.

Small-image policy of the ResNets and the DenseNet: up to 96 px the 7x7 stride-2 stem becomes a 3x3 stride-1
convolution followed by the usual 3x3 stride-2 max pool, so a 28 px scan reaches the first block at 14x14 (the
feature maps are not shrunk to nothing, and the first block does not run 64 channels at full resolution, which
costs 4x the FLOPs for no gain in validation accuracy on MedMNIST: docs/benchmarks.md). ``resnet18_fullres``
keeps the MedMNIST v2 / CIFAR stem without the pool at 32 px or less, the layout ``resnet18`` had before layout 2.
EfficientNet and MobileNet get a stride-1 first convolution at 32 px or less.

``layout`` in the registry records the version of a model's layout; weights saved with another layout are
refused by ``meddistill.io.weights.load_weights`` instead of being loaded into a network they do not fit.
"""

from __future__ import annotations

import torchvision
from torch import nn

from meddistill.models.registry import MODELS


def _stem(image_size: int) -> str:
    """How much the stem may downsample: 'none' (<=32 px), 'half' (<=96 px) or 'standard'."""
    if image_size <= 32:
        return "none"
    return "half" if image_size <= 96 else "standard"


def _conv_like(conv: nn.Conv2d, in_channels: int, *, kernel: int | None = None, stride: int | None = None) -> nn.Conv2d:
    """A fresh Conv2d like ``conv`` with other input channels, kernel or stride."""
    kernel = kernel or conv.kernel_size[0]
    return nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=kernel,
        stride=stride or conv.stride[0],
        padding=kernel // 2,
        bias=conv.bias is not None,
    )


def _adapt_resnet(model: nn.Module, in_channels: int, image_size: int, pool_small: bool = True) -> nn.Module:
    """ResNet stem for ``image_size``: standard, or a 3x3 stride-1 conv with (``pool_small``) or without the pool."""
    stem = _stem(image_size)
    if stem == "standard":
        model.conv1 = _conv_like(model.conv1, in_channels)
    else:
        model.conv1 = _conv_like(model.conv1, in_channels, kernel=3, stride=1)
        if stem == "none" and not pool_small:
            model.maxpool = nn.Identity()
    return model


@MODELS.register("resnet18", role="teacher", target_layer="layer4", layout=2)
def _resnet18(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _adapt_resnet(torchvision.models.resnet18(num_classes=num_classes), in_channels, image_size)


@MODELS.register("resnet18_fullres", role="teacher", target_layer="layer4")
def _resnet18_fullres(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    model = torchvision.models.resnet18(num_classes=num_classes)
    return _adapt_resnet(model, in_channels, image_size, pool_small=False)


@MODELS.register("resnet50", role="teacher", target_layer="layer4", layout=2)
def _resnet50(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _adapt_resnet(torchvision.models.resnet50(num_classes=num_classes), in_channels, image_size)


@MODELS.register("densenet121", role="teacher", target_layer="features", layout=2)
def _densenet121(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    model = torchvision.models.densenet121(num_classes=num_classes)
    conv0 = model.features.conv0
    if _stem(image_size) == "standard":
        model.features.conv0 = _conv_like(conv0, in_channels)
    else:
        model.features.conv0 = _conv_like(conv0, in_channels, kernel=3, stride=1)
    return model


def _adapt_first_conv(features: nn.Sequential, in_channels: int, image_size: int) -> None:
    """For EfficientNet/MobileNet: first block's conv gets C inputs, stride 1 for tiny inputs."""
    conv = features[0][0]
    features[0][0] = _conv_like(conv, in_channels, stride=1 if _stem(image_size) == "none" else None)


@MODELS.register("efficientnet_b0", role="teacher", target_layer="features.8")
def _efficientnet_b0(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    model = torchvision.models.efficientnet_b0(num_classes=num_classes)
    _adapt_first_conv(model.features, in_channels, image_size)
    return model


@MODELS.register("mobilenet_v3_small", role="student", target_layer="features.12")
def _mobilenet_v3_small(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    model = torchvision.models.mobilenet_v3_small(num_classes=num_classes)
    _adapt_first_conv(model.features, in_channels, image_size)
    return model
