"""How much to trust a saliency map: deletion and insertion curves as in RISE (Petsiuk et al., 2018).

The image is cut into square blocks at the map's own resolution (at least ``MIN_GRID`` per side). **Deletion**
replaces the blocks the map ranks highest first by a blurred copy of the scan and follows the class probability;
**insertion** starts from the blurred copy and puts the original blocks back in the same order. A faithful map makes
the probability fall fast on deletion (small area under the curve) and rise fast on insertion (large area).

The baseline is a random map **of the same smoothness**: random block orders at the same resolution, averaged over a
few seeds. Removing single pixels in a random order instead turns a scan into salt-and-pepper noise that no model has
seen, so its probability collapses whatever the map, and a random map then looks "more faithful" than Grad-CAM;
blurring blocks keeps the images on the kind of input the model knows.

A volume (C, S, S, S) with an (S, S, S) map is cut into cubes the same way (3D Grad-CAM's grid).

Example:
    >>> result = faithfulness(model, x, heat, grid=7)           # x (C, S, S), heat (S, S)
    >>> result.deletion_area < result.random_deletion_area      # the map beats random on deletion
    >>> result.sentence("Grad-CAM")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch import nn

MIN_GRID = 7  # blocks per side at least, so every curve has enough points
BLUR_SIGMA = 1 / 16  # Gaussian blur of the baseline, as a fraction of the image side
STEPS = 20  # points of each curve after the intact image
RANDOM_SEEDS = 5  # random block orders averaged for the baseline


def blurred_copy(image: torch.Tensor) -> torch.Tensor:
    """The scan (C, S, S) (or volume (C, S, S, S)) blurred with a Gaussian of sigma ``S * BLUR_SIGMA`` (kernel +-2
    sigma)."""
    sigma = max(0.5, image.shape[-1] * BLUR_SIGMA)
    if image.dim() == 4:  # a volume: the same Gaussian along each of the three axes
        from scipy.ndimage import gaussian_filter  # deferred: only volumes need it

        blurred = gaussian_filter(image.cpu().numpy(), sigma=(0, sigma, sigma, sigma), truncate=2.0, mode="reflect")
        return torch.from_numpy(blurred).to(image.device, image.dtype)
    kernel = 2 * math.ceil(2 * sigma) + 1
    return TF.gaussian_blur(image[None], [kernel, kernel], [sigma, sigma])[0]


def block_ids(size: int, grid: int, spatial_dims: int = 2) -> np.ndarray:
    """(S, S) block index of each pixel for a ``grid`` x ``grid`` partition (row-major); (S, S, S) for a
    ``grid``^3 partition of a volume when ``spatial_dims`` is 3."""
    edge = (np.arange(size) * grid) // size
    if spatial_dims == 3:
        return (edge[:, None, None] * grid + edge[None, :, None]) * grid + edge[None, None, :]
    return edge[:, None] * grid + edge[None, :]


def block_order(saliency_map: np.ndarray, grid: int) -> np.ndarray:
    """Blocks ranked by the map's mean inside them, highest first (ties by position)."""
    dims = np.ndim(saliency_map)
    ids = block_ids(saliency_map.shape[0], grid, dims)
    weights = np.asarray(saliency_map, dtype=np.float64).ravel()
    sums = np.bincount(ids.ravel(), weights=weights, minlength=grid**dims)
    counts = np.bincount(ids.ravel(), minlength=grid**dims)
    return np.argsort(-(sums / np.maximum(counts, 1)), kind="stable")


