"""Does ``torch.compile`` pay on this CPU? One 28 px teacher training step, compiled against eager.

The teacher ``resnet18`` (channels-last, batch 128, all cores) takes 8 AdamW steps eager and 8 compiled (inductor);
the first compiled step includes the compilation. Prints both medians and the compile time.

Usage:
    python benchmarks/compile_step.py

The last line is ``ratio=`` the eager step time over the compiled one (above 1: compiled steps are faster).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.models import create_model  # noqa: E402


def steps(compiled: bool, count: int = 8) -> list[float]:
    """Seconds of each of ``count`` training steps."""
    torch.manual_seed(0)
    model = create_model("resnet18", 2, 1, 28).train().to(memory_format=torch.channels_last)
    images = torch.randn(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (128,))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    forward = torch.compile(model) if compiled else model
    times = []
    for _ in range(count):
        start = time.perf_counter()
        loss = F.cross_entropy(forward(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    kernels, threads = torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()
    print(f"CPU: {describe_cpu()}; kernels {kernels}; {threads} threads")
    eager, compiled = steps(False), steps(True)
    median = lambda times: sorted(times[2:])[len(times[2:]) // 2]  # noqa: E731
    print(f"eager: {median(eager):.3f} s/step")
    print(f"compiled: first step {compiled[0]:.1f} s (compiling), then {median(compiled):.3f} s/step")
    print(f"ratio={median(eager) / median(compiled):.2f}")


if __name__ == "__main__":
    main()
