"""Where a model looks: saliency methods (Grad-CAM, occlusion, integrated gradients) in one registry.

Each method is a small class in the ``EXPLAINERS`` registry (in the manner of
pytorch-grad-cam's method classes) that returns a raw attribution; captum does
the work in its two steps (build the attribution object, then ``attribute``).
:func:`saliency` turns that into an (S, S) map in [0, 1] ((S, S, S) for a model of
volumes: 3D Grad-CAM, occlusion by cubes) and leaves the model
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
from typing import Iterator

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion
from torch import nn

from meddistill.explain.maps import normalise
from meddistill.models.registry import target_module
from meddistill.registry import Registry

EXPLAINERS = Registry("explainer")
IG_STEPS = 32
_LOCK = threading.RLock()  # the model is modified temporarily (eval mode, inplace flags)
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def available_explainers(model: nn.Module | None = None) -> list[str]:
    """Registered saliency method names (``gradcam``, ``integrated_gradients``, ``occlusion``); given a model
    known only by its outputs (an imported ONNX or TorchScript teacher, ``opaque``), only those that need no
    gradients or layers (``occlusion``)."""
    if model is not None and getattr(model, "opaque", False):
        return EXPLAINERS.available(needs_gradients=False)
    return EXPLAINERS.available()


OPAQUE_NOTE = (
    "The teacher is an imported ONNX or TorchScript model, known only by its outputs: Grad-CAM and integrated "
    "gradients need its layers and gradients, so only Occlusion (which needs only outputs) is offered."
)


def explainer_label(name: str) -> str:
    """The name people read ("Grad-CAM") of a registered saliency method."""
    return EXPLAINERS.entry(name).meta.get("label", name)


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

    def resolution(self, image: torch.Tensor) -> int:
        """How many independent cells per side the map has for (1, C, S, S) input (default: every pixel)."""
        return int(image.shape[-1])


@EXPLAINERS.register("gradcam", label="Grad-CAM", uses_layer=True, needs_gradients=True)
class GradCAM(Explainer):
    """Grad-CAM: channel weights = mean gradient of the class score over the layer's
    feature map, CAM = ReLU(sum_k w_k A_k), upsampled bilinearly to the input."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        cam = LayerGradCam(self.model, target_module(self.model, self.layer)).attribute(
            image, target=target, relu_attributions=True
        )
        if cam.dim() != image.dim():
            raise ValueError(
                "Grad-CAM needs a convolutional layer with (B, C, H, W) output ((B, C, D, H, W) for volumes); "
                f"{self.layer or self.model.target_layer!r} gave {tuple(cam.shape)}"
            )
        mode = "trilinear" if image.dim() == 5 else "bilinear"
        return LayerAttribution.interpolate(cam, tuple(image.shape[2:]), interpolate_mode=mode)[0, 0]

    def resolution(self, image: torch.Tensor) -> int:
        """The side of the target layer's feature map (what Grad-CAM is computed at before upsampling)."""
        seen = {}
        handle = target_module(self.model, self.layer).register_forward_hook(
            lambda m, i, o: seen.__setitem__("side", o.shape[-1])
        )
        try:
            with torch.no_grad():
                self.model(image)
        finally:
            handle.remove()
        return int(seen["side"])


@EXPLAINERS.register("occlusion", label="Occlusion", uses_layer=False, needs_gradients=False)
class OcclusionMap(Explainer):
    """Occlusion: slide a square window (a cube for volumes; about S/7, odd) with stride about half of it,
    fill it with the image minimum and record the drop of the class score."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        spatial = image.dim() - 2
        side = min(image.shape[2:])
        window = max(1, round(side / 7)) | 1  # odd
        stride = max(1, window // 2)
        attr = Occlusion(self.model).attribute(
            image,
            sliding_window_shapes=(image.shape[1], *[window] * spatial),
            strides=(image.shape[1], *[stride] * spatial),
            baselines=float(image.min()),
            target=target,
            perturbations_per_eval=32,
        )
        return attr[0].abs().sum(0)

    def resolution(self, image: torch.Tensor) -> int:
        """Window positions per side: about 7 windows, half-overlapping."""
        side = int(image.shape[-1])
        return max(1, side // max(1, (max(1, round(side / 7)) | 1) // 2))


@EXPLAINERS.register("integrated_gradients", label="Integrated gradients", uses_layer=False, needs_gradients=True)
class IntegratedGradientsMap(Explainer):
    """Integrated gradients from a black baseline (the image minimum) in 32 steps."""

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        attr = IntegratedGradients(self.model).attribute(
            image, baselines=float(image.min()), target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS
        )
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
    """(C, S, S) or (1, C, S, S) -> detached float (1, C, S, S) on the model's device; for a model of volumes
    (``spatial_dims`` 3), (C, S, S, S) or (1, C, S, S, S) -> (1, C, S, S, S)."""
    one = 1 + getattr(model, "spatial_dims", 2)  # dims of one image without the batch
    if (
        not isinstance(image, torch.Tensor)
        or image.dim() not in (one, one + 1)
        or (image.dim() == one + 1 and image.shape[0] != 1)
    ):
        side = ", ".join(["S"] * (one - 1))
        raise ValueError(
            f"image must be a (C, {side}) or (1, C, {side}) tensor, got {getattr(image, 'shape', type(image))}"
        )
    device = next(iter(model.parameters()), torch.zeros(0)).device
    x = image.detach().to(device=device, dtype=torch.float32)
    return (x[None] if x.dim() == one else x).clone()


def predict_proba(model: nn.Module, image: torch.Tensor, activation=None) -> np.ndarray:
    """Probabilities (K,) float64 of one image (C, S, S) or (1, C, S, S): softmax, or ``activation`` (the task's:
    a sigmoid per finding)."""
    with untouched(model), torch.no_grad():
        x = _batch_of_one(model, image)
        logits = model(x).double()
        return (activation(logits) if activation else torch.softmax(logits, dim=1)).double()[0].cpu().numpy()


def saliency(
    model: nn.Module, image: torch.Tensor, target: int | None = None, method: str = "gradcam", layer: str | None = None
) -> np.ndarray:
    """Saliency map of one image.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K); left as found.
        image: Normalised input (C, S, S) or (1, C, S, S), as from ``image_tensor``.
        target: Class index to explain; None = the model's predicted class.
        method: A name from ``available_explainers()``.
        layer: Dotted module name for Grad-CAM (default: ``model.target_layer``).

    Returns:
        (S, S) float32 map in [0, 1] ((S, S, S) for a volume; min-max normalised; all zeros when flat).

    Raises:
        ValueError: unknown method (listing the valid ones), bad image shape or target.
    """
    factory = EXPLAINERS.entry(method).factory
    if method not in available_explainers(model):
        raise ValueError(f"{explainer_label(method)} cannot explain this model. {OPAQUE_NOTE}")
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


def map_resolution(model: nn.Module, image: torch.Tensor, method: str = "gradcam", layer: str | None = None) -> int:
    """Independent cells per side of ``method``'s map of ``model`` for one (C, S, S) image: Grad-CAM's feature
    map side, occlusion's window positions, one per pixel for integrated gradients (the faithfulness test's
    block size)."""
    with untouched(model):
        return EXPLAINERS.entry(method).factory(model, layer).resolution(_batch_of_one(model, image))
