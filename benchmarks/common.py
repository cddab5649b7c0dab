"""Helpers shared by the benchmark scripts: machine info, thread pinning, timing, tables, real data.

Every benchmark runs from the repository root (``python benchmarks/NAME.py``),
prints the machine, a small table and, last, one line ``ratio=X.XX``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works without `pip install -e .` too
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from meddistill.paths import shared_data  # noqa: E402

# One intra-op thread by default: on this shared 2-core machine (other sessions keep the load average at 6-9),
# two threads spend their time at OpenMP barriers waiting for a descheduled sibling -- a tiny_cnn epoch took
# 7.6 s with 2 threads and 0.6 s with 1, and varied 4x from run to run. Override with MEDDISTILL_BENCH_THREADS.
THREADS = int(os.environ.get("MEDDISTILL_BENCH_THREADS", "1"))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def setup(title: str, threads: int = THREADS) -> None:
    """Pin torch threads (intra- and inter-op) and print what the figures were measured on."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only allowed before the first parallel op
        pass
    print(f"# {title}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), python {platform.python_version()}, torch "
        f"{torch.__version__}, torch threads {torch.get_num_threads()}"
    )
    try:
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    print()


def data_file(name: str) -> Path:
    """A file under the shared data folder; exits with a clear message when it is missing."""
    path = shared_data() / name
    if not path.exists():
        sys.exit(f"{path} not found; set MEDDISTILL_DATA to the folder with medmnist/ and chest_xray/")
    return path


def pneumonia(size: int = 28, seed: int = 0):
    """PneumoniaMNIST (real, official npz): (dataset, {split: Batches})."""
    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches

    dataset = load_dataset(data_file("medmnist/pneumoniamnist.npz"), seed=seed)
    return dataset, {s: Batches(dataset.splits[s], dataset.channels, size) for s in ("train", "val", "test")}


def subset_batches(batches, count: int):
    """``Batches`` over the first ``count`` images of a split."""
    import numpy as np

    from meddistill.data.tensors import Batches

    return Batches(batches.split.subset(np.arange(min(count, len(batches)))), batches.channels, batches.size)


def plain_epoch(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    teacher=None,
    seed: int = 0,
) -> float:
    """Seconds for one epoch of a minimal hand-written loop (fresh AdamW, shuffled batches).

    With ``teacher``, the teacher runs on every batch and the loss is Hinton KD (T=4, alpha=0.9).
    """
    import torch.nn.functional as F

    from meddistill.distillation import kd_loss

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for index in order.split(batch_size):
        x, y = images[index], labels[index]
        logits = model(x)
        if teacher is None:
            loss = F.cross_entropy(logits, y)
        else:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = kd_loss(logits, t_logits, y, temperature=4.0, alpha=0.9)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(headers: list[str], rows: list[list], widths: list[int] | None = None) -> None:
    """Print a plain-text table; floats get 3 significant decimals."""
    widths = widths or [max(len(str(h)), 12) for h in headers]

    def cell(value, width: int) -> str:
        if isinstance(value, float):
            value = f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return f"{value!s:>{width}}"

    print("  ".join(f"{h:>{w}}" for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(cell(v, w) for v, w in zip(row, widths)))
    print()


def ratio(value: float) -> None:
    """The headline figure: always the last line printed."""
    print(f"ratio={value:.2f}")
