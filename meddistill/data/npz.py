"""MedMNIST ``.npz`` files (official keys ``train_images``, ``train_labels``, ...)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from meddistill.data.dataset import ArraySplit, MedDataset, stratified_split
from meddistill.data.multilabel import absent_findings, holdout_findings, require_in_train
from meddistill.data.volumes import VolumeDataset, array_volumes
from meddistill.errors import DataError

REQUIRED_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
MIN_VOLUME_SIDE = 8  # the smallest side of a volume recognised by its shape (a colour image has 3 channels)


def file_md5(path: Path) -> str:
    """MD5 of a file (MedMNIST publishes MD5 checksums)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def _medmnist_info(stem: str) -> dict | None:
    """MedMNIST's own description of ``breastmnist`` or ``breastmnist_64``, if it is one."""
    try:
        from medmnist import INFO  # deferred: importing medmnist takes seconds
    except ImportError:  # pragma: no cover - medmnist is a dependency
        return None
    return INFO.get(stem.split("_")[0].lower())


def _is_volumes(arrays: dict, stem: str) -> bool:
    """Whether the file holds volumes (N, D, H, W): one of MedMNIST's 3D sets by name, or by shape: three axes of
    ``MIN_VOLUME_SIDE`` or more after N ((N, D, H, W, 1) too). Anything else with a fourth axis, such as
    (N, 8, 8, 5), is neither images nor volumes and is refused by ``_images``."""
    if "3d" in stem.split("_")[0].lower():
        return True
    shape = arrays["train_images"].shape
    shape = shape[:-1] if len(shape) == 5 and shape[-1] == 1 else shape
    return len(shape) == 4 and min(shape[1:]) >= MIN_VOLUME_SIDE


def _images(arrays: dict, key: str, name: str, volumes: bool = False) -> np.ndarray:
    images = arrays[key]
    if images.ndim == (5 if volumes else 4) and images.shape[-1] == 1:
        images = images[..., 0]
    if volumes and images.ndim != 4:
        raise DataError(f"{name}: {key} has shape {images.shape}; expected (N, D, H, W) grey volumes.")
    if not volumes and (images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3)):
        raise DataError(
            f"{name}: {key} has shape {images.shape}; expected (N, H, W) grey or (N, H, W, 3) colour images, or "
            "(N, D, H, W) volumes."
        )
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_:
        raise DataError(f"{name}: {key} has dtype {images.dtype}; expected uint8 pixels (or numbers in 0..255).")
    if not np.isfinite(images).all():
        raise DataError(f"{name}: {key} contains NaN or infinite pixels; fix or drop those images.")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 255:
        raise DataError(f"{name}: {key} has pixel values from {low:g} to {high:g}; expected 0..255 (or 0..1).")
    scale = 255.0 if high <= 1.0 else 1.0
    return np.round(images.astype(np.float64) * scale).astype(np.uint8)


