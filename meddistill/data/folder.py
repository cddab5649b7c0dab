"""Image and DICOM folders in any common layout (``meddistill.data.layout``), decoded lazily, with splits made
patient by patient where a patient key is known (``meddistill.data.grouping``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meddistill.data.dataset import SPLITS, FileSplit, MedDataset, Split
from meddistill.data.dicom import read_dicom_pixels
from meddistill.data.grouping import GroupKeys, csv_keys, dicom_keys, holdout, pattern_keys
from meddistill.data.images import IMAGE_SUFFIXES, read_image
from meddistill.data.layout import Layout, recognise
from meddistill.data.leakage import file_digest
from meddistill.data.multilabel import absent_findings, holdout_findings, require_in_train
from meddistill.data.options import DataOptions
from meddistill.data.series import SeriesVolumes, read_series
from meddistill.data.volumes import VolumeDataset, decode_nifti, nifti_record
from meddistill.errors import DataError

SAMPLE_FILES = 32


def decode_file(path: Path) -> np.ndarray:
    """Decode one image or DICOM file (also DICOM without an extension) to uint8 (H, W) or (H, W, 3);
    ``DataError`` names the file."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)
    return read_dicom_pixels(path)


def _sample_shape(split: Split, rng: np.random.Generator, verify: str) -> tuple[int, int]:
    """(channels, typical size) from a sample of images (volumes: grey, their largest side); ``verify="all"``
    decodes every one."""
    count = len(split) if verify == "all" else min(SAMPLE_FILES, len(split))
    indices = np.arange(len(split)) if verify == "all" else rng.choice(len(split), count, replace=False)
    colour, sizes = False, []
    for index in indices:
        image = split.image(int(index))
        if split.spatial_dims == 3:
            sizes.append(max(image.shape))
            continue
        sizes.append(max(image.shape[:2]))
        if image.ndim == 3 and not (
            np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
        ):
            colour = True
    return (3 if colour else 1), int(np.median(sizes))


def _dedupe_classes(layout: Layout) -> dict[str, int]:
    """Exact copies (same content) of a file within one class of one split count once: drop the later ones."""
    dropped = {}
    for split in SPLITS:
        seen, keep = set(), []
        for i, (path, label) in enumerate(zip(layout.files[split], layout.labels[split])):
            key = (file_digest(path), label if isinstance(label, int) else tuple(np.nan_to_num(label, nan=-1)))
            if key not in seen:
                seen.add(key)
                keep.append(i)
        if len(keep) < len(layout.files[split]):
            dropped[split] = len(layout.files[split]) - len(keep)
            layout.files[split] = [layout.files[split][i] for i in keep]
            layout.labels[split] = [layout.labels[split][i] for i in keep]
            if layout.groups is not None:
                layout.groups[split] = [layout.groups[split][i] for i in keep]
    return dropped


def _group_keys(layout: Layout, options: DataOptions) -> dict[str, GroupKeys] | None:
    """Patient keys per split: the CSV's group column, ``--group-pattern``, or the DICOM header; else ``None``."""
    if layout.groups is not None:
        return {s: csv_keys(layout.groups[s], layout.group_column or "group") for s in SPLITS}
    if options.group_pattern:
        return {s: pattern_keys(layout.files[s], options.group_pattern) for s in SPLITS}
    if layout.kind.startswith("dicom"):
        return {s: dicom_keys(layout.files[s]) for s in SPLITS}
    return None


