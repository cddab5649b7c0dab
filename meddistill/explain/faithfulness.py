"""How much to trust a saliency map: the deletion test (Petsiuk et al., RISE, 2018).

:func:`deletion_curve` removes the pixels a map calls most important first
and follows the class probability. A faithful map makes the probability fall
fast, so the area under the curve (:func:`curve_area`) is smaller than for a
random map (:func:`meddistill.explain.maps.random_map`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from meddistill.explain.maps import flat


def deletion_curve(
    model: nn.Module,
    image: torch.Tensor,
    saliency_map: np.ndarray,
    target: int | None = None,
    steps: int = 20,
    baseline: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability of the target class as the most salient pixels are removed.

    Pixel ranks come from ``saliency_map`` (highest first, ties by position);
    step i sets the first ``round(i * S * S / steps)`` pixels, in all channels,
    to ``baseline``. All ``steps + 1`` images go through the model in one batch,
    in eval mode (the model's mode is restored after).

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K).
        image: Normalised input (C, S, S) or (1, C, S, S).
        saliency_map: (S, S) map; larger = more important.
        target: Class to follow; None = the class predicted on the intact image.
        steps: Number of equal chunks of pixels.
        baseline: Value of a removed pixel; None = the image minimum.

    Returns:
        ``fractions`` (steps + 1,) of pixels removed, from 0 to 1, and
        ``probs`` (steps + 1,) softmax probability of the target class.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = image.detach().float()
    x = x[0] if x.dim() == 4 else x
    if x.dim() != 3:
        raise ValueError(f"image must be (C, S, S) or (1, C, S, S), got {tuple(image.shape)}")
    _, height, width = x.shape
    sal = np.asarray(saliency_map)
    if sal.shape != (height, width):
        raise ValueError(f"saliency_map must be {(height, width)} like the image, got {sal.shape}")
    n = height * width
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-flat(sal), kind="stable")] = np.arange(n)
    counts = np.rint(np.linspace(0, n, steps + 1)).astype(np.int64)
    removed = torch.from_numpy(rank[None, :] < counts[:, None]).reshape(steps + 1, 1, height, width)
    fill = float(x.min()) if baseline is None else float(baseline)
    device = next(model.parameters()).device
    batch = torch.where(removed, torch.tensor(fill), x[None]).to(device)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            probs = torch.softmax(model(batch).double(), dim=1).cpu().numpy()
    finally:
        for m, was in modes:
            m.training = was
    target = int(probs[0].argmax()) if target is None else int(target)
    return counts / n, probs[:, target]


def curve_area(fractions: np.ndarray, probs: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (fractions ascending)."""
    f, p = np.asarray(fractions, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    return float(np.sum((p[1:] + p[:-1]) * np.diff(f)) / 2.0)
