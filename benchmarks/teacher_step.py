"""What one teacher training step costs on this CPU, and what each candidate speed-up buys.

One AdamW step (forward, backward, update) of the 28 px teacher at batch 128, for: the stem (``resnet18_fullres``:
full-resolution first block; ``resnet18``: pooled stem, the default), the thread count (1 or all cores),
channels-last memory format, and bf16 autocast where the CPU has native bf16 (AVX-512 BF16 or AMX; never on
AVX2-only CPUs, where it is emulated). Variants are interleaved over rounds; each figure is the median step time.

Usage:
    python benchmarks/teacher_step.py [--rounds 3]

The last line is ``ratio=`` the old default's step time (``resnet18_fullres``, all cores, fp32) over the new
default's (``resnet18``, same threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import cpu_flags, describe_cpu  # noqa: E402
from meddistill.models import create_model, model_info  # noqa: E402

BATCH, SIZE = 128, 28


def step_time(arch: str, threads: int, channels_last: bool, bf16: bool, steps: int = 3) -> float:
    """Median seconds of ``steps`` training steps after one warm-up."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(arch, 2, 1, SIZE).train()
    images = torch.randn(BATCH, 1, SIZE, SIZE)
    labels = torch.randint(0, 2, (BATCH,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    native_bf16 = any(flag in cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))
    print(f"CPU: {describe_cpu()}; torch {torch.__version__}, kernels {torch.backends.cpu.get_cpu_capability()}")
    variants = []
    for arch in ("resnet18_fullres", "resnet18"):
        for threads in sorted({1, cores}):
            variants.append((arch, threads, False, False))
        variants.append((arch, cores, True, False))
        if native_bf16:
            variants.append((arch, cores, True, True))
    times: dict[tuple, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            times[variant].append(step_time(*variant))
    print("| teacher | MFLOPs/image | threads | channels-last | bf16 autocast | s/step (median) | images/s |")
    print("|---|---|---|---|---|---|---|")
    flops = {arch: model_info(create_model(arch, 2, 1, SIZE), 1, SIZE).flops / 1e6 for arch, *_ in variants}
    for variant in variants:
        arch, threads, channels_last, bf16 = variant
        median = statistics.median(times[variant])
        row = f"| {arch} | {flops[arch]:.0f} | {threads} | {channels_last} | {bf16} | {median:.3f} |"
        print(f"{row} {BATCH / median:.0f} |")
    old = statistics.median(times[("resnet18_fullres", cores, False, False)])
    new = statistics.median(times[("resnet18", cores, False, False)])
    print(f"ratio={old / new:.2f}")


if __name__ == "__main__":
    main()
