"""The one-click first run: BreastMNIST with the fast CPU preset."""

from __future__ import annotations

from meddistill.data.medmnist_source import medmnist_path
from meddistill.settings.config import RunConfig


def quickstart_config(download: bool = True) -> RunConfig:
    """A validated config for BreastMNIST with the ``cpu`` preset (the file is found or downloaded once).

    Raises:
        DataError: BreastMNIST is not cached and cannot be downloaded (the
            message points to uploading the file instead).
    """
    return RunConfig.from_preset("cpu", data=str(medmnist_path("breastmnist", download=download))).validate()
