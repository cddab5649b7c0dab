"""From decoded uint8 images to normalised tensors, and batches of them.

In-memory splits (MedMNIST arrays) are converted once into one tensor, so an
epoch is just indexing. File splits are decoded once per run too, at the
training size, the first time a split is iterated, when the decoded tensor fits
under ``DECODE_CEILING_MB`` (``MEDDISTILL_DECODE_MB``, default 4096 MB): later
epochs index it, and augmentation works on the decoded tensors. Larger splits
are decoded batch by batch through a ``DataLoader``, so memory does not grow
with the folder. Both paths give the same tensors, value for value.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from meddistill.data.dataset import ArraySplit, Split

MEAN, STD = 0.5, 0.5
DECODE_CEILING_MB = 4096  # largest decoded file split kept in memory (float32 at the training size)


def decode_ceiling_bytes() -> int:
    """The memory ceiling of a decoded file split, from ``MEDDISTILL_DECODE_MB`` (default ``DECODE_CEILING_MB``)."""
    return int(float(os.environ.get("MEDDISTILL_DECODE_MB", DECODE_CEILING_MB)) * 2**20)


def to_tensor(images: np.ndarray, channels: int, size: int) -> torch.Tensor:
    """Convert uint8 images to a normalised float batch.

    Args:
        images: (N, H, W) grey or (N, H, W, 3) colour uint8.
        channels: Output channels C (1 averages colour to grey; 3 repeats grey).
        size: Output side S (bilinear resize with antialiasing when it differs).

    Returns:
        (N, C, S, S) float32 in about [-1, 1].
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = (x - MEAN) / STD
    return x.contiguous()


def volume_tensor(volumes: np.ndarray, channels: int, size: int) -> torch.Tensor:
    """Convert uint8 volumes to a normalised float batch.

    Args:
        volumes: (N, D, H, W) uint8.
        channels: Output channels C (grey volumes repeated when C is 3).
        size: Output side S of the cube (trilinear resize when a side differs: the model's cube).

    Returns:
        (N, C, S, S, S) float32 in about [-1, 1].
    """
    x = torch.from_numpy(np.ascontiguousarray(volumes)).float().div_(255.0).unsqueeze(1)
    if x.shape[-3:] != (size, size, size):
        x = F.interpolate(x, size=(size, size, size), mode="trilinear", align_corners=False)
    if channels != 1:
        x = x.expand(-1, channels, -1, -1, -1)
    return ((x - MEAN) / STD).contiguous()


def split_tensor(images: np.ndarray, channels: int, size: int, spatial_dims: int = 2) -> torch.Tensor:
    """``to_tensor`` for images, ``volume_tensor`` for volumes (``spatial_dims`` 3)."""
    return volume_tensor(images, channels, size) if spatial_dims == 3 else to_tensor(images, channels, size)


