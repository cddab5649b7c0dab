"""Where a model looks: saliency maps (Grad-CAM, occlusion, integrated gradients) and overlays.

Each method is a small class in the ``EXPLAINERS`` registry (in the manner of
pytorch-grad-cam's method classes) that returns a raw attribution; captum does
the work in its two steps (build the attribution object, then ``attribute``).
:func:`saliency` turns that into an (S, S) map in [0, 1] and leaves the model
exactly as it found it: same train/eval mode, same ``requires_grad`` flags,
no hooks left behind, no gradient accumulated in the parameters.

Example:
    >>> x = image_tensor(scan_uint8, channels=1, size=28)      # (1, 28, 28)
    >>> heat = saliency(model, x, method="gradcam")            # (28, 28) in [0, 1]
    >>> picture = overlay(scan_uint8, heat)                    # (H, W, 3) uint8
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn

from meddistill.faithfulness import pearson, top_iou
from meddistill.models import target_module
from meddistill.registry import Registry

EXPLAINERS = Registry("explainer")
IG_STEPS = 32
_LOCK = threading.RLock()  # the model is modified temporarily (eval mode, inplace flags)
_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
               "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")


def available_explainers() -> list[str]:
    """Registered saliency method names (``gradcam``, ``integrated_gradients``, ``occlusion``)."""
    return EXPLAINERS.available()


class Explainer:
    """A saliency method bound to one model.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K), already in eval mode.
        layer: Dotted module name for layer methods (default: ``model.target_layer``).
    """

    def __init__(self, model: nn.Module, layer: str | None = None) -> None:
        self.model, self.layer = model, layer

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        """Raw attribution (S, S) for one image (1, C, S, S) and class ``target``."""
        raise NotImplementedError


@EXPLAINERS.register("gradcam", label="Grad-CAM", uses_layer=True)
class GradCAM(Explainer):
    """Grad-CAM: channel weights = mean gradient of the class score over the layer's
    feature map, CAM = ReLU(sum_k w_k A_k), upsampled bilinearly to the input."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import LayerAttribution, LayerGradCam

        cam = LayerGradCam(self.model, target_module(self.model, self.layer)).attribute(image, target=target, relu_attributions=True)
        if cam.dim() != 4:
            raise ValueError(f"Grad-CAM needs a convolutional layer with (B, C, H, W) output; {self.layer or self.model.target_layer!r} gave {tuple(cam.shape)}")
        return LayerAttribution.interpolate(cam, tuple(image.shape[-2:]), interpolate_mode="bilinear")[0, 0]


