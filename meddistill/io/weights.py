"""Model weights as ``.safetensors``: never pickled, written atomically, checked on load."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from meddistill.errors import WeightsError
from meddistill.io.atomic import atomic_write


def save_weights(
    model_or_state: nn.Module | dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Save a model's ``state_dict`` (or a plain tensor dict) to ``path`` atomically.

    A model's ``layout`` (see ``meddistill.models``) is recorded in the metadata, so the file is never loaded
    later into a network of another layout.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    if getattr(model_or_state, "layout", None) is not None:
        metadata = {**(metadata or {}), "layout": model_or_state.layout}
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file into CPU tensors; refuses anything else.

    Raises:
        WeightsError: the file is missing, not ``.safetensors``, truncated or tampered.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path.name} is not a .safetensors file; MedDistill only loads .safetensors weights (never pickles), so "
            "convert it first."
        )
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; check the path to the weights file.")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"{path.name} is not a readable .safetensors file ({error}); it may be truncated or tampered with, so "
            "export the weights again."
        ) from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata stored in a ``.safetensors`` header (empty when there is none or the file is unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_layout(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Refuse weights saved with another layout of the same architecture (same tensor shapes, another network).

    A file without a ``layout`` entry was saved before layouts were recorded: layout 1.
    """
    expected = getattr(model, "layout", None)
    saved = (read_metadata(path) if metadata is None else metadata).get("layout", "1")
    if expected is not None and saved != expected:
        arch = getattr(model, "arch", type(model).__name__)
        raise WeightsError(
            f"{Path(path).name} was saved with layout {saved} of {arch}, which is now layout {expected} (another "
            f"small-image stem); retrain it, or load it with the architecture that keeps the old layout "
            f"({arch}_fullres where there is one)."
        )


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model`` strictly: every tensor must exist and fit, and the layout must match.

    Raises:
        WeightsError: unreadable file, names/shapes that do not fit the architecture, or another layout.
    """
    state = read_weights(path)
    check_layout(model, path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    name = Path(path).name
    arch = getattr(model, "arch", type(model).__name__)
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise WeightsError(
            f"{name} does not fit {arch}: {len(missing)} tensors missing and {len(unexpected)} unexpected (e.g. "
            f"{example!r}); pick the architecture these weights were trained with."
        )
    if wrong:
        key = wrong[0]
        raise WeightsError(
            f"{name} does not fit {arch}: {key} has shape {tuple(state[key].shape)}, the model expects "
            f"{tuple(expected[key].shape)}; check the number of classes, channels and image size."
        )
    model.load_state_dict(state, strict=True)
    return model
