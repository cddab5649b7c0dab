"""Both models on the same scan: their predictions, their maps and how much the maps agree."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from meddistill.data.tensors import image_tensor
from meddistill.explain.maps import pearson, top_iou
from meddistill.explain.methods import predict_proba, saliency


@dataclass
class Explanation:
    """One model's answer for one image: predicted class, probabilities (K,) and map (S, S) ((S, S, S) for a
    volume)."""

    predicted: int
    probabilities: list[float]
    saliency: np.ndarray = field(repr=False)


def explain_pair(
    teacher: nn.Module,
    student: nn.Module,
    image_uint8: np.ndarray,
    channels: int,
    size: int,
    method: str = "gradcam",
    target: int | None = None,
    activation=None,
    spatial_dims: int = 2,
) -> dict:
    """Explain one scan (or volume) with both models, for the dashboard.

    Both maps explain the same class (``target``, default the teacher's
    prediction), so they can be compared.

    Args:
        teacher: Teacher network (B, C, S, S) -> (B, K).
        student: Student network with the same input and classes.
        image_uint8: (H, W) or (H, W, 3) uint8 scan, or a (D, H, W) volume (``spatial_dims`` 3).
        channels: Model input channels C.
        size: Model input side S.
        method: A name from ``available_explainers()``.
        target: Class (or finding) to explain (default: the teacher's most probable one).
        activation: Logits -> probabilities (default softmax; the task's sigmoid for several findings per image).
        spatial_dims: 2 for images, 3 for volumes (maps and agreement then in 3D).

    Returns:
        ``{"teacher": Explanation, "student": Explanation, "target": int,
        "method": str, "agreement": {"pearson": float, "iou": float}}``.
    """
    x = image_tensor(np.asarray(image_uint8), channels, size, spatial_dims)
    out = {"method": method}
    probs = {role: predict_proba(model, x, activation) for role, model in (("teacher", teacher), ("student", student))}
    out["target"] = int(probs["teacher"].argmax()) if target is None else int(target)
    for role, model in (("teacher", teacher), ("student", student)):
        heat = saliency(model, x, out["target"], method)
        out[role] = Explanation(int(probs[role].argmax()), [float(p) for p in probs[role]], heat)
    out["agreement"] = {
        "pearson": pearson(out["teacher"].saliency, out["student"].saliency),
        "iou": top_iou(out["teacher"].saliency, out["student"].saliency),
    }
    return out


def mean_saliency_agreement(
    teacher: nn.Module, student: nn.Module, batch: torch.Tensor, method: str = "gradcam"
) -> dict:
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
    if batch.dim() not in (4, 5) or len(batch) == 0:
        raise ValueError(f"batch must be a non-empty (N, C, S, S) or (N, C, S, S, S) tensor, got {tuple(batch.shape)}")
    scores = []
    for image in batch:
        target = int(predict_proba(teacher, image).argmax())
        a, b = saliency(teacher, image, target, method), saliency(student, image, target, method)
        scores.append((pearson(a, b), top_iou(a, b)))
    mean = np.mean(scores, axis=0)
    return {"pearson": float(mean[0]), "iou": float(mean[1])}
