"""3D models for volumes (``spatial_dims=3`` in the registry): MONAI's 3D ResNets as teachers, a small 3D CNN
as the student.

They map volumes (B, C, S, S, S) to logits (B, K). The teachers are ``monai.networks.nets.resnet10`` /
``resnet18`` (Chen et al.'s MedicalNet layout), with the stem set for small cubes as the 2D models' are: up to 32
voxels a 3x3x3 stride-2 convolution without the max pool, so a 28^3 volume reaches the first block at 14^3 and the
last at 2^3 (the Grad-CAM grid); larger cubes keep the max pool (64^3 reaches the first block at 16^3).
``resnet10_3d`` is half as wide (32-64-128-256 channels, MONAI's ``widen_factor=0.5``): on 2 cores held to AVX2 a
training step costs 29.5 ms per 28^3 volume against 96.6 ms at full width (AMD EPYC, batch 32;
``benchmarks/volume_teachers.py``, ``docs/volumes.md``), which is what brings the default run under 10 minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from meddistill.models.registry import MODELS
from meddistill.models.students import conv_bn_relu

SMALL_CUBE = 32  # up to this side, the stem keeps the resolution a max pool would halve


def _monai_resnet(depth: int, num_classes: int, in_channels: int, image_size: int, widen: float) -> nn.Module:
    from monai.networks.nets import resnet10, resnet18  # deferred: importing MONAI takes a second

    build = {10: resnet10, 18: resnet18}[depth]
    return build(
        spatial_dims=3,
        n_input_channels=in_channels,
        num_classes=num_classes,
        conv1_t_size=3,
        conv1_t_stride=2,
        no_max_pool=image_size <= SMALL_CUBE,
        widen_factor=widen,
    )


@MODELS.register("resnet10_3d", role="teacher", target_layer="layer4", spatial_dims=3)
def _resnet10_3d(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _monai_resnet(10, num_classes, in_channels, image_size, widen=0.5)


@MODELS.register("resnet18_3d", role="teacher", target_layer="layer4", spatial_dims=3)
def _resnet18_3d(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _monai_resnet(18, num_classes, in_channels, image_size, widen=1.0)


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return conv_bn_relu(c_in, c_out, stride, spatial_dims=3)


class TinyCNN3d(nn.Module):
    """A plain four-block 3D CNN of about 73k parameters, to be distilled.

    Blocks of 3x3x3 conv, batch norm and ReLU with 8, 16, 32 and 64 channels; the first three halve the
    resolution (28^3 -> 14^3 -> 7^3 -> 4^3, the Grad-CAM grid), the last keeps it. Cubes over 32 voxels are
    first reduced by a max pool. About 6 MFLOPs multiply-adds at 28^3, against about 280 for ``resnet10_3d``.
    """

    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        blocks = [_block(in_channels, 8, 2)]
        if image_size > SMALL_CUBE:
            blocks[0].append(nn.MaxPool3d(2))
        blocks += [_block(8, 16, 2), _block(16, 32, 2), _block(32, 64, 1)]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, num_classes))

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        """Map volumes (B, C, S, S, S) to logits (B, K)."""
        return self.classifier(self.pool(self.features(volumes)))


@MODELS.register("tiny_cnn_3d", role="student", target_layer="features.3", spatial_dims=3)
def _tiny_cnn_3d(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return TinyCNN3d(num_classes, in_channels, image_size)
