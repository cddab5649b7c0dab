"""Model registry: teachers and students built by name.

Teachers are torchvision architectures with random initialisation; students
are small networks meant to be distilled. Every model is adapted to the input
channels (1 for grey scans, 3 for colour) and to small inputs the way the
MedMNIST v2 baselines do it: for 28x28 images the 7x7 stride-2 stem and the max
pool are replaced by one 3x3 stride-1 convolution, so the feature maps are not
shrunk to nothing.

Example:
    >>> model = create_model("resnet18", num_classes=2, in_channels=1, image_size=28)
    >>> model(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from meddistill.registry import Registry

MODELS = Registry("model")


def available_models(role: str | None = None) -> list[str]:
    """Registered model names, optionally only ``"teacher"`` or ``"student"`` ones."""
    return MODELS.available(role=role) if role else MODELS.available()


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    image_size: int = 28,
    weights: str | None = None,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: A name from ``available_models()``.
        num_classes: Number of output logits K.
        in_channels: Image channels C (1 grey, 3 colour).
        image_size: Side S of the square input; small inputs get a stride-1 stem.
        weights: Optional local ``.safetensors`` file to load (never a hub download).

    Returns:
        A module mapping images (B, C, S, S) to logits (B, K). Its attribute
        ``target_layer`` names the last convolutional block (for Grad-CAM and
        feature distillation) and ``arch`` the registry name.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    entry = MODELS.entry(name)
    model = entry.factory(num_classes, in_channels, image_size)
    model.arch = name
    model.target_layer = entry.meta["target_layer"]
    if weights:
        from meddistill.weights import load_weights

        load_weights(model, weights)
    return model


def target_module(model: nn.Module, layer: str | None = None) -> nn.Module:
    """The module named ``layer`` (default: the model's ``target_layer``)."""
    return model.get_submodule(layer or model.target_layer)


@dataclass(frozen=True)
class ModelInfo:
    """Size and cost of a model for one input shape."""

    params: int
    size_mb: float
    flops: int


def model_info(model: nn.Module, in_channels: int, image_size: int) -> ModelInfo:
    """Parameters, size in MB (float32 weights and buffers) and FLOPs per image.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
    (1, C, S, S) input in eval mode.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    model.train(was_training)
    return ModelInfo(params=params, size_mb=nbytes / 1e6, flops=int(counter.get_total_flops()))


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


def _adapt_resnet(model: nn.Module, in_channels: int, image_size: int) -> nn.Module:
    stem = _stem(image_size)
    if stem == "standard":
        model.conv1 = _conv_like(model.conv1, in_channels)
    else:
        model.conv1 = _conv_like(model.conv1, in_channels, kernel=3, stride=1)
        if stem == "none":
            model.maxpool = nn.Identity()
    return model


@MODELS.register("resnet18", role="teacher", target_layer="layer4")
def _resnet18(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _adapt_resnet(torchvision.models.resnet18(num_classes=num_classes), in_channels, image_size)


@MODELS.register("resnet50", role="teacher", target_layer="layer4")
def _resnet50(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _adapt_resnet(torchvision.models.resnet50(num_classes=num_classes), in_channels, image_size)


@MODELS.register("densenet121", role="teacher", target_layer="features")
def _densenet121(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    model = torchvision.models.densenet121(num_classes=num_classes)
    stem = _stem(image_size)
    conv0 = model.features.conv0
    if stem == "standard":
        model.features.conv0 = _conv_like(conv0, in_channels)
    else:
        model.features.conv0 = _conv_like(conv0, in_channels, kernel=3, stride=1)
        if stem == "none":
            model.features.pool0 = nn.Identity()
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


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    """A plain four-block CNN of about 80k parameters.

    Blocks of 3x3 conv, batch norm and ReLU with 16, 32, 64 and 96 channels;
    the last three halve the resolution. Inputs over 64 px are first reduced
    by a stride-2 convolution and a max pool.
    """

    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        first_stride = 2 if image_size > 64 else 1
        blocks = [_conv_bn_relu(in_channels, 16, first_stride)]
        if image_size > 64:
            blocks[0].append(nn.MaxPool2d(2))
        blocks += [_conv_bn_relu(16, 32, 2), _conv_bn_relu(32, 64, 2), _conv_bn_relu(64, 96, 2)]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(96, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map images (B, C, S, S) to logits (B, K)."""
        return self.classifier(self.pool(self.features(images)))


@MODELS.register("tiny_cnn", role="student", target_layer="features.3")
def _tiny_cnn(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return TinyCNN(num_classes, in_channels, image_size)


class NarrowResNet(nn.Module):
    """A ResNet-10 of BasicBlocks with widths 16-32-64-128 (about 0.3M parameters)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, widths=(16, 32, 64, 128)) -> None:
        super().__init__()
        stride = 1 if image_size <= 96 else 2
        self.stem = _conv_bn_relu(in_channels, widths[0], stride)
        if image_size > 96:
            self.stem.append(nn.MaxPool2d(2))
        layers, c_in = [], widths[0]
        for i, width in enumerate(widths):
            block_stride = 1 if i == 0 else 2
            down = None
            if block_stride != 1 or c_in != width:
                down = nn.Sequential(nn.Conv2d(c_in, width, 1, block_stride, bias=False), nn.BatchNorm2d(width))
            layers.append(BasicBlock(c_in, width, block_stride, down))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map images (B, C, S, S) to logits (B, K)."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(images)))))
        return self.fc(torch.flatten(self.pool(x), 1))


@MODELS.register("resnet_narrow", role="student", target_layer="layer4")
def _resnet_narrow(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return NarrowResNet(num_classes, in_channels, image_size)
