"""One entry point for every dataset source: ``load_dataset(source)``."""

from __future__ import annotations

from pathlib import Path

from meddistill.data.dataset import MedDataset
from meddistill.data.folder import load_folder
from meddistill.data.medmnist_source import medmnist_path
from meddistill.data.npz import load_npz
from meddistill.data.store import extract_zip
from meddistill.errors import DataError


def load_dataset(source: str | Path, *, seed: int = 0, verify: str = "sample") -> MedDataset:
    """Load a dataset from any supported source.

    Args:
        source: One of: a MedMNIST ``.npz``; a MedMNIST name (``breastmnist``,
            ``pneumoniamnist_64``), from a local copy or downloaded once; a folder
            or ``.zip`` of images (PNG, JPEG, BMP, TIFF) or DICOM files with one
            subfolder per class, optionally under ``train/``, ``val/``, ``test/``;
            or a folder or ``.zip`` of files with a labels CSV (``file,label``).
        seed: Seed for any split the source does not bring itself.
        verify: "sample" (decode a few images) or "all" (decode every image).

    Returns:
        A ``MedDataset`` with train, val and test splits.

    Raises:
        DataError: the source cannot be used; the message names the file and the fix.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return load_folder(path, seed=seed, verify=verify)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return load_npz(path, seed=seed)
        if suffix == ".zip":
            return load_folder(extract_zip(path), seed=seed, verify=verify)
        raise DataError(
            f"{path.name} is not a dataset MedDistill reads; give a .npz, a .zip, a folder, or a MedMNIST name such "
            "as breastmnist."
        )
    if path.suffix == "" and "/" not in str(source) and "\\" not in str(source):
        return load_npz(medmnist_path(str(source)), seed=seed)
    raise DataError(f"{source} does not exist; check the path, or give a MedMNIST name such as breastmnist.")
