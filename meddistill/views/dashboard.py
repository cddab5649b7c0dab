"""Plain-Python helpers behind the dashboard pages (the pages stay thin; no Streamlit here)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from meddistill.data.archive import strip_single_top_folder
from meddistill.data.dataset import MedDataset
from meddistill.data.labels_csv import columns_for
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.data.store import stored_datasets, stored_options
from meddistill.errors import DataError
from meddistill.paths import MEDMNIST_DIR, home
from meddistill.pipeline.building import distil_line
from meddistill.pipeline.plan import describe_plan, fit_budget, plan_run, volume_note
from meddistill.pipeline.train_on import plan_line
from meddistill.services.quickstart import quickstart_config
from meddistill.settings.config import RunConfig


def describe_device() -> str:
    """'CPU (2 threads)' or the GPU's name, for the sidebar and home page."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)} (mixed precision)"
    return f"CPU ({torch.get_num_threads()} threads); no GPU found"


def dataset_choices() -> dict[str, str]:
    """Datasets that can be picked again: label -> source path (stored uploads and cached MedMNIST)."""
    choices = {}
    for path in stored_datasets():
        label = f"{path.parent.name}/{path.name}" if path.suffix == ".npz" else f"{path.name}/"
        choices[label] = str(path if path.suffix == ".npz" else strip_single_top_folder(path))
    cache = home() / MEDMNIST_DIR
    if cache.is_dir():
        for path in sorted(cache.glob("*.npz")):
            choices[f"{path.stem} (MedMNIST)"] = str(path)
    return choices


def preset_values(preset: str, native: int | None = None, spatial_dims: int = 2) -> dict:
    """The values the Train page's widgets start from: the preset's, adapted to a dataset of native side ``native``
    (``RunConfig.for_data``: the teacher the preset picks for large images, the 3D models for volumes)."""
    config = RunConfig.from_preset(preset)
    return (config.for_data(native, spatial_dims) if native else config).to_dict()


def config_from_fields(
    preset: str,
    data: str,
    fields: dict,
    picked: tuple[str, ...] = (),
    native: int | None = None,
    spatial_dims: int = 2,
) -> RunConfig:
    """The validated run settings of the Train page's form.

    Only the fields the user changed from the values the widgets started from (``preset_values``) count as given,
    so the preset may still adapt its own defaults (the minimum number of steps, the teacher for large images) but
    never a value the user picked. ``picked`` names fields that count as given whatever their value (the models,
    once ImageNet weights are asked for: the pickers show them).
    """
    defaults = preset_values(preset, native, spatial_dims)
    changed = {name: value for name, value in fields.items() if value != defaults[name] or name in picked}
    return RunConfig.from_preset(preset, data=data, **changed).validate()


class DataShape(NamedTuple):
    """What the Train page needs of a dataset: train images, channels, native side, classes, 2D or 3D."""

    train: int
    channels: int
    native: int
    classes: int
    spatial_dims: int


@functools.lru_cache(maxsize=8)
def dataset_shape(source: str, options: DataOptions = DataOptions()) -> DataShape:  # noqa: B008
    dataset = load_dataset(source, options=options)
    train = len(dataset.splits["train"])
    return DataShape(train, dataset.channels, dataset.image_size, dataset.num_classes, dataset.spatial_dims)


def plan_text(config: RunConfig) -> str:
    """What each model of the run will train and about how long (steps timed once per architecture and size), with
    the teacher fitted into the time budget when one is set."""
    train, channels, native, classes, dims = dataset_shape(config.data, config.data_options())
    adapted = config.for_data(native, dims)
    size = adapted.resolved_image_size(native)
    fitted, note = fit_budget(adapted, train, channels, size, classes)
    lines = [
        describe_plan(plan_run(fitted, train, channels, size, classes)),
        volume_note(fitted, train, channels, native, classes),
        note,
        plan_line(fitted),
        distil_line(fitted),
    ]
    return "\n".join(line for line in lines if line)


def demo_estimate() -> str | None:
    """ "about 2 minutes" for the one-click demo on this machine (its training steps timed once), or None when
    BreastMNIST is not on disk yet (nothing is downloaded to estimate)."""
    try:
        config = quickstart_config(download=False)
    except DataError:
        return None
    train, channels, native, classes, _ = dataset_shape(config.data)
    plans = plan_run(config, train, channels, config.resolved_image_size(native), classes)
    minutes = sum(p.seconds for p in plans) / 60
    return f"about {max(1, round(minutes))} minute{'s' if round(minutes) > 1 else ''}"


def sample_grid(
    dataset: MedDataset, per_class: int = 6, split: str = "train", seed: int = 0
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """A few (name, uint8 image) pairs per class for the preview grid (a volume: its middle axial slice)."""
    data = dataset.splits[split]
    rng = np.random.default_rng(seed)
    grid = {}
    for label, name in enumerate(dataset.class_names):
        members = np.flatnonzero(data.labels == label)
        chosen = rng.choice(members, min(per_class, len(members)), replace=False) if len(members) else []
        grid[name] = [(data.name(int(i)), data.preview(int(i))) for i in chosen]
    return grid


def data_options_for(source: str, picked: dict | None = None) -> DataOptions:
    """How to read ``source``: the options picked on the Data page for it, else those it was stored with."""
    return DataOptions(**picked) if picked else stored_options(source)


def load_for_preview(source: str, options: DataOptions | None = None) -> MedDataset:
    """Load a dataset for the Data page (sampled verification; uploads were fully checked when stored)."""
    return load_dataset(source, options=options or stored_options(source))


def csv_column_choices(header: list[str], rows: list[dict]) -> dict[str, int | None]:
    """Pre-selected header positions of the file, label, split and group columns (guessed from common names),
    for the Data page's pickers; ``None`` where nothing is recognised."""
    columns = columns_for(header, DataOptions(), "CSV")
    picked = {"file": None, "label": None, "split": None, "group": None}
    if columns is not None:
        for role in picked:
            name = getattr(columns, role)
            picked[role] = header.index(name) if name in header else None
    return picked
