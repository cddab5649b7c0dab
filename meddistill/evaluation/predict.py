"""Class probabilities of a model over a whole split."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from meddistill.data.tensors import Batches


@torch.no_grad()
def predict(
    model: nn.Module, batches: Batches, device: torch.device | str = "cpu", batch_size: int = 256
) -> np.ndarray:
    """Class probabilities for a whole split.

    Returns:
        (N, K) float64 probabilities, in split order.
    """
    model.eval()
    out = []
    for images, _, _ in batches.iterate(batch_size):
        logits = model(images.to(device, non_blocking=True))
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out).double().numpy()
