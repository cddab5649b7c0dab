"""Helpers for running under ``torchrun`` (DistributedDataParallel); no-ops in one process."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
import torch.distributed as torch_dist

from meddistill.data.tensors import Batches
from meddistill.evaluation.predict import predict


def is_initialized() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def rank() -> int:
    return torch_dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return torch_dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (the only process that writes the run folder and the index)."""
    return rank() == 0


def from_main(value):
    """``value`` as rank 0 has it, on every rank (a decision every process must share); ``value`` in one process."""
    if not is_initialized() or world_size() == 1:
        return value
    box = [value]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def default_threads() -> int:
    """Torch intra-op threads for one process: the cores this process may use, shared by the processes of a node."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def device_for(device: torch.device) -> torch.device:
    """The process's own GPU under torchrun (``cuda:LOCAL_RANK``), else ``device``."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def gather_predictions(
    model: torch.nn.Module, batches: Batches, device: torch.device, activation: Callable | None = None
) -> np.ndarray:
    """(N, K) test probabilities (``activation``: logits -> probabilities, default softmax); under torchrun every
    rank predicts a shard and all are gathered."""
    if not is_initialized() or world_size() == 1:
        return predict(model, batches, device, activation=activation)
    mine = np.arange(rank(), len(batches), world_size())
    shard = Batches(batches.split.subset(mine), batches.channels, batches.size, batches.num_workers)
    parts: list = [None] * world_size()
    torch_dist.all_gather_object(parts, (mine, predict(model, shard, device, activation=activation)))
    probs = np.zeros((len(batches), parts[0][1].shape[1]))
    for indices, values in parts:
        probs[indices] = values
    return probs
