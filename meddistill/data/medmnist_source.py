"""MedMNIST sets by name (``breastmnist``, ``pneumoniamnist_64``...), offline first."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from meddistill.errors import DataError
from meddistill.paths import MEDMNIST_DIR, home, shared_data


def medmnist_flags() -> list[str]:
    """The single-label MedMNIST sets, 2D and 3D (``adrenalmnist3d``); multi-label ChestMNIST excluded."""
    from medmnist import INFO  # deferred: importing medmnist takes seconds; only MedMNIST names need it

    return sorted(
        flag for flag, info in INFO.items() if info["task"] in ("binary-class", "multi-class", "ordinal-regression")
    )


def _parse(name: str) -> tuple[str, str]:
    flag, _, size = name.lower().removesuffix(".npz").partition("_")
    if flag not in medmnist_flags():
        raise DataError(
            f"'{name}' is not a single-label MedMNIST set (2D or 3D); choose one of: {', '.join(medmnist_flags())}."
        )
    sizes = ("64",) if flag.endswith("3d") else ("64", "128", "224")
    if size and size not in sizes:
        raise DataError(f"'{name}' asks for size {size}; {flag} comes at 28 (no suffix) and {', '.join(sizes)}.")
    return flag, f"_{size}" if size else ""


def _local_copy(filename: str) -> Path | None:
    folders = [
        os.environ.get("MEDDISTILL_MEDMNIST_DIR"),
        home() / MEDMNIST_DIR,
        Path.home() / ".medmnist",
        shared_data() / MEDMNIST_DIR,
    ]
    for folder in folders:
        if folder and (Path(folder) / filename).is_file():
            return Path(folder) / filename
    return None


def medmnist_path(name: str, download: bool = True) -> Path:
    """Path of the MedMNIST ``.npz`` for ``name``, downloading it to the cache if needed.

    Looks in ``MEDDISTILL_MEDMNIST_DIR``, ``MEDDISTILL_HOME/medmnist``,
    ``~/.medmnist`` and the shared data folder before going online.

    Raises:
        DataError: unknown name, or the download failed (one sentence naming
            the offline alternative).
    """
    flag, size = _parse(name)
    filename = f"{flag}{size}.npz"
    local = _local_copy(filename)
    if local is not None:
        return local
    if not download:
        raise DataError(f"{filename} is not cached; set MEDDISTILL_MEDMNIST_DIR to a folder holding it.")
    import medmnist  # deferred: importing medmnist takes seconds; only a download needs it
    from medmnist import INFO

    cache = home() / MEDMNIST_DIR
    cache.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(medmnist, INFO[flag]["python_class"])
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        dataset_class(split="test", download=True, root=str(cache), size=int(size[1:]) if size else None)
    except Exception:  # noqa: BLE001 - any failure of the download means the same thing to the user
        for partial in cache.glob(f"{flag}{size}*"):
            partial.unlink(missing_ok=True)
        raise DataError(
            f"Could not download {filename} from the MedMNIST archive (no network?); download it on a machine with "
            "internet from https://zenodo.org/records/10519652 and upload it, pass the file with --data "
            f"{filename}, or put it in MEDDISTILL_MEDMNIST_DIR."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return cache / filename
