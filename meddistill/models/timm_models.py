"""Any timm model as a teacher or a student, behind MedDistill's model interface.

A name that is not one of MedDistill's own (``available_models()``) is looked up in timm; ``timm/NAME`` always means
timm's model (``timm/resnet18`` is timm's ResNet-18, ``resnet18`` MedDistill's small-image one). Grey or colour
input and the class count go through timm's own ``in_chans`` and ``num_classes``.

Small-image policy (one rule for every timm model): the scan is resized up (bilinear) to at least twice the
model's total stride (``feature_info[-1]["reduction"]``: 64 px for the usual stride-32 network), so the last
feature stage still has a 2x2 map for Grad-CAM and feature distillation; larger images pass unchanged. Models with
a fixed input size (ViTs) are built for that side, rounded up to a multiple of their stride. A model that still
cannot take the image is refused with one sentence when it is built.

Inputs arrive normalised as MedDistill normalises them (``(x - 0.5) / 0.5``); the wrapper converts them to the
normalisation timm's weights expect (``pretrained_cfg`` mean and std), so pretrained weights see what they were
trained on, and the conversion travels with the model into ONNX.

Example:
    >>> model = create_timm_model("timm/mobilenetv3_small_050", num_classes=2, in_channels=1, image_size=28)
    >>> model(torch.zeros(4, 1, 28, 28)).shape, model.input_side, model.target_layer
    (torch.Size([4, 2]), 64, 'net.blocks.5')
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from meddistill.data.tensors import MEAN, STD
from meddistill.errors import MedDistillError

TIMM_PREFIX = "timm/"
TIMM_LAYOUT = "timm-1"  # version of the wrapper's layout (resize rule and normalisation buffers)


def timm_name(name: str) -> str | None:
    """timm's name for ``name`` (``timm/`` stripped) if timm has such a model, else None."""
    import timm

    bare = name[len(TIMM_PREFIX) :] if name.startswith(TIMM_PREFIX) else name
    return bare if timm.is_model(bare) else None


@functools.lru_cache(maxsize=1)
def timm_model_names() -> tuple[str, ...]:
    """Every model timm can build, ``timm/``-prefixed, sorted (for the dashboard's searchable picker)."""
    import timm

    return tuple(TIMM_PREFIX + name for name in timm.list_models())


def input_side(reduction: int, image_size: int, fixed: bool) -> int:
    """The side a timm model is fed: at least ``2 * reduction``; a fixed-size model's a multiple of ``reduction``."""
    side = max(image_size, 2 * reduction)
    return -(-side // reduction) * reduction if fixed else side


class TimmNet(nn.Module):
    """A timm model fed MedDistill's (B, C, S, S) batches: resized up to ``input_side`` and renormalised.

    Args:
        net: The timm model (built with ``in_chans=C``, ``num_classes=K``).
        side: The side the model is fed.
        mean: Per-channel mean the weights expect, (C,).
        std: Per-channel std the weights expect, (C,).
    """

    def __init__(self, net: nn.Module, side: int, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.net, self.input_side = net, side
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in MedDistill's normalisation -> logits (B, K)."""
        if x.shape[-1] != self.input_side or x.shape[-2] != self.input_side:
            x = F.interpolate(x, size=(self.input_side, self.input_side), mode="bilinear", align_corners=False)
        x = (x * STD + MEAN - self.mean) / self.std
        return self.net(x)


def _normalisation(cfg: dict, channels: int) -> tuple[list[float], list[float]]:
    """The mean and std the weights expect, for C channels (grey: the average of the RGB values)."""
    mean, std = list(cfg.get("mean") or (MEAN,) * 3), list(cfg.get("std") or (STD,) * 3)
    if channels == 1:
        return [sum(mean) / len(mean)], [sum(std) / len(std)]
    return mean, std


def create_timm_model(
    name: str,
    num_classes: int,
    in_channels: int,
    image_size: int,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Build timm model ``name`` (``timm/`` optional) for MedDistill.

    Args:
        name: A timm model name.
        num_classes: Logits K.
        in_channels: Image channels C (1 or 3).
        image_size: Side S of MedDistill's batches.
        state_dict: ImageNet (or other) weights to start from, given to timm as ``pretrained_cfg`` ``state_dict``:
            timm adapts the first convolution to C channels and drops a classifier of another size.

    Returns:
        ``TimmNet`` with ``arch`` (``timm/NAME``), ``layout``, ``target_layer`` (the last feature stage, from the
        model's ``feature_info``), ``input_side`` and ``normalisation`` ({"mean", "std"}).

    Raises:
        MedDistillError: not a timm model, or the model cannot take this image size (one sentence).
    """
    import timm

    bare = timm_name(name)
    if bare is None:
        raise ValueError(f"unknown model {name!r}: not one of MedDistill's models nor a timm model name")
    cfg = dict(timm.models.get_pretrained_cfg(bare).to_dict()) if timm.models.get_pretrained_cfg(bare) else {}
    probe = timm.create_model(bare, pretrained=False, num_classes=num_classes, in_chans=in_channels)
    info = getattr(probe, "feature_info", None) or [{"reduction": 32, "module": ""}]
    reduction, module = int(info[-1]["reduction"]), str(info[-1]["module"])
    fixed = bool(cfg.get("fixed_input_size"))
    side = input_side(reduction, image_size, fixed)
    extra = {"img_size": side} if fixed else {}
    kwargs = {"num_classes": num_classes, "in_chans": in_channels, **extra}
    if state_dict is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"state_dict": state_dict})
    net = timm.create_model(bare, **kwargs) if (extra or state_dict is not None) else probe
    mean, std = _normalisation(cfg, in_channels)
    model = TimmNet(net, side, mean, std)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    except (RuntimeError, ValueError, AssertionError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise MedDistillError(
            f"timm model {bare} cannot take {image_size}-px images with {in_channels} channel(s) ({first}); "
            "choose another model or set --image-size."
        ) from None
    model.train()
    model.arch = TIMM_PREFIX + bare
    model.layout = TIMM_LAYOUT
    model.target_layer = f"net.{module}" if module else "net"
    model.normalisation = {"mean": mean, "std": std}
    return model