@EXPLAINERS.register("occlusion", label="Occlusion", uses_layer=False)
class OcclusionMap(Explainer):
    """Occlusion: slide a square window (about S/7, odd) with stride about half of it,
    fill it with the image minimum and record the drop of the class score."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import Occlusion

        side = min(image.shape[-2:])
        window = max(1, round(side / 7)) | 1  # odd
        stride = max(1, window // 2)
        attr = Occlusion(self.model).attribute(
            image, sliding_window_shapes=(image.shape[1], window, window), strides=(image.shape[1], stride, stride),
            baselines=float(image.min()), target=target, perturbations_per_eval=32,
        )
        return attr[0].abs().sum(0)


@EXPLAINERS.register("integrated_gradients", label="Integrated gradients", uses_layer=False)
class IntegratedGradientsMap(Explainer):
    """Integrated gradients from a black baseline (the image minimum) in 32 steps."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import IntegratedGradients

        attr = IntegratedGradients(self.model).attribute(image, baselines=float(image.min()), target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
        return attr[0].abs().sum(0)


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[nn.Module]:
    """Run with ``model`` in eval mode, non-inplace activations and gradients on; restore everything after.

    Restores the train/eval mode, the ``inplace`` flags, the ``requires_grad``
    flags and the parameters' ``.grad``, and removes any hook added meanwhile
    (even when the body raised).
    """
    with _LOCK:
        modules = list(model.modules())
        mode = [m.training for m in modules]
        inplace = [(m, m.inplace) for m in modules if isinstance(getattr(m, "inplace", None), bool)]
        params = list(model.parameters())
        flags, grads = [p.requires_grad for p in params], [p.grad for p in params]
        hooks = [(m, name, set(getattr(m, name))) for m in modules for name in _HOOK_DICTS if hasattr(m, name)]
        try:
            model.eval()
            for m, _ in inplace:
                m.inplace = False  # captum's hooks and inplace ReLU/Hardswish do not mix
            with torch.inference_mode(False), torch.enable_grad():
                yield model
        finally:
            for m, name, keys in hooks:
                table = getattr(m, name)
                for key in set(table) - keys:
                    del table[key]
            for m, flag in inplace:
                m.inplace = flag
            for m, was in zip(modules, mode):
                m.training = was
            for p, flag, grad in zip(params, flags, grads):
                p.requires_grad_(flag)
                p.grad = grad


def _batch_of_one(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """(C, S, S) or (1, C, S, S) -> detached float (1, C, S, S) on the model's device."""
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1):
        raise ValueError(f"image must be a (C, S, S) or (1, C, S, S) tensor, got {getattr(image, 'shape', type(image))}")
    device = next(model.parameters()).device
    x = image.detach().to(device=device, dtype=torch.float32)
    return (x[None] if x.dim() == 3 else x).clone()


def predict_proba(model: nn.Module, image: torch.Tensor) -> np.ndarray:
    """Softmax probabilities (K,) float64 of one image (C, S, S) or (1, C, S, S)."""
    with untouched(model), torch.no_grad():
        x = _batch_of_one(model, image)
        return torch.softmax(model(x).double(), dim=1)[0].cpu().numpy()


def normalise(raw: np.ndarray | torch.Tensor) -> np.ndarray:
    """Min-max scale to float32 [0, 1]; NaN/inf become 0 and a flat map (range < 1e-6 of its magnitude) becomes zeros."""
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    m = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if not hi - lo > 1e-6 * max(abs(hi), abs(lo)):  # relative: untrained nets give tiny but real maps
        return np.zeros(m.shape, dtype=np.float32)
    return np.clip((m - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def saliency(model: nn.Module, image: torch.Tensor, target: int | None = None, method: str = "gradcam", layer: str | None = None) -> np.ndarray:
    """Saliency map of one image.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K); left as found.
        image: Normalised input (C, S, S) or (1, C, S, S), as from ``image_tensor``.
        target: Class index to explain; None = the model's predicted class.
        method: A name from ``available_explainers()``.
        layer: Dotted module name for Grad-CAM (default: ``model.target_layer``).

    Returns:
        (S, S) float32 map in [0, 1] (min-max normalised; all zeros when flat).

    Raises:
        ValueError: unknown method (listing the valid ones), bad image shape or target.
    """
    factory = EXPLAINERS.entry(method).factory
    with untouched(model):
        x = _batch_of_one(model, image)  # cloned here, so also a normal tensor under inference_mode
        with torch.no_grad():
            logits = model(x)
        classes = logits.shape[1]
        target = int(logits.argmax(1)[0]) if target is None else int(target)
        if not 0 <= target < classes:
            raise ValueError(f"target must be a class index from 0 to {classes - 1}, got {target}")
        raw = factory(model, layer).attribute(x, target)
    return normalise(raw)


def _jet(values: np.ndarray) -> np.ndarray:
    """Jet colormap: (...) values in [0, 1] -> (..., 3) float in [0, 1] (blue, cyan, yellow, red)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks at 3/4, 1/2, 1/4
    return np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)


COLORMAPS = {"jet": _jet}


def overlay(image_uint8: np.ndarray, saliency_map: np.ndarray, opacity: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """Blend a heat map on a scan.

    Args:
        image_uint8: (H, W) grey or (H, W, 3) colour uint8 scan.
        saliency_map: (h, w) map in [0, 1]; resized bilinearly to (H, W).
        opacity: Weight of the heat map, in [0, 1].
        colormap: Name in ``COLORMAPS`` (only ``"jet"``).

    Returns:
        (H, W, 3) uint8 image.
    """
    from PIL import Image

    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of: {', '.join(COLORMAPS)}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    image = np.asarray(image_uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {image.shape}")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    heat = np.nan_to_num(np.asarray(saliency_map, dtype=np.float32))
    if heat.ndim != 2:
        raise ValueError(f"saliency_map must be (h, w), got {heat.shape}")
    height, width = rgb.shape[:2]
    if heat.shape != (height, width):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((width, height), Image.BILINEAR))
    colour = COLORMAPS[colormap](heat) * 255.0
    blended = (1.0 - opacity) * rgb.astype(np.float64) + opacity * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


@dataclass
class Explanation:
    """One model's answer for one image: predicted class, probabilities (K,) and map (S, S)."""

    predicted: int
    probabilities: list[float]
    saliency: np.ndarray = field(repr=False)


def explain_pair(teacher: nn.Module, student: nn.Module, image_uint8: np.ndarray, channels: int, size: int,
                 method: str = "gradcam", target: int | None = None) -> dict:
    """Explain one scan with both models, for the dashboard.

    Both maps explain the same class (``target``, default the teacher's
    prediction), so they can be compared.

    Args:
        teacher: Teacher network (B, C, S, S) -> (B, K).
        student: Student network with the same input and classes.
        image_uint8: (H, W) or (H, W, 3) uint8 scan.
        channels: Model input channels C.
        size: Model input side S.
        method: A name from ``available_explainers()``.
        target: Class to explain (default: the teacher's predicted class).

    Returns:
        ``{"teacher": Explanation, "student": Explanation, "target": int,
        "method": str, "agreement": {"pearson": float, "iou": float}}``.
    """
    from meddistill.data.tensors import image_tensor

    x = image_tensor(np.asarray(image_uint8), channels, size)
    out = {"method": method}
    probs = {role: predict_proba(model, x) for role, model in (("teacher", teacher), ("student", student))}
    out["target"] = int(probs["teacher"].argmax()) if target is None else int(target)
    for role, model in (("teacher", teacher), ("student", student)):
        heat = saliency(model, x, out["target"], method)
        out[role] = Explanation(int(probs[role].argmax()), [float(p) for p in probs[role]], heat)
    out["agreement"] = {"pearson": pearson(out["teacher"].saliency, out["student"].saliency),
                        "iou": top_iou(out["teacher"].saliency, out["student"].saliency)}
    return out
