"""What a student learns from: the teacher's logits (computed once and cached) or its feature maps (hooked)."""

from __future__ import annotations

import torch
from torch import nn

from meddistill.data.tensors import Batches


class FeatureHook:
    """Keeps the latest output of one module (for feature distillation)."""

    def __init__(self, module: nn.Module) -> None:
        self.output: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.output = output

    def remove(self) -> None:
        self.handle.remove()


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module,
    batches: Batches,
    device: torch.device,
    batch_size: int = 256,
    indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """The teacher's logits for a split, in split order: (N, K) float32 on CPU.

    With ``indices`` only those rows are computed (a rank's shard); the rest stay 0.
    """
    teacher.eval()
    out = torch.empty(len(batches), 0)
    for images, _, index in batches.iterate(batch_size, indices):
        with autocast(device):
            logits = teacher(images.to(device, non_blocking=True)).float().cpu()
        if out.shape[1] == 0:
            out = torch.zeros(len(batches), logits.shape[1])
        out[index] = logits
    return out
