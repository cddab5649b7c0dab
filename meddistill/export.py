"""Export a trained model to TorchScript, ONNX or int8 ONNX, and check the file against PyTorch.

``export_model`` writes one file atomically; ``check_export`` runs that file
(``torch.jit.load`` or an ONNX Runtime CPU session) and compares its
probabilities with the PyTorch model's; ``export_run`` does both for a
finished run's model on the run's whole test split and records the figures
beside the file. The CLI (``meddistill export``) and the dashboard call
``export_run``.

Example:
    >>> export_run("~/.meddistill/runs/20261130-142501-a3f9c2", "onnx")["agreement"]
    1.0
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from meddistill.fileio import atomic_write, atomic_write_json

FORMATS = ("torchscript", "onnx", "onnx-int8")
EXTENSIONS = {"torchscript": ".pt", "onnx": ".onnx", "onnx-int8": ".int8.onnx"}
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "images", "logits"
CALIBRATION_IMAGES = 256
CHUNK = 256


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _onnx_export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """fp32 ONNX with a dynamic batch axis.

    Uses the TorchScript-based exporter (``dynamo=False``): the torch.export
    path needs the optional ``onnxscript`` package, and for these plain CNNs
    both give the same graph (batch norm folded into the convolutions).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning and tracer warnings
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def _quantize(fp32: Path, out: Path, calibration: torch.Tensor) -> None:
    """ONNX Runtime static quantization (QDQ, per-channel int8 weights, uint8 activations)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, images: torch.Tensor) -> None:
            self.chunks = iter([{INPUT_NAME: c.numpy()} for c in images.float().split(64)])

        def get_next(self):
            return next(self.chunks, None)

    prepared = fp32.with_name(fp32.stem + ".prep.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared), str(out), Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )


def export_model(model: nn.Module, fmt: str, path: str | Path, in_channels: int, image_size: int, calibration: torch.Tensor | None = None) -> Path:
    """Write ``model`` to ``path`` in format ``fmt`` (atomically).

    Args:
        model: A network mapping (B, C, S, S) to logits (B, K); exported in eval mode on CPU.
        fmt: One of ``FORMATS``: "torchscript" (``torch.jit.trace``), "onnx"
            (opset 17, input "images", output "logits", dynamic batch axis) or
            "onnx-int8" (ONNX Runtime static quantization of the ONNX graph).
        path: Output file.
        in_channels: Input channels C.
        image_size: Input side S.
        calibration: (N, C, S, S) real, normalised images for "onnx-int8"
            (a few hundred train images); ignored by the other formats.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: unknown format (listing the valid ones), or "onnx-int8" without calibration images.
    """
    _check_format(fmt)
    if fmt == "onnx-int8" and (calibration is None or len(calibration) == 0):
        raise ValueError("onnx-int8 needs calibration images (N, C, S, S), e.g. 256 training images")
    path = Path(path)
    model = model.to("cpu").eval()
    example = torch.zeros(2, in_channels, image_size, image_size)

    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, and torch.jit's FutureWarning pointing to torch.export
            traced = torch.jit.trace(model, example, check_trace=False)
            return atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    if fmt == "onnx":
        return atomic_write(path, lambda tmp: _onnx_export(model, example, tmp))

    def write_int8(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="meddistill-quant-") as work:
            fp32 = Path(work) / "model.onnx"
            _onnx_export(model, example, fp32)
            _quantize(fp32, Path(work) / "model.int8.onnx", calibration)
            tmp.write_bytes((Path(work) / "model.int8.onnx").read_bytes())

    return atomic_write(path, write_int8)


def load_exported(path: str | Path, fmt: str, threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping images (B, C, S, S) to logits (B, K) on CPU, running the exported file.

    Args:
        path: File written by ``export_model``.
        fmt: Its format.
        threads: ONNX Runtime intra-op threads (default: its own choice).
    """
    _check_format(fmt)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_script(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(images.float())

        return run_script
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_onnx(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: images.float().numpy()})[0])

    return run_onnx


