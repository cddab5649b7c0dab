"""One run's context: its settings, data, batches, device, folder, task, teacher source and callbacks, made once
by ``RunContext.open`` and handed to every step of the pipeline instead of the same seven arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.settings.config import RunConfig
from meddistill.settings.sources import ModelShape, TeacherSource
from meddistill.store.layout import RunFolder
from meddistill.tasks import Task, task_for
from meddistill.training import distributed as dist
from meddistill.training.state import Progress

SPLITS = ("train", "val", "test")


def pick_device(name: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class RunContext:
    """What every step of a run reads (derived values are properties, never written back to the settings).

    Attributes:
        config: The validated, frozen settings.
        dataset: The run's data with its splits.
        batches: Per split (``SPLITS``), the tensors the models see at the training side.
        device: Where the models train (the process's own GPU under torchrun).
        folder: The run folder.
        task: What the models predict (``meddistill.tasks``).
        teacher: Where the teacher comes from (``meddistill.settings.sources``).
        threads: Torch intra-op threads on the CPU.
        callback: Receives the engine's ``Progress`` reports.
        should_stop: Polled every batch; true cancels the run.
    """

    config: RunConfig
    dataset: MedDataset
    batches: dict[str, Batches]
    device: torch.device
    folder: RunFolder
    task: Task
    teacher: TeacherSource
    threads: int
    callback: Callable[[Progress], None] | None = None
    should_stop: Callable[[], bool] | None = None

    @classmethod
    def open(
        cls,
        config: RunConfig,
        run_dir: str | Path,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        dataset: MedDataset | None = None,
    ) -> RunContext:
        """Load the data (unless given), make the batches and pick the device and threads."""
        dataset = dataset or config.load_data()
        size = config.resolved_image_size(dataset.image_size)
        batches = {s: Batches(dataset.splits[s], dataset.channels, size, config.num_workers) for s in SPLITS}
        return cls(
            config=config,
            dataset=dataset,
            batches=batches,
            device=dist.device_for(pick_device(config.device)),
            folder=RunFolder(run_dir),
            task=task_for(dataset.task),
            teacher=config.teacher_source(),
            threads=config.threads or dist.default_threads(),
            callback=callback,
            should_stop=should_stop,
        )

    @property
    def size(self) -> int:
        """The training side S."""
        return self.config.resolved_image_size(self.dataset.image_size)

    @property
    def shape(self) -> ModelShape:
        return ModelShape(tuple(self.dataset.class_names), self.dataset.channels, self.size)

    @property
    def summary(self) -> dict:
        """The dataset summary with the training side (``dataset.json``)."""
        return {**self.dataset.summary(), "train_image_size": self.size}
