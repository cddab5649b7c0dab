"""One entry point for every dataset source: ``load_dataset(source)``."""

from __future__ import annotations

from pathlib import Path

from meddistill.data.dataset import MedDataset
from meddistill.data.folder import load_folder
from meddistill.data.leakage import check, drop_leaks
from meddistill.data.medmnist_source import medmnist_path
from meddistill.data.npz import load_npz
from meddistill.data.options import DataOptions
from meddistill.data.store import datasets_dir, extract_zip
from meddistill.errors import DataError


def load_dataset(
    source: str | Path, *, seed: int = 0, verify: str = "sample", options: DataOptions | None = None
) -> MedDataset:
    """Load a dataset from any supported source.

    Args:
        source: One of: a MedMNIST ``.npz``; a MedMNIST name (``breastmnist``,
            ``pneumoniamnist_64``), from a local copy or downloaded once; a folder
            or ``.zip`` of images (PNG, JPEG, BMP, TIFF) or DICOM files with one
            subfolder per class, optionally under ``train/``, ``val/``, ``test/``;
            or a folder or ``.zip`` of files with a labels CSV (``file,label``).
        seed: Seed for any split the source does not bring itself.
        verify: "sample" (decode a few images) or "all" (decode every image).
        options: Labels-CSV columns, patient key and whether to drop duplicates (``DataOptions``).

    Returns:
        A ``MedDataset`` with train, val and test splits; its provenance records the layout, how the splits
        were made, the files ignored and the duplicates and leaks found (``meddistill.data.leakage``).

    Raises:
        DataError: the source cannot be used; the message names the file and the fix.
    """
    options = options or DataOptions()
    dataset = _load(source, seed, verify, options)
    report = check(dataset.splits)
    if options.drop_duplicates:
        dataset.splits = drop_leaks(dataset.splits, report)
    dataset.provenance["leakage"] = report.summary()
    return dataset


def _load(source: str | Path, seed: int, verify: str, options: DataOptions) -> MedDataset:
    path = Path(source).expanduser()
    if path.is_dir():
        return load_folder(path, seed=seed, verify=verify, options=options)
    if path.is_file() and path.suffix.lower() == ".zip":
        root = extract_zip(path)
        dataset = load_folder(root, seed=seed, verify=verify, options=options)
        if root.parent != datasets_dir():  # the archive wrapped everything in one folder
            dataset.provenance["layout"] += f", inside the wrapping folder '{root.name}'"
        return dataset
    anywhere = ("drop_duplicates", "multi_label")  # the rest name CSV columns or file patterns
    flags = {"subgroup_columns": "subgroup-column"}
    folder_only = [f"--{flags.get(n, n.replace('_', '-'))}" for n in options.given() if n not in anywhere]
    if folder_only:
        raise DataError(f"{folder_only[0]} applies to folders and zips of images, not to {path.name}; remove it.")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return load_npz(path, seed=seed)
        raise DataError(
            f"{path.name} is not a dataset MedDistill reads; give a .npz, a .zip, a folder, or a MedMNIST name such "
            "as breastmnist."
        )
    if path.suffix == "" and "/" not in str(source) and "\\" not in str(source):
        return load_npz(medmnist_path(str(source)), seed=seed)
    raise DataError(f"{source} does not exist; check the path, or give a MedMNIST name such as breastmnist.")
