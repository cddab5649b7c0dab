"""Latency and throughput of a model: as PyTorch runs it (eager) and as deployed (an exported file in ONNX Runtime).

Both are timed the same way (``time_calls``): after warm-up, batch 1 is the median of ``runs`` calls and the
batch of 64 the best of 5 calls, on random inputs of the model's size.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from meddistill.evaluation.export import load_exported


def time_calls(
    run: Callable[[torch.Tensor], object],
    in_channels: int,
    image_size: int,
    device: torch.device | str = "cpu",
    runs: int = 200,
    batch: int = 64,
    spatial_dims: int = 2,
) -> tuple[float, float]:
    """Median milliseconds per image at batch 1 and images per second at batch ``batch`` of ``run(images)``
    (images (B, C, S, S), or volumes (B, C, S, S, S) when ``spatial_dims`` is 3)."""
    device = torch.device(device)
    side = [image_size] * spatial_dims
    one = torch.randn(1, in_channels, *side, device=device)
    many = torch.randn(batch, in_channels, *side, device=device)

    def timed(x: torch.Tensor) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(10):
        timed(one)
    single = statistics.median(timed(one) for _ in range(runs))
    timed(many)
    best = min(timed(many) for _ in range(5))
    return single * 1000.0, batch / best


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    in_channels: int,
    image_size: int,
    device: torch.device | str = "cpu",
    runs: int = 200,
    batch: int = 64,
) -> tuple[float, float]:
    """PyTorch eager: median milliseconds per image at batch 1 and images per second at batch ``batch``."""
    model.eval()
    return time_calls(model, in_channels, image_size, device, runs, batch, getattr(model, "spatial_dims", 2))


def measure_exported_latency(
    path: str | Path,
    fmt: str,
    in_channels: int,
    image_size: int,
    threads: int,
    runs: int = 200,
    batch: int = 64,
    spatial_dims: int = 2,
) -> tuple[float, float]:
    """An exported file on the CPU (ONNX Runtime for ONNX formats) with ``threads`` intra-op threads:
    median milliseconds per image (or volume: ``spatial_dims`` 3) at batch 1 and per second at batch ``batch``."""
    run = load_exported(path, fmt, threads)
    return time_calls(run, in_channels, image_size, "cpu", runs, batch, spatial_dims)
