"""Teachers from any framework: a TorchScript file, or an ONNX model run through ONNX Runtime.

Logit distillation needs only the teacher's outputs, so such a teacher is a module whose forward returns its
logits; nothing inside it is hooked, so Grad-CAM and feature distillation are not offered for it (``opaque``), and it
is not fine-tuned. Both are checked against the dataset (channels, size, class count) before any student trains.

Example:
    >>> teacher = load_external_teacher("teacher.onnx", num_classes=2, channels=1, image_size=28)
    >>> teacher(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meddistill.errors import WeightsError

ONNX_SUFFIX = ".onnx"
TORCHSCRIPT_MARKER = "/code/"  # TorchScript archives hold the compiled code; state dicts hold only data.pkl + data/


def teacher_file_kind(path: str | Path) -> str:
    """``"onnx"``, ``"torchscript"`` or ``"weights"`` (safetensors or a state dict, loaded into an architecture)."""
    path = Path(path)
    if path.suffix.lower() == ONNX_SUFFIX:
        return "onnx"
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(TORCHSCRIPT_MARKER in name for name in archive.namelist()):
                return "torchscript"
    return "weights"


def is_external(path: str | Path | None) -> bool:
    """Whether ``path`` is a TorchScript or ONNX teacher (not weights for an architecture)."""
    return bool(path) and teacher_file_kind(path) != "weights"


class OpaqueTeacher(nn.Module):
    """A teacher known only by its outputs: forward (B, C, S, S) -> logits (B, K), no hooks, no training.

    A zero-size parameter anchors the device, so code that asks ``next(model.parameters()).device`` works.
    """

    opaque = True
    target_layer = None
    layout = None

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__()
        self.source, self.kind = path, kind
        self.arch = f"{kind}:{path.name}"
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self.parameter_count = 0

    def train(self, mode: bool = True) -> "OpaqueTeacher":  # the imported graph is fixed: always inference
        return super().train(False)


class OnnxTeacher(OpaqueTeacher):
    """An ONNX model run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnx
        import onnxruntime as ort

        super().__init__(path, "onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(str(path), load_external_data=False).graph
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise WeightsError(f"{path.name} is not an ONNX model ONNX Runtime can run ({first}).") from None
        self.parameter_count = int(sum(np.prod(t.dims) for t in graph.initializer))
        self.input = self.session.get_inputs()[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input.name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


class TorchScriptTeacher(OpaqueTeacher):
    """A TorchScript module (``torch.jit.save``), loaded without unpickling Python objects."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "torchscript")
        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as error:
            first = (str(error).strip().splitlines() or ["unreadable"])[0]
            raise WeightsError(f"{path.name} is not a readable TorchScript file ({first}).") from None
        self.parameter_count = sum(p.numel() for p in self.module.parameters())

    @property
    def exportable(self) -> nn.Module:
        """What ONNX export traces: the TorchScript module itself."""
        return self.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x.float()).float()


class ReorderedTeacher(nn.Module):
    """An imported teacher whose outputs are put in the dataset's class order: logits[:, order]."""

    def __init__(self, teacher: nn.Module, order: list[int]) -> None:
        super().__init__()
        self.teacher = teacher
        self.register_buffer("order", torch.tensor(order, dtype=torch.long))
        for name in (
            "opaque",
            "arch",
            "parameter_count",
            "target_layer",
            "layout",
        ):  # not kind: it is no longer the file
            if hasattr(teacher, name):
                setattr(self, name, getattr(teacher, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(x).index_select(1, self.order.to(x.device))


def class_order(teacher_classes: list[str] | None, dataset_classes: list[str], name: str) -> list[int] | None:
    """Indices that put a teacher's outputs in the dataset's class order (None when they already are).

    Raises:
        WeightsError: the teacher's class names are not the dataset's.
    """
    if not teacher_classes or list(teacher_classes) == list(dataset_classes):
        return None
    if sorted(teacher_classes) != sorted(dataset_classes):
        raise WeightsError(
            f"--teacher-classes for {name} names {', '.join(teacher_classes)}, but the dataset's classes are "
            f"{', '.join(dataset_classes)}; list the dataset's class names in the order of the teacher's outputs."
        )
    return [list(teacher_classes).index(c) for c in dataset_classes]


def check_outputs(model: nn.Module, name: str, num_classes: int, channels: int, image_size: int) -> None:
    """Run one (2, C, S, S) batch through an imported teacher before anything trains.

    Raises:
        WeightsError: it does not take this dataset's images, or gives another number of outputs than classes.
    """
    shape = getattr(getattr(model, "input", None), "shape", None)  # ONNX declares its input shape
    if shape and len(shape) == 4:
        declared = {"channels": shape[1], "size": shape[2]}
        if isinstance(declared["channels"], int) and declared["channels"] != channels:
            raise WeightsError(
                f"{name} takes {declared['channels']}-channel images, but this dataset's are {channels}-channel; "
                "export the teacher for the dataset's channels, or set the dataset's channels to match."
            )
        if isinstance(declared["size"], int) and declared["size"] != image_size:
            raise WeightsError(
                f"{name} takes {declared['size']}-px images, but the run trains at {image_size} px; "
                f"add --image-size {declared['size']}."
            )
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, channels, image_size, image_size))
    except Exception as error:  # whatever the foreign runtime raises, the sentence says what did not fit
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise WeightsError(
            f"{name} does not take this dataset's images ({channels} channel(s), {image_size} px): {first}; "
            "check its input channels and size (--image-size)."
        ) from None
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise WeightsError(
            f"{name} gives {tuple(out.shape[1:])} outputs per image, but the dataset has {num_classes} classes; "
            "give a teacher with one output per class."
        )


def load_external_teacher(
    path: str | Path,
    num_classes: int,
    channels: int,
    image_size: int,
    dataset_classes: list[str] | None = None,
    teacher_classes: list[str] | None = None,
    threads: int = 0,
) -> nn.Module:
    """A TorchScript or ONNX teacher, checked against the dataset and put in its class order.

    Raises:
        WeightsError: unreadable file, wrong channels, size or class count (one sentence each).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; check the path to the teacher file.")
    kind = teacher_file_kind(path)
    model = OnnxTeacher(path, threads) if kind == "onnx" else TorchScriptTeacher(path)
    check_outputs(model, path.name, num_classes, channels, image_size)
    order = class_order(teacher_classes, dataset_classes or [], path.name) if dataset_classes else None
    return ReorderedTeacher(model, order) if order else model
