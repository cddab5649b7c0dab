"""Class probabilities of a model over a whole split."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from meddistill.data.tensors import Batches


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Batches,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Class probabilities for a whole split (``activation``: logits -> probabilities, default softmax).

    Returns:
        (N, K) float64 probabilities, in split order.
    """
    model.eval()
    out = []
    for images, _, _ in batches.iterate(batch_size):
        logits = model(images.to(device, non_blocking=True))
        out.append((activation or _softmax)(logits.float()).cpu())
    return torch.cat(out).double().numpy()