def curves(
    model: nn.Module,
    image: torch.Tensor,
    order: np.ndarray,
    grid: int,
    target: int,
    steps: int = STEPS,
    activation: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deletion and insertion probabilities of ``target`` for one block order, in one batch.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K); evaluated in eval mode, its mode restored after.
        image: Normalised scan (C, S, S).
        order: Block indices, most important first (``block_order``).
        grid: Blocks per side.
        target: Class to follow.
        steps: Points after the intact image.

    Returns:
        ``fractions`` (steps + 1,) of blocks moved, ``deletion`` and ``insertion`` (steps + 1,) probabilities.
    """
    size, dims = image.shape[-1], image.dim() - 1
    blocks = grid**dims
    rank = np.empty(blocks, dtype=np.int64)
    rank[order] = np.arange(blocks)
    pixel_rank = torch.from_numpy(rank[block_ids(size, grid, dims)])
    counts = np.rint(np.linspace(0, blocks, steps + 1)).astype(np.int64)
    limits = torch.from_numpy(counts).view(-1, *[1] * dims)
    moved = (pixel_rank[None] < limits)[:, None]  # (steps + 1, 1, S, S) or (steps + 1, 1, S, S, S)
    blurred = blurred_copy(image)
    deletion = torch.where(moved, blurred[None], image[None])
    insertion = torch.where(moved, image[None], blurred[None])
    probs = probabilities(model, torch.cat([deletion, insertion]), activation)[:, target]
    return counts / blocks, probs[: steps + 1], probs[steps + 1 :]


def probabilities(model: nn.Module, batch: torch.Tensor, activation: Callable | None = None) -> np.ndarray:
    """Probabilities (B, K) float64 of a batch (B, C, S, S) by ``activation`` (default softmax; a sigmoid for
    several findings per image), in eval mode (the model's modes restored)."""
    device = next(iter(model.parameters()), torch.zeros(0)).device
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            logits = model(batch.to(device)).double()
            return (activation(logits) if activation else torch.softmax(logits, dim=1)).double().cpu().numpy()
    finally:
        for m, was in modes:
            m.training = was


def curve_area(fractions: np.ndarray, probs: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (fractions ascending)."""
    f, p = np.asarray(fractions, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    return float(np.sum((p[1:] + p[:-1]) * np.diff(f)) / 2.0)


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of a map and of random maps of the same smoothness (the mean of a few)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    grid: int
    target: int
    spatial_dims: int = 2  # 3: cubes of a volume

    @property
    def deletion_area(self) -> float:
        return curve_area(self.fractions, self.deletion)

    @property
    def insertion_area(self) -> float:
        return curve_area(self.fractions, self.insertion)

    @property
    def random_deletion_area(self) -> float:
        return curve_area(self.fractions, self.random_deletion)

    @property
    def random_insertion_area(self) -> float:
        return curve_area(self.fractions, self.random_insertion)

    def areas(self) -> dict[str, float]:
        return {
            "deletion": self.deletion_area,
            "insertion": self.insertion_area,
            "random_deletion": self.random_deletion_area,
            "random_insertion": self.random_insertion_area,
        }

    def sentence(self, label: str) -> str:
        """Which is more faithful, in words, with both areas of each test."""
        return faithfulness_sentence(label, self.areas(), self.grid, self.spatial_dims)


def faithfulness_sentence(label: str, areas: dict[str, float], grid: int, spatial_dims: int = 2) -> str:
    """'The teacher's Grad-CAM is more faithful than a random map of 7x7 blocks on both tests: deletion area 0.210
    against 0.450 (lower is better), insertion 0.830 against 0.600 (higher is better).'"""
    deletion = areas["random_deletion"] - areas["deletion"]  # > 0: the map wins deletion
    insertion = areas["insertion"] - areas["random_insertion"]  # > 0: the map wins insertion
    if deletion > 0 and insertion > 0:
        verdict = "is more faithful than a random map"
        tail = "on both tests"
    elif deletion <= 0 and insertion <= 0:
        verdict = "is no more faithful than a random map"
        tail = "on either test"
    else:
        verdict = "beats a random map"
        tail = "on " + ("deletion only" if deletion > 0 else "insertion only")
    blocks = "x".join([str(grid)] * spatial_dims)
    return (
        f"{label} {verdict} of {blocks} blocks {tail}: deletion area {areas['deletion']:.3f} against "
        f"{areas['random_deletion']:.3f} (lower is better), insertion {areas['insertion']:.3f} against "
        f"{areas['random_insertion']:.3f} (higher is better)."
    )


def faithfulness(
    model: nn.Module,
    image: torch.Tensor,
    saliency_map: np.ndarray,
    target: int | None = None,
    grid: int | None = None,
    steps: int = STEPS,
    seeds: int = RANDOM_SEEDS,
    activation: Callable | None = None,
) -> Faithfulness:
    """RISE deletion and insertion of ``saliency_map`` against random block orders at the same resolution.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K).
        image: Normalised scan (C, S, S) or (1, C, S, S).
        saliency_map: (S, S) map; larger = more important.
        target: Class to follow; None = the class predicted on the intact image.
        grid: Blocks per side: the map's own resolution (e.g. Grad-CAM's feature map); at least ``MIN_GRID``.
        steps: Points of each curve after the intact image (at most one per block).
        seeds: Random block orders averaged for the baseline.
        activation: Logits -> probabilities (default softmax; the task's sigmoid for findings).

    Raises:
        ValueError: the map and the image differ in size, or the image is not (C, S, S).
    """
    heat = np.asarray(saliency_map)
    dims = 3 if heat.ndim == 3 else 2  # a volume's map is (S, S, S)
    x = image.detach().float()
    x = x[0] if x.dim() == dims + 2 else x
    if x.dim() != dims + 1 or len(set(x.shape[1:])) != 1:
        raise ValueError(f"image must be a square (C, S, S) or (1, C, S, S), got {tuple(image.shape)}")
    size = x.shape[-1]
    if heat.shape != (size,) * dims:
        raise ValueError(f"saliency_map must be {(size,) * dims} like the image, got {heat.shape}")
    grid = min(size, max(MIN_GRID, grid or MIN_GRID))
    steps = min(steps, grid**dims)
    target = int(probabilities(model, x[None], activation)[0].argmax()) if target is None else int(target)
    fractions, deletion, insertion = curves(model, x, block_order(heat, grid), grid, target, steps, activation)
    randoms = [
        curves(model, x, np.random.default_rng(seed).permutation(grid**dims), grid, target, steps, activation)[1:]
        for seed in range(seeds)
    ]
    return Faithfulness(
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        random_deletion=np.mean([r[0] for r in randoms], axis=0),
        random_insertion=np.mean([r[1] for r in randoms], axis=0),
        grid=grid,
        target=target,
        spatial_dims=dims,
    )