def load_folder(
    root: str | Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    verify: str = "sample",
    options: DataOptions | None = None,
) -> MedDataset:
    """Load a folder of images or DICOM files.

    Layouts (see ``meddistill.data.layout``): class folders, optionally under split folders with any of the
    usual names; or a labels CSV with any column names. Splits the folder does not bring are made: val (and
    test, when there is no test split) held out of train, stratified by class, seeded, and grouped by patient
    when a patient key is known (CSV group column, ``options.group_pattern``, DICOM header).

    Args:
        root: The folder.
        seed: Seed for the splits that have to be made.
        val_fraction: Fraction for val when it is made.
        test_fraction: Fraction for test when it is made.
        verify: "sample" decodes a few images per split, "all" decodes every one
            (slow for big folders; the ``check-data`` command uses it).
        options: Labels-CSV columns, patient key, duplicates.

    Raises:
        DataError: the layout is ambiguous or empty, a labels CSV cannot be used, an image cannot be decoded.
    """
    root, options = Path(root), options or DataOptions()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder with one subfolder per class, a .zip, or a .npz file.")
    layout = recognise(root, options)
    in_class_copies = _dedupe_classes(layout)
    series = _as_series(layout) if layout.kind.startswith("dicom") else None
    keys = _group_keys(layout, options)
    width = len(layout.class_names)
    volumes = layout.kind.startswith("nifti") or series is not None
    decode, dims = (decode_file, 2)
    if volumes:
        decode, dims = (series or decode_nifti), 3
    splits = {
        s: FileSplit(layout.files[s], _labels(layout, s, width), decode, keys[s].keys if keys else None, dims)
        for s in SPLITS
    }
    made = []
    for split, fraction, offset in (("test", test_fraction, 0), ("val", val_fraction, 1)):
        if split in layout.given:
            continue
        train = splits["train"]
        groups = GroupKeys(train.groups, keys["train"].source) if keys else None
        if layout.task == "multi_label":
            keep, held = holdout_findings(train.labels, fraction, seed + offset, groups.codes() if groups else None)
        else:
            keep, held = holdout(train.labels, fraction, seed + offset, groups)
        splits[split], splits["train"] = train.subset(held), train.subset(keep)
        made.append(split)
    if layout.task == "multi_label":
        require_in_train(layout.class_names, splits["train"].labels, root.name)
    for split, data in splits.items():
        if len(data) == 0:
            raise DataError(
                f"{root.name} leaves the {split} split empty; add more images per class (at least 3 per class)."
            )
    rng = np.random.default_rng(seed)
    channels, size = 1, 0
    for data in splits.values():
        split_channels, split_size = _sample_shape(data, rng, verify)
        channels, size = max(channels, split_channels), max(size, split_size)
    extra = {}
    if volumes:
        extra["volumes"] = series.record if series else nifti_record([p for s in SPLITS for p in splits[s].paths])
    return (VolumeDataset if volumes else MedDataset)(
        name=root.name,
        splits=splits,
        class_names=layout.class_names,
        channels=channels,
        image_size=size,
        attributes=layout.attributes,
        provenance={
            "kind": layout.kind,
            "source": str(root.resolve()),
            "files": sum(len(d) for d in splits.values()),
            "layout": layout.description,
            "splits": _split_origin(made, seed, keys, splits, layout.task),
            "ignored": _ignored_summary(layout.ignored),
            "copies_within_class_dropped": in_class_copies,
            "options": options.given(),
            **({"findings": _findings_record(layout, splits)} if layout.task == "multi_label" else {}),
            **extra,
        },
    )


def _as_series(layout: Layout) -> SeriesVolumes | None:
    """For DICOM files that form series of several slices: the layout reduced to one file per series (its first
    slice stands for it) and the decoder of the volumes; None for a folder of 2D DICOM images."""
    found = read_series(layout.files, layout.labels)
    if found is None:
        return None
    volumes, firsts, labels = found
    if layout.groups is not None:
        group_of = {p: g for s in SPLITS for p, g in zip(layout.files[s], layout.groups[s])}
        layout.groups = {s: [group_of[p] for p in firsts[s]] for s in SPLITS}
    layout.files, layout.labels = firsts, labels
    layout.kind = layout.kind.replace("dicom", "dicom-series")
    layout.description += f", {volumes.record['series']} DICOM series read as volumes"
    return volumes


def _labels(layout: Layout, split: str, width: int) -> np.ndarray:
    """A split's labels: (N,) int64 classes, or (N, K) float32 findings."""
    if layout.task == "multi_label":
        rows = layout.labels[split]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), dtype=np.float32)
    return np.array(layout.labels[split], dtype=np.int64)


def _findings_record(layout: Layout, splits: dict[str, Split]) -> dict:
    """The multi-label record of the summary: the rule, the counts read, and the findings missing from a split."""
    absent = absent_findings(layout.class_names, {s: d.labels for s, d in splits.items()})
    return {**(layout.findings or {}), "absent": {s: names for s, names in absent.items() if names}}


def _split_origin(
    made: list[str], seed: int, keys: dict[str, GroupKeys] | None, splits: dict[str, Split], task: str
) -> dict:
    """How the splits came about (what dataset.json and report.json record)."""
    given = [s for s in SPLITS if s not in made]
    origin = {"given": given, "made": made, "seed": seed if made else None}
    if made and task == "multi_label":
        origin["method"] = (
            "grouped by patient, findings stratified (iterative stratification of patients)"
            if keys
            else "image by image, findings stratified (iterative stratification; no patient key: give --group-column)"
        )
    elif made:
        origin["method"] = (
            "grouped by patient, stratified by class (StratifiedGroupKFold)"
            if keys
            else ("image by image, stratified by class (no patient key: give --group-pattern or --group-column)")
        )
    if keys:
        origin["group_key"] = keys["train"].source
        origin["groups"] = {s: len(set(GroupKeys(d.groups, "").codes().tolist())) for s, d in splits.items()}
    return origin


def _ignored_summary(ignored: list[tuple[str, str]], examples: int = 20) -> dict:
    """Ignored files: a count per reason and the first ``examples`` paths with theirs."""
    counts: dict[str, int] = {}
    for _, reason in ignored:
        counts[reason] = counts.get(reason, 0) + 1
    return {"count": len(ignored), "by_reason": counts, "examples": [list(x) for x in ignored[:examples]]}
