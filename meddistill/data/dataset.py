"""The one dataset type every source is loaded into.

A ``MedDataset`` holds three splits (train, val, test), the class names, the
channel count and the typical image size, and where it came from. A split is
either in memory (MedMNIST arrays) or a list of files decoded one at a time
when an image is asked for, so a folder of 100,000 scans costs only its paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SPLITS = ("train", "val", "test")
# Names people give split folders and CSV split values, compared case-insensitively.
SPLIT_ALIASES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "dev"),
    "test": ("test", "testing", "holdout"),
}


def split_named(name: str) -> str | None:
    """The split (``train``, ``val`` or ``test``) a folder name or CSV value stands for, or ``None``."""
    key = name.strip().lower()
    return next((split for split, aliases in SPLIT_ALIASES.items() if key in aliases), None)


def as_labels(labels) -> np.ndarray:
    """Labels as a split holds them: (N,) int64 classes, or (N, K) float32 findings (1, 0, NaN: ignored)."""
    array = np.asarray(labels)
    if array.ndim == 2:
        return array.astype(np.float32)
    return array.astype(np.int64)


class Split:
    """One split: ``len(split)`` images, ``split.labels`` ((N,) int64 classes, or (N, K) float32 findings for a
    multi-label dataset), ``split.image(i)`` uint8, and optionally ``split.groups``: a pseudonymous patient key per
    image (``None`` for an image without one)."""

    labels: np.ndarray
    groups: list[str | None] | None = None
    spatial_dims = 2  # 3 for a split of volumes: ``image(i)`` is then (D, H, W) uint8

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8, (H, W) grey or (H, W, 3) colour."""
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A short human-readable name for image ``index`` (file name or array index)."""
        return f"#{index}"

    def preview(self, index: int) -> np.ndarray:
        """What a thumbnail shows of image ``index``: the image, or a volume's middle axial slice (H, W)."""
        image = self.image(index)
        return image[image.shape[0] // 2] if self.spatial_dims == 3 else image

    def subset(self, indices: np.ndarray) -> "Split":
        """A split with only ``indices`` (in that order)."""
        raise NotImplementedError


class ArraySplit(Split):
    """A split held in memory as a uint8 array (N, H, W) or (N, H, W, 3), or volumes (N, D, H, W) when
    ``spatial_dims`` is 3."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        groups: list[str | None] | None = None,
        spatial_dims: int = 2,
    ) -> None:
        self.images = images
        self.labels = as_labels(labels)
        self.groups = groups
        self.spatial_dims = spatial_dims

    def image(self, index: int) -> np.ndarray:
        return self.images[index]

    def subset(self, indices: np.ndarray) -> "ArraySplit":
        return ArraySplit(self.images[indices], self.labels[indices], _pick(self.groups, indices), self.spatial_dims)


class FileSplit(Split):
    """A split of image files decoded lazily by ``decode(path) -> uint8 array`` (a volume (D, H, W) when
    ``spatial_dims`` is 3: a NIfTI file, or a DICOM series' folder)."""

    def __init__(
        self,
        paths: list[Path],
        labels: np.ndarray,
        decode: Callable[[Path], np.ndarray],
        groups: list[str | None] | None = None,
        spatial_dims: int = 2,
    ) -> None:
        self.paths = list(paths)
        self.labels = as_labels(labels)
        self.decode = decode
        self.groups = groups
        self.spatial_dims = spatial_dims

    def image(self, index: int) -> np.ndarray:
        return self.decode(self.paths[index])

    def name(self, index: int) -> str:
        return self.paths[index].name

    def subset(self, indices: np.ndarray) -> "FileSplit":
        return FileSplit(
            [self.paths[i] for i in indices],
            self.labels[indices],
            self.decode,
            _pick(self.groups, indices),
            self.spatial_dims,
        )


def _pick(groups: list | None, indices: np.ndarray) -> list | None:
    return None if groups is None else [groups[i] for i in indices]


@dataclass
class MedDataset:
    """A labelled image dataset with train/val/test splits.

    Attributes:
        name: Short name (file or folder stem, or the MedMNIST flag).
        splits: ``{"train": Split, "val": Split, "test": Split}``.
        class_names: Human-readable class names; label ``k`` is ``class_names[k]`` (multi-label: the findings, column
            ``k`` of the labels).
        channels: 1 (grey) or 3 (colour): what models are built for.
        image_size: Typical side of the images in pixels (native resolution).
        provenance: Where the data came from: source path, kind, hash, split origin.
        attributes: Per subgroup column of a labels CSV (``--subgroup-column``), each file's value.
    """

    name: str
    splits: dict[str, Split]
    class_names: list[str]
    channels: int
    image_size: int
    provenance: dict = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def values(self, split: str, column: str) -> list[str]:
        """The ``column`` value of each image of ``split`` ("" where the CSV cell is empty)."""
        data = self.splits[split]
        found = self.attributes[column]
        return [found.get(str(path), "") for path in getattr(data, "paths", [])]

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes (``VolumeDataset``)."""
        return self.splits["train"].spatial_dims

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        """``multi_label`` when the labels are (N, K) findings, else ``single_label`` (``meddistill.tasks``)."""
        return "multi_label" if self.splits["train"].labels.ndim == 2 else "single_label"

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each split: ``{"train": [n0, n1, ...], ...}`` (multi-label: images with each
        finding)."""
        if self.task == "multi_label":
            return {s: (np.nan_to_num(d.labels) > 0).sum(0).astype(int).tolist() for s, d in self.splits.items()}
        return {
            split: np.bincount(data.labels, minlength=self.num_classes).tolist() for split, data in self.splits.items()
        }

    def summary(self) -> dict:
        """A JSON-friendly description (stored in ``report.json`` and shown on the Data page)."""
        return {
            "name": self.name,
            "task": self.task,
            "classes": self.class_names,
            "channels": self.channels,
            "image_size": self.image_size,
            "spatial_dims": self.spatial_dims,
            "sizes": {split: len(data) for split, data in self.splits.items()},
            "counts": self.counts(),
            "provenance": self.provenance,
        }


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split indices into parts of the given fractions, class by class.

    Args:
        labels: (N,) integer labels.
        fractions: Fractions of the later parts (e.g. ``(0.1, 0.2)`` for val and
            test); the first part gets the rest.
        seed: Seed for the shuffle, so the split is reproducible.

    Returns:
        ``len(fractions) + 1`` sorted index arrays, every class represented in
        each part when it has enough images.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        sizes = [max(1, round(f * len(members))) if len(members) > len(fractions) else 0 for f in fractions]
        for part, size in enumerate(sizes, start=1):
            parts[part].extend(members[start : start + size])
            start += size
        parts[0].extend(members[start:])
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
