"""Shared fixtures: an isolated MEDDISTILL_HOME, the real shared data, small real slices."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from meddistill.paths import shared_data

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session) -> None:
    """Byte-compile the package and the pages once, before any test starts a worker thread: on CPython 3.11 two
    threads compiling source at the same moment (a training job importing a module while the app compiles a page)
    can fail with "AST constructor recursion depth mismatch", which a fresh clone without __pycache__ invites."""
    import compileall

    for folder in ("meddistill", "pages"):
        compileall.compile_dir(ROOT / folder, quiet=2)
    compileall.compile_file(ROOT / "app.py", quiet=2)


os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own MEDDISTILL_HOME, so no test sees another's runs."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MEDDISTILL_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data in MEDDISTILL_DATA (default ../shared/data); skip when absent."""
    path = shared_data()
    if not (path / "medmnist" / "breastmnist.npz").is_file():
        pytest.skip(
            f"shared data not found at {path}; set MEDDISTILL_DATA to the folder with medmnist/ and chest_xray/"
        )
    return path


@pytest.fixture(scope="session")
def breast_npz(data_dir) -> Path:
    return data_dir / "medmnist" / "breastmnist.npz"


@pytest.fixture(scope="session")
def small_breast_npz(breast_npz, tmp_path_factory) -> Path:
    """A real slice of BreastMNIST: 160 train, 48 val, 64 test images."""
    return npz_slice(breast_npz, {"train": 160, "val": 48, "test": 64}, tmp_path_factory.mktemp("slice"))


def npz_slice(source: Path, sizes: dict[str, int], folder: Path) -> Path:
    """The first ``sizes[split]`` images and labels of each split of a MedMNIST file, saved under its name."""
    with np.load(source) as arrays:
        kept = {f"{s}_{kind}": arrays[f"{s}_{kind}"][:n] for s, n in sizes.items() for kind in ("images", "labels")}
    path = folder / source.name
    np.savez(path, **kept)
    return path


@pytest.fixture(scope="session")
def chest_folder(data_dir) -> Path:
    path = data_dir / "chest_xray"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


def copy_xray_slice(chest_folder: Path, target: Path, per_class: int = 6, splits=("train",)) -> Path:
    """Copy a few real chest X-ray JPEGs per class into ``target/<split>/<CLASS>/``."""
    import shutil

    for split in splits:
        for cls in ("NORMAL", "PNEUMONIA"):
            files = sorted((chest_folder / split / cls).glob("*.jpeg"))[:per_class]
            out = target / split / cls if len(splits) > 1 else target / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy(f, out / f.name)
    return target


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module: on a shared 2-core machine two threads spin against other jobs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def adrenal_npz(data_dir):
    path = data_dir / "medmnist" / "adrenalmnist3d.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def adrenal_arrays(adrenal_npz):
    with np.load(adrenal_npz) as archive:
        return {s: (archive[f"{s}_images"][:12], archive[f"{s}_labels"][:12, 0]) for s in ("train", "test")}
