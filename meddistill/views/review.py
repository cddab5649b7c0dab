"""What the Review page shows for one case: the scan at its stored resolution, both models' maps on it (one colour
scale) and where they differ, in plain Python for the page."""

from __future__ import annotations

import numpy as np

from meddistill.explain.methods import available_explainers, explainer_label
from meddistill.explain.overlay import difference, overlay
from meddistill.explain.pair import explain_pair

SHORTCUTS = {"agree": "a", "disagree": "d", "unsure": "u", "next": "n", "previous": "p"}


def review_images(
    teacher,
    student,
    image: np.ndarray,
    channels: int,
    size: int,
    target: int | None = None,
    activation=None,
    spatial_dims: int = 2,
) -> dict:
    """The four pictures of a case, all at the scan's stored (H, W); for a volume (``spatial_dims`` 3) the pair of
    3D maps under ``"pair"`` instead, which the page shows as planes.

    Args:
        teacher: The run's teacher (B, C, S, S) -> (B, K).
        student: The distilled student.
        image: The stored scan, uint8 (H, W) or (H, W, 3).
        channels: Model input channels C.
        size: The side S the models were trained at (the maps are computed at S and shown at H x W).
        target: The class or finding the maps explain (default: the teacher's most probable).
        activation: The task's logits -> probabilities (default softmax).

    Returns:
        ``{"scan", "teacher", "student", "difference"}`` uint8 images of the stored size, ``"method"`` (the map's
        name: Grad-CAM, or Occlusion for a teacher known only by its outputs), ``"target"``, ``"agreement"``.
    """
    method = "gradcam" if "gradcam" in available_explainers(teacher) else "occlusion"
    pair = explain_pair(teacher, student, image, channels, size, method, target, activation, spatial_dims)
    if spatial_dims == 3:  # a volume: the page shows its planes (``meddistill.explain.planes``) from the pair
        return {
            "pair": pair,
            "method": explainer_label(method),
            "target": pair["target"],
            "agreement": pair["agreement"],
        }
    shape = np.asarray(image).shape[:2]
    return {
        "scan": np.asarray(image),
        "teacher": overlay(image, pair["teacher"].saliency),
        "student": overlay(image, pair["student"].saliency),
        "difference": difference(pair["teacher"].saliency, pair["student"].saliency, shape),
        "method": explainer_label(method),
        "target": pair["target"],
        "agreement": pair["agreement"],
    }
