"""Per-epoch training state, so a killed run resumes from its last completed epoch.

For a model trained under role R the run folder's ``checkpoints/`` holds
``R.last.safetensors`` (model, best-so-far model, optimizer moments, batch-order
generator, distiller parameters, moving average of the weights) and ``R.state.json`` (epoch, history, best
score). Both are written atomically, the tensors first, so a crash between
the two leaves the previous, consistent pair... or a newer tensor file with the
older JSON, which is also safe: the JSON's epoch is the one resumed from. A fit whose length was decided while the
run ran (the teacher's second round) also has ``R.plan.json``, written before it starts, so a resumed run trains
the same epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from meddistill.io.atomic import atomic_write_json
from meddistill.io.weights import check_layout, read_weights, save_weights
from meddistill.training.state import FitResult


def checkpoint_files(folder: Path, role: str) -> tuple[Path, Path]:
    """The tensor file and the state file of a role's checkpoint: ``R.last.safetensors``, ``R.state.json``."""
    return folder / f"{role}.last.safetensors", folder / f"{role}.state.json"


def plan_file(folder: Path, role: str) -> Path:
    """Where a fit's decided length is kept (``R.plan.json``): written before the fit starts, read when resuming."""
    return folder / f"{role}.plan.json"


def save_checkpoint(
    folder: Path,
    role: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    best_state: dict,
    state: dict,
    method: nn.Module | None = None,
    averaged: nn.Module | None = None,
) -> None:
    """Save the state after a completed epoch (see the module docstring); ``averaged`` is the weights'
    moving average, if any.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if averaged is not None:
        tensors.update({f"average.{k}": v for k, v in averaged.state_dict().items()})
    tensors.update({f"best.{k}": v for k, v in best_state.items()})
    if method is not None:
        tensors.update({f"method.{k}": v for k, v in method.state_dict().items()})
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["generator"] = generator.get_state()
    tensor_file, state_file = checkpoint_files(folder, role)
    save_weights(tensors, tensor_file, metadata={"layout": model.layout} if hasattr(model, "layout") else None)
    atomic_write_json(state_file, {**state, "param_groups": optim["param_groups"]})


def load_checkpoint(
    folder: Path,
    role: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    method: nn.Module | None = None,
    averaged: nn.Module | None = None,
) -> dict | None:
    """Restore the last completed epoch into the given objects; ``None`` if there is none.

    Returns:
        The saved state dict (epoch, history, best_score, ...) with ``best_state`` added.
    """
    tensor_file, state_file = checkpoint_files(folder, role)
    if not (tensor_file.is_file() and state_file.is_file()):
        return None
    state = json.loads(state_file.read_text(encoding="utf-8"))
    check_layout(model, tensor_file)
    tensors = read_weights(tensor_file)

    def group(prefix: str) -> dict:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(group("model."))
    if method is not None:
        method.load_state_dict(group("method."))
    if averaged is not None:
        averaged.load_state_dict(group("average."))
    moments: dict[int, dict] = {}
    for key, value in group("optim.").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": state.pop("param_groups")})
    generator.set_state(tensors["generator"])
    state["best_state"] = group("best.")
    return state


def saved_fit(folder: Path, role: str) -> FitResult | None:
    """The history and best epoch of a model's last saved epoch (no tensors), or ``None`` if it has none.

    Lets a run that resumes after a model finished report that model's training without loading its state.
    """
    _, state_file = checkpoint_files(folder, role)
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text(encoding="utf-8"))
    return FitResult(
        best_state={},
        history=state["history"],
        best_epoch=state["best_epoch"],
        seconds=state["seconds"],
        stopped_early=state.get("stopped_early", False),
    )
