"""How much to trust a saliency map: agreement between two maps, and the deletion test.

* :func:`pearson` and :func:`top_iou` compare two maps of the same image
  (teacher vs student): linear correlation of all pixels, and the overlap of
  the most salient 20% of the pixels.
* :func:`deletion_curve` removes the pixels a map calls most important first
  and follows the class probability (Petsiuk et al., RISE, 2018). A faithful
  map makes the probability fall fast, so the area under the curve
  (:func:`curve_area`) is smaller than for a random map (:func:`random_map`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _flat(saliency_map: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(saliency_map, dtype=np.float64)).ravel()


def _check_same_shape(map_a: np.ndarray, map_b: np.ndarray) -> None:
    if np.shape(map_a) != np.shape(map_b):
        raise ValueError(f"maps must have the same shape, got {np.shape(map_a)} and {np.shape(map_b)}")


def pearson(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Pearson correlation of two maps (H, W) over all pixels; 0.0 if either is constant."""
    _check_same_shape(map_a, map_b)
    a, b = _flat(map_a), _flat(map_b)
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= 1e-12:
        return 0.0
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def top_mask(saliency_map: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Boolean mask (H, W) of the ``fraction`` most salient pixels (at least one; ties by position)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    flat = _flat(saliency_map)
    k = max(1, int(round(fraction * flat.size)))
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(np.shape(saliency_map))


def top_iou(map_a: np.ndarray, map_b: np.ndarray, fraction: float = 0.2) -> float:
    """Intersection over union of the top-``fraction`` pixel sets of two maps (H, W)."""
    _check_same_shape(map_a, map_b)
    a, b = top_mask(map_a, fraction), top_mask(map_b, fraction)
    return float((a & b).sum() / (a | b).sum())


def random_map(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A uniform random map of ``shape`` in [0, 1) (float32), the baseline for the deletion test."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def deletion_curve(model: nn.Module, image: torch.Tensor, saliency_map: np.ndarray, target: int | None = None,
                   steps: int = 20, baseline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    rank[np.argsort(-_flat(sal), kind="stable")] = np.arange(n)
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


def mean_saliency_agreement(teacher: nn.Module, student: nn.Module, batch: torch.Tensor, method: str = "gradcam") -> dict:
    """Average map agreement of teacher and student over a batch.

    For each image both maps explain the teacher's predicted class.

    Args:
        teacher: Teacher network (B, C, S, S) -> (B, K).
        student: Student network with the same input and classes.
        batch: Normalised images (N, C, S, S).
        method: A name from ``meddistill.explain.available_explainers()``.

    Returns:
        ``{"pearson": float, "iou": float}`` means over the N images (top-20% IoU).
    """
    from meddistill.explain import predict_proba, saliency

    if batch.dim() != 4 or len(batch) == 0:
        raise ValueError(f"batch must be a non-empty (N, C, S, S) tensor, got {tuple(batch.shape)}")
    scores = []
    for image in batch:
        target = int(predict_proba(teacher, image).argmax())
        a, b = saliency(teacher, image, target, method), saliency(student, image, target, method)
        scores.append((pearson(a, b), top_iou(a, b)))
    mean = np.mean(scores, axis=0)
    return {"pearson": float(mean[0]), "iou": float(mean[1])}