def _compare(run: Callable, model: nn.Module, chunks: Iterable[torch.Tensor]) -> tuple[np.ndarray, float, float]:
    """(exported probabilities (N, K), max |p_exported - p_torch|, same-argmax fraction) over image chunks."""
    model = model.to("cpu").eval()
    probs, max_diff, same, total = [], 0.0, 0, 0
    for images in chunks:
        with torch.no_grad():
            reference = torch.softmax(model(images).float(), dim=1)
        exported = torch.softmax(run(images).float(), dim=1)
        max_diff = max(max_diff, float((exported - reference).abs().max()))
        same += int((exported.argmax(1) == reference.argmax(1)).sum())
        total += len(images)
        probs.append(exported.double().numpy())
    return np.concatenate(probs), max_diff, same / max(total, 1)


def check_export(path: str | Path, fmt: str, model: nn.Module, images: torch.Tensor) -> dict:
    """Run the exported file on ``images`` and compare it with ``model``.

    Args:
        path: File written by ``export_model``.
        fmt: Its format.
        model: The PyTorch model it was exported from.
        images: (N, C, S, S) normalised images.

    Returns:
        ``max_abs_prob_diff`` (largest softmax difference over all images and
        classes), ``agreement`` (fraction with the same predicted class) and
        ``size_bytes`` of the file.
    """
    _, max_diff, same = _compare(load_exported(path, fmt), model, images.split(CHUNK))
    return {"max_abs_prob_diff": max_diff, "agreement": same, "size_bytes": Path(path).stat().st_size}


def calibration_images(batches, count: int = CALIBRATION_IMAGES, seed: int = 0) -> torch.Tensor:
    """``count`` images drawn at random (fixed seed) from a split's ``Batches``."""
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.cat([images for images, _, _ in batches.iterate(CHUNK, order)])


def export_run(run_dir: str | Path, fmt: str, role: str = "student_kd", out: str | Path | None = None) -> dict:
    """Export one model of a finished run and check it on the run's whole test split.

    Args:
        run_dir: The run folder (with ``config.json``, ``dataset.json`` and ``<role>.safetensors``).
        fmt: One of ``FORMATS``.
        role: "teacher", "student_scratch" or "student_kd".
        out: Output file (default ``<run_dir>/exports/<role><ext>``, ext .pt, .onnx or .int8.onnx).

    Returns:
        path, format, role, max_abs_prob_diff, agreement (vs the PyTorch model),
        size_bytes, and test_acc / test_auc of the exported model itself (for
        int8 that is the quantized model). The same figures are written to
        ``<run_dir>/exports/<role>.<fmt>.json``.

    Raises:
        ValueError: unknown format or role.
        MedDistillError: the run folder, its weights or its dataset cannot be used.
    """
    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches
    from meddistill.errors import MedDistillError
    from meddistill.evaluate import auc_score
    from meddistill.pipeline import ROLES, load_trained

    _check_format(fmt)
    if role not in ROLES:
        raise ValueError(f"unknown model {role!r}; choose one of: {', '.join(ROLES)}")
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.json").is_file() or not (run_dir / "dataset.json").is_file():
        raise MedDistillError(f"{run_dir} has no config.json and dataset.json; give the folder of a finished run.")
    if not (run_dir / f"{role}.safetensors").is_file():
        raise MedDistillError(f"{run_dir.name} has no {role}.safetensors yet; let the run finish (or resume it) before exporting.")
    model, config, summary = load_trained(run_dir, role)
    channels, size = summary["channels"], summary["train_image_size"]
    dataset = load_dataset(config.data, seed=config.seed)
    test = Batches(dataset.splits["test"], channels, size, config.num_workers)
    calibration = calibration_images(Batches(dataset.splits["train"], channels, size, config.num_workers), seed=config.seed) if fmt == "onnx-int8" else None

    path = Path(out).expanduser() if out else run_dir / "exports" / f"{role}{EXTENSIONS[fmt]}"
    export_model(model, fmt, path, channels, size, calibration)
    probs, max_diff, same = _compare(load_exported(path, fmt), model, (images for images, _, _ in test.iterate(CHUNK)))
    labels = dataset.splits["test"].labels
    result = {
        "path": str(path),
        "format": fmt,
        "role": role,
        "max_abs_prob_diff": max_diff,
        "agreement": same,
        "size_bytes": path.stat().st_size,
        "test_acc": float((probs.argmax(1) == labels).mean()),
        "test_auc": auc_score(labels, probs),
    }
    atomic_write_json(run_dir / "exports" / f"{role}.{fmt}.json", result)
    return result
