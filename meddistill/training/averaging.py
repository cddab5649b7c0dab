"""Exponential moving average of the weights, and class weights for the loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def moving_average(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s parameters and buffers, with a warm-up of the decay.

    The decay after ``n`` steps is ``min(decay, (1 + n) / (10 + n))``, as in timm's ``ModelEmaV3``.
    """

    @torch.no_grad()
    def blend(averages: list[torch.Tensor], currents: list[torch.Tensor], steps: torch.Tensor) -> None:
        weight = min(decay, (1 + int(steps)) / (10 + int(steps)))  # one read of the step count per device and dtype
        for average, current in zip(averages, currents):
            average.copy_(average * weight + current * (1 - weight))

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=blend, use_buffers=True)


def class_weights_for(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (K,), normalised to mean 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = counts.sum() / np.maximum(counts, 1) / num_classes
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)
