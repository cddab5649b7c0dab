"""Saliency maps as arrays: scaling to [0, 1], comparing two maps, and random baseline maps."""

from __future__ import annotations

import numpy as np
import torch


def normalise(raw: np.ndarray | torch.Tensor) -> np.ndarray:
    """Min-max scale to float32 [0, 1]; NaN/inf become 0 and a flat map (range < 1e-6 of its magnitude)
    becomes zeros.
    """
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    m = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if not hi - lo > 1e-6 * max(abs(hi), abs(lo)):  # relative: untrained nets give tiny but real maps
        return np.zeros(m.shape, dtype=np.float32)
    return np.clip((m - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def flat(saliency_map: np.ndarray) -> np.ndarray:
    """(H, W) map -> (H*W,) float64 with NaN/inf as 0."""
    return np.nan_to_num(np.asarray(saliency_map, dtype=np.float64)).ravel()


def _check_same_shape(map_a: np.ndarray, map_b: np.ndarray) -> None:
    if np.shape(map_a) != np.shape(map_b):
        raise ValueError(f"maps must have the same shape, got {np.shape(map_a)} and {np.shape(map_b)}")


def pearson(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Pearson correlation of two maps (H, W) over all pixels; 0.0 if either is constant."""
    _check_same_shape(map_a, map_b)
    a, b = flat(map_a), flat(map_b)
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= 1e-12:
        return 0.0
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def top_mask(saliency_map: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Boolean mask (H, W) of the ``fraction`` most salient pixels (at least one; ties by position)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = flat(saliency_map)
    k = max(1, int(round(fraction * values.size)))
    mask = np.zeros(values.size, dtype=bool)
    mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask.reshape(np.shape(saliency_map))


def top_iou(map_a: np.ndarray, map_b: np.ndarray, fraction: float = 0.2) -> float:
    """Intersection over union of the top-``fraction`` pixel sets of two maps (H, W)."""
    _check_same_shape(map_a, map_b)
    a, b = top_mask(map_a, fraction), top_mask(map_b, fraction)
    return float((a & b).sum() / (a | b).sum())


def random_map(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A uniform random map of ``shape`` in [0, 1) (float32), the baseline for the deletion test."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)
