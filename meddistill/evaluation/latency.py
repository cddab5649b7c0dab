"""Latency and throughput of a model as PyTorch runs it (eager)."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    in_channels: int,
    image_size: int,
    device: torch.device | str = "cpu",
    runs: int = 200,
    batch: int = 64,
) -> tuple[float, float]:
    """Median milliseconds per image at batch 1 and images per second at batch ``batch``.

    Both after warm-up; batch 1 is the median of ``runs`` calls, batch ``batch``
    the best of 5 timed calls.
    """
    model.eval()
    device = torch.device(device)
    one = torch.randn(1, in_channels, image_size, image_size, device=device)
    many = torch.randn(batch, in_channels, image_size, image_size, device=device)

    def timed(x: torch.Tensor) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(10):
        timed(one)
    single = statistics.median(timed(one) for _ in range(runs))
    timed(many)
    best = min(timed(many) for _ in range(5))
    return single * 1000.0, batch / best
