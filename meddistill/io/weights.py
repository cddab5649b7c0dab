"""Model weights as ``.safetensors``: never pickled, written atomically, checked on load."""

from __future__ import annotations

import hashlib
import pickle
import zipfile
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


TORCH_SUFFIXES = (".pt", ".pth", ".bin")  # PyTorch state dicts, read with torch.load(weights_only=True)
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "ema")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read weights into CPU tensors: ``.safetensors``, or a PyTorch state dict (``.pt``/``.pth``/``.bin``) read
    with ``torch.load(weights_only=True)``, never a full unpickle. Common wrappers (``{"state_dict": ...}``,
    ``{"model": ...}``) and key prefixes (``module.`` from DataParallel, ``_orig_mod.`` from torch.compile) are
    unwrapped.

    Raises:
        WeightsError: the file is missing, of another kind, truncated or tampered, or a pickled object that
            would need a full unpickle (the message says how to re-save it).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; check the path to the weights file.")
    if path.suffix.lower() in TORCH_SUFFIXES:
        return _read_torch_state(path)
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path.name} is not a weights file MedDistill reads; give a .safetensors file or a PyTorch state dict "
            "(.pt or .pth saved with torch.save(model.state_dict(), ...))."
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"{path.name} is not a readable .safetensors file ({error}); it may be truncated or tampered with, so "
            "export the weights again."
        ) from None


def _read_torch_state(path: Path) -> dict[str, torch.Tensor]:
    resave = f"re-save only the weights with torch.save(model.state_dict(), '{path.stem}.pth')"
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"{path.name} holds pickled Python objects (such as a whole model), which MedDistill never unpickles; "
            f"{resave}."
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path.name} is not a readable PyTorch file ({error}); {resave}.") from None
    state = _unwrap(loaded)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path.name} is not a state dict of tensors; {resave}.")
    return state


def _unwrap(loaded) -> dict:
    """The tensor dict inside common checkpoint wrappers, without DataParallel / compile prefixes."""
    while isinstance(loaded, dict) and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        inner = next((loaded[k] for k in WRAPPER_KEYS if isinstance(loaded.get(k), dict)), None)
        if inner is None:
            return {}
        loaded = inner
    if not isinstance(loaded, dict):
        return {}
    state = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


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
    if Path(path).suffix == ".safetensors":  # other files carry no layout: their shapes are checked below
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