def image_tensor(image: np.ndarray, channels: int, size: int, spatial_dims: int = 2) -> torch.Tensor:
    """One uint8 image (H, W) or (H, W, 3) -> (C, S, S), or one volume (D, H, W) -> (C, S, S, S) float tensor."""
    return split_tensor(image[None], channels, size, spatial_dims)[0]


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random affine (rotation +-10 deg, scale 0.9-1.1, shift +-8%) and brightness/contrast +-10%.

    No flips: left and right matter on a chest X-ray (and in a canonical RAS volume). A volume (B, C, D, H, W) is
    rotated in its last two axes (within each slice), scaled alike in all three and shifted along each.

    Args:
        images: (B, C, S, S) normalised batch, or (B, C, S, S, S) volumes.
        generator: CPU generator, for reproducible augmentation.

    Returns:
        The augmented batch, same shape, on the same device.
    """
    if images.ndim == 5:
        return _augment_volumes(images, generator)
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * (high - low) + low).to(images.device)

    angle = uniform(-10, 10) * math.pi / 180
    scale = uniform(0.9, 1.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, uniform(-0.08, 0.08)], 1), torch.stack([sin, cos, uniform(-0.08, 0.08)], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    background = -MEAN / STD
    out = F.grid_sample(images - background, grid, align_corners=False, padding_mode="zeros") + background
    contrast, brightness = uniform(0.9, 1.1).view(b, 1, 1, 1), uniform(-0.1, 0.1).view(b, 1, 1, 1)
    return out * contrast + brightness / STD


def _augment_volumes(volumes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    b = volumes.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator) * (high - low) + low

    angle = uniform(-10, 10) * math.pi / 180
    scale = uniform(0.9, 1.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero, inverse = torch.zeros(b), 1 / scale
    theta = torch.stack(  # grid axes are (x, y, z) = (W, H, D): rotate x and y, scale z alike
        [
            torch.stack([cos, -sin, zero, uniform(-0.08, 0.08)], 1),
            torch.stack([sin, cos, zero, uniform(-0.08, 0.08)], 1),
            torch.stack([zero, zero, inverse, uniform(-0.08, 0.08)], 1),
        ],
        1,
    ).to(volumes.device, volumes.dtype)
    grid = F.affine_grid(theta, list(volumes.shape), align_corners=False)
    background = -MEAN / STD
    out = F.grid_sample(volumes - background, grid, align_corners=False, padding_mode="zeros") + background
    contrast = uniform(0.9, 1.1).view(b, 1, 1, 1, 1).to(volumes.device)
    brightness = uniform(-0.1, 0.1).view(b, 1, 1, 1, 1).to(volumes.device)
    return out * contrast + brightness / STD


class _DecodedSplit(Dataset):
    def __init__(self, split: Split, channels: int, size: int) -> None:
        self.split, self.channels, self.size = split, channels, size
        self.labels = torch.from_numpy(split.labels)  # (N,) int64 classes or (N, K) float32 findings

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        image = image_tensor(self.split.image(index), self.channels, self.size, self.split.spatial_dims)
        return image, self.labels[index], index


class Batches:
    """Batches of (images (B, C, S, S) or volumes (B, C, S, S, S), labels (B,) or (B, K) findings, indices (B,))
    from one split.

    Args:
        split: The split.
        channels: Model input channels.
        size: Model input side.
        num_workers: Decoding processes for file splits (0 = in this process).
    """

    def __init__(self, split: Split, channels: int, size: int, num_workers: int = 0) -> None:
        self.split, self.channels, self.size, self.num_workers = split, channels, size, num_workers
        self.labels = torch.from_numpy(split.labels)
        self.spatial_dims = split.spatial_dims
        in_memory = isinstance(split, ArraySplit)
        self.images = split_tensor(split.images, channels, size, self.spatial_dims) if in_memory else None

    def __len__(self) -> int:
        return len(self.split)

    def decoded_bytes(self) -> int:
        """Bytes of the whole split decoded at the training size (float32)."""
        return len(self) * self.channels * self.size**self.spatial_dims * 4

    def _decode_once(self) -> None:
        """Decode a file split into one (N, C, S, S) tensor if it fits under the ceiling (see the module docstring)."""
        if self.images is None and len(self) and self.decoded_bytes() <= decode_ceiling_bytes():
            self.images = torch.stack(
                [
                    image_tensor(self.split.image(i), self.channels, self.size, self.spatial_dims)
                    for i in range(len(self))
                ]
            )

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def iterate(
        self, batch_size: int, order: torch.Tensor | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield batches in ``order`` (a permutation of indices) or in split order."""
        order = torch.arange(len(self)) if order is None else order
        self._decode_once()
        if self.images is not None:
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                yield self.images[index], self.labels[index], index
            return
        loader = DataLoader(
            _DecodedSplit(self.split, self.channels, self.size),
            batch_size=batch_size,
            sampler=order.tolist(),
            num_workers=self.num_workers,
            persistent_workers=False,
        )
        yield from loader
