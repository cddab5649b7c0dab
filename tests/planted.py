"""Training a small model on planted-signal data until it separates the classes (the Grad-CAM tests, 2D and 3D)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def train_until(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    test_x: torch.Tensor,
    test_labels: np.ndarray,
    epochs: int,
    batch: int,
) -> float:
    """Adam (lr 3e-3, seed 0 batch order) for up to ``epochs`` over (x, y), stopping once the test accuracy passes
    0.97; returns the last test accuracy."""
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(x), generator=order).split(batch):
            loss = F.cross_entropy(model(x[index]), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(test_x).argmax(1).numpy() == test_labels).mean())
        if accuracy > 0.97:
            break
    return accuracy