def _labels(arrays: dict, key: str, count: int, name: str) -> np.ndarray:
    labels = arrays[key]
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:  # N x K findings (ChestMNIST): zeros and ones only
        values = np.unique(labels)
        if len(labels) != count or not np.isin(values, (0, 1)).all():
            raise DataError(
                f"{name}: {key} has shape {labels.shape} with values {values[:5].tolist()}; an N x K label array must "
                "hold one row of zeros and ones per image (1: the finding is present)."
            )
        return labels.astype(np.float32)
    if labels.ndim != 1:
        raise DataError(
            f"{name}: {key} has shape {labels.shape}; give (N,) class numbers or an (N, K) array of findings."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if (
            not np.issubdtype(labels.dtype, np.floating)
            or not np.isfinite(labels).all()
            or (labels != np.round(labels)).any()
        ):
            raise DataError(
                f"{name}: {key} has dtype {labels.dtype} with non-integer values; labels must be class numbers 0..K-1."
            )
    if len(labels) != count:
        raise DataError(
            f"{name}: {key} has {len(labels)} labels for {count} images; the two must have the same length."
        )
    labels = labels.astype(np.int64)
    if len(labels) and labels.min() < 0:
        raise DataError(
            f"{name}: {key} contains the negative label {labels.min()}; labels must be class numbers 0..K-1."
        )
    return labels


def _read_arrays(path: Path, name: str) -> dict[str, np.ndarray]:
    """The ``*_images`` and ``*_labels`` arrays of the ``.npz`` at ``path``, without unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            missing = [k for k in REQUIRED_KEYS if k not in keys]
            if missing:
                raise DataError(
                    f"{name} lacks the keys {', '.join(missing)} (it has {', '.join(sorted(keys)) or 'none'}); a "
                    "MedMNIST .npz needs train_images, train_labels, test_images and test_labels."
                )
            return {k: archive[k] for k in keys if k.endswith(("_images", "_labels"))}
    except DataError:
        raise
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise DataError(
                f"{name} holds Python objects (pickled arrays), which MedDistill never loads; save plain uint8 image "
                "and integer label arrays."
            ) from None
        raise DataError(f"{name} is not a readable .npz file ({error}); re-export it with numpy.savez.") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError) as error:
        # NotImplementedError and RuntimeError: zipfile on an unsupported version, compression or an encrypted member
        raise DataError(
            f"{name} is not a readable .npz file ({type(error).__name__}); re-download it or re-export it with "
            "numpy.savez."
        ) from None


def _findings_record(names: list[str], splits: dict) -> dict:
    absent = absent_findings(names, {s: d.labels for s, d in splits.items()})
    return {"rule": "N x K label arrays in the .npz", "absent": {s: n for s, n in absent.items() if n}}


def _names(splits: dict, path: Path) -> tuple[list[str], bool]:
    """(class or finding names, whether the labels are N x K findings), checked against MedMNIST's information
    when the file is one of its sets."""
    name = path.name
    info = _medmnist_info(path.stem)
    widths = {data.labels.shape[1] for data in splits.values() if data.labels.ndim == 2}
    if widths and (len(widths) > 1 or any(data.labels.ndim == 1 for data in splits.values())):
        raise DataError(f"{name}: the splits' labels have different shapes; give every split the same N x K findings.")
    multi = bool(widths)
    observed = widths.pop() if multi else int(max(d.labels.max() for d in splits.values() if len(d))) + 1
    if info is not None and multi != (info.get("task") == "multi-label, binary-class"):
        raise DataError(f"{name}: its labels do not have {path.stem}'s shape; check that it is that MedMNIST set.")
    if info is not None:
        class_names = [info["label"][str(k)] for k in range(len(info["label"]))]
        if multi and observed != len(class_names):
            raise DataError(f"{name} has {observed} findings per image, but {path.stem} has {len(class_names)}.")
        if observed > len(class_names):
            raise DataError(
                f"{name} has label {observed - 1}, but {path.stem} has only {len(class_names)} classes "
                f"(0..{len(class_names) - 1}); check the labels."
            )
    else:
        class_names = [f"{'finding' if multi else 'class'} {k}" for k in range(observed)]
    return class_names, multi


def load_npz(path: str | Path, *, seed: int = 0, val_fraction: float = 0.1) -> MedDataset:
    """Load a MedMNIST-style ``.npz``: any 2D MedMNIST set, grey or RGB, or a 3D set (N, D, H, W volumes).

    Args:
        path: The ``.npz`` file. Keys ``train_images``/``train_labels`` and
            ``test_images``/``test_labels`` are required, ``val_*`` optional (a
            stratified val split is carved from train when absent).
        seed: Seed for that carve-out.
        val_fraction: Fraction of train used for val when the file has no val split.

    Raises:
        DataError: missing keys, object arrays, wrong dtypes or shapes,
            mismatched lengths, NaN/inf pixels, labels out of range.
    """
    path = Path(path)
    name = path.name
    arrays = _read_arrays(path, name)

    volumes = _is_volumes(arrays, path.stem)
    splits = {}
    for split in ("train", "val", "test"):
        if f"{split}_images" not in arrays:
            continue
        if f"{split}_labels" not in arrays:
            raise DataError(f"{name} has {split}_images but no {split}_labels; add the labels or drop the images.")
        images = _images(arrays, f"{split}_images", name, volumes)
        labels = _labels(arrays, f"{split}_labels", len(images), name)
        splits[split] = ArraySplit(images, labels, spatial_dims=3 if volumes else 2)

    shapes = {s: data.images.shape[1:] for s, data in splits.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{name}: the splits have different image shapes {shapes}; all images must share one shape.")
    class_names, multi = _names(splits, path)
    if len(class_names) < 2:
        raise DataError(f"{name} has only one class; a classifier needs at least two.")

    if multi:
        require_in_train(class_names, splits["train"].labels, name)
    origin = "file"
    if "val" not in splits:
        if multi:
            train_idx, val_idx = holdout_findings(splits["train"].labels, val_fraction, seed, None)
        else:
            train_idx, val_idx = stratified_split(splits["train"].labels, (val_fraction,), seed)
        splits["val"] = splits["train"].subset(val_idx)
        splits["train"] = splits["train"].subset(train_idx)
        origin = f"val carved from train (seed {seed})"
    first = splits["train"].images
    kind = VolumeDataset if volumes else MedDataset
    return kind(
        name=path.stem,
        splits={s: splits[s] for s in ("train", "val", "test")},
        class_names=class_names,
        channels=3 if first.ndim == 4 and not volumes else 1,
        image_size=int(max(first.shape[1:])) if volumes else int(first.shape[1]),
        provenance={
            "kind": "npz",
            **({"volumes": array_volumes(first.shape[1:])} if volumes else {}),
            "source": str(path.resolve()),
            "md5": file_md5(path),
            "splits": origin,
            **({"findings": _findings_record(class_names, splits)} if multi else {}),
        },
    )
