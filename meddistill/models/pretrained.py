"""ImageNet weights for timm models: from a local file, from the Hugging Face cache, or downloaded once.

The only network access in MedDistill besides MedMNIST downloads, and it fails fast: when the weights are not
cached, the host is probed with a 3-second connection first, and an offline machine gets one sentence saying how to
give the file instead (``--teacher-weights`` / ``--student-weights``). Every file is read with
``meddistill.io.weights.read_weights`` (safetensors, or ``torch.load(weights_only=True)``), never unpickled.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from meddistill.errors import MedDistillError
from meddistill.io.weights import read_weights
from meddistill.models.registry import MODELS
from meddistill.models.timm_models import timm_name

PROBE_SECONDS = 3.0  # how long the network probe waits before calling the machine offline
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm's Hugging Face repositories hold, preferred first


class PretrainedUnavailable(MedDistillError):
    """Pretrained weights are neither cached nor downloadable here."""


def reachable(host: str, port: int = 443, seconds: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``seconds`` (False when offline)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("MEDDISTILL_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return True
    except OSError:
        return False


def _source(bare: str) -> tuple[str | None, str | None, str]:
    """(Hugging Face repo, hub file override, url) of timm's default weights for ``bare``."""
    import timm

    cfg = timm.models.get_pretrained_cfg(bare)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise PretrainedUnavailable(f"timm has no pretrained weights for {bare}; train it here, or give a file.")
    return cfg.hf_hub_id, cfg.hf_hub_filename, cfg.url or ""


def _cached(repo: str | None, override: str | None, url: str) -> Path | None:
    """The weights file already in the Hugging Face or torch hub cache, if any."""
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in (override,) if override else HUB_FILES:
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        if path.is_file():
            return path
    return None


def _download(repo: str | None, override: str | None, url: str) -> Path:
    """Download timm's weights into the usual cache (only after the host answered the probe)."""
    if repo:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        for filename in (override,) if override else HUB_FILES:
            try:
                return Path(hf_hub_download(repo, filename, etag_timeout=10))
            except EntryNotFoundError:
                continue
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), progress=False)
    return path


def pretrained_state(name: str, local_file: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """ImageNet weights of timm model ``name`` and where they came from (file path or cache path).

    Args:
        name: A timm model name (``timm/`` optional).
        local_file: A weights file to use instead of the cache or a download (``--teacher-weights`` with
            ``--pretrained``).

    Raises:
        PretrainedUnavailable: not a timm model with weights, or offline with nothing cached (one sentence that
            says how to give the file).
    """
    bare = timm_name(name) if name not in MODELS else None
    if bare is None:
        raise PretrainedUnavailable(
            f"{name} is MedDistill's own small-image model and has no ImageNet weights; pick a timm model for "
            f"--pretrained, such as timm/resnet18."
        )
    if local_file:
        return read_weights(local_file), str(local_file)
    repo, override, url = _source(bare)
    path = _cached(repo, override, url)
    if path is None:
        host = "huggingface.co" if repo else (urlparse(url).hostname or "")
        if not reachable(host):
            raise PretrainedUnavailable(
                f"The ImageNet weights of {bare} are not in the local cache and {host} cannot be reached; "
                "connect once to download them, or download them elsewhere and give the file with "
                "--teacher-weights FILE (or --student-weights FILE) beside --pretrained."
            )
        try:
            path = _download(repo, override, url)
        except OSError as error:
            raise PretrainedUnavailable(
                f"Downloading the ImageNet weights of {bare} failed ({error}); try again, or give the file with "
                "--teacher-weights FILE (or --student-weights FILE) beside --pretrained."
            ) from None
    return read_weights(path), str(path)
