"""Small students meant to be distilled: a plain CNN and a narrow ResNet-10."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from meddistill.models.registry import MODELS


def conv_bn_relu(c_in: int, c_out: int, stride: int, spatial_dims: int = 2) -> nn.Sequential:
    """A 3x3 (3x3x3 for ``spatial_dims`` 3) convolution, batch norm and ReLU."""
    conv, norm = (nn.Conv3d, nn.BatchNorm3d) if spatial_dims == 3 else (nn.Conv2d, nn.BatchNorm2d)
    return nn.Sequential(
        conv(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        norm(c_out),
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
        blocks = [conv_bn_relu(in_channels, 16, first_stride)]
        if image_size > 64:
            blocks[0].append(nn.MaxPool2d(2))
        blocks += [conv_bn_relu(16, 32, 2), conv_bn_relu(32, 64, 2), conv_bn_relu(64, 96, 2)]
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
        self.stem = conv_bn_relu(in_channels, widths[0], stride)
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
