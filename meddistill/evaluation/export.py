"""Export a trained model (TorchScript, ONNX, int8 ONNX, one offline web page) and check the file against PyTorch.

Each format is one small class in the ``EXPORTS`` registry: ``write`` puts the
file at a path and ``load`` returns a function that runs it. ``export_model``
writes one file atomically; ``check_export`` runs that file and compares its
probabilities with the PyTorch model's. A run's model is exported with
``meddistill.reports.export.export_run``.

Example:
    >>> export_model(model, "onnx", "student.onnx", in_channels=1, image_size=28)
    >>> run = load_exported("student.onnx", "onnx")
    >>> run(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from meddistill.io.atomic import atomic_write
from meddistill.registry import Registry
from meddistill.web import build_page, embedded_model

EXPORTS = Registry("export format")
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "images", "logits"
CALIBRATION_IMAGES = 256
CHUNK = 256
WEB = "web"  # the offline page's format name


def available_formats() -> list[str]:
    """Registered export format names (``onnx``, ``onnx-int8``, ``torchscript``, ``web``)."""
    return EXPORTS.available()


def format_extension(fmt: str) -> str:
    """The file extension of a format (``.onnx``); raises ``ValueError`` listing the formats."""
    return EXPORTS.entry(fmt).meta["extension"]


class ExportFormat:
    """One file format: how to write a model to it and how to run the file."""

    needs_calibration = False
    needs_page = False  # True: ``write`` is given the run's facts for the page it writes (``page``)

    def write(
        self,
        model: nn.Module,
        example: torch.Tensor,
        path: Path,
        calibration: torch.Tensor | None,
        page: dict | None = None,
    ) -> None:
        """Write ``model`` (eval mode, CPU) traced on ``example`` (2, C, S, S) to ``path``."""
        raise NotImplementedError

    def load(self, path: str | Path, threads: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function mapping images (B, C, S, S) to logits (B, K) that runs the file on the CPU."""
        raise NotImplementedError


@EXPORTS.register("torchscript", extension=".pt")
class TorchScriptFormat(ExportFormat):
    """``torch.jit.trace`` of the model, loaded with ``torch.jit.load``."""

    def write(self, model, example, path, calibration, page=None):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, and torch.jit's FutureWarning pointing to torch.export
            traced = torch.jit.trace(model, example, check_trace=False)
            torch.jit.save(traced, str(path))

    def load(self, path, threads):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_script(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(images.float())

        return run_script


@EXPORTS.register("onnx", extension=".onnx")
class OnnxFormat(ExportFormat):
    """fp32 ONNX (opset 17, input "images", output "logits", dynamic batch axis), run by ONNX Runtime.

    Uses the TorchScript-based exporter (``dynamo=False``): the torch.export
    path needs the optional ``onnxscript`` package, and for these plain CNNs
    both give the same graph (batch norm folded into the convolutions).
    """

    def write(self, model, example, path, calibration, page=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning and tracer warnings
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                do_constant_folding=True,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )

    def load(self, path, threads):
        return onnx_runner(str(path), threads)


def onnx_runner(model: str | bytes, threads: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping images (B, C, S, S) to logits (B, K) with ONNX Runtime on the CPU.

    Args:
        model: An ONNX file's path, or its bytes.
        threads: Intra-op threads (None: ONNX Runtime's choice).
    """
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run_onnx(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: images.float().numpy()})[0])

    return run_onnx


@EXPORTS.register("onnx-int8", extension=".int8.onnx")
class OnnxInt8Format(OnnxFormat):
    """ONNX Runtime static quantization of the fp32 graph (QDQ, per-channel int8 weights, uint8 activations)."""

    needs_calibration = True

    def write(self, model, example, path, calibration, page=None):
        # deferred: onnxruntime.quantization imports the onnx package and its checkers (slow); only int8 needs it
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self, images: torch.Tensor) -> None:
                self.chunks = iter([{INPUT_NAME: c.numpy()} for c in images.float().split(64)])

            def get_next(self):
                return next(self.chunks, None)

        with tempfile.TemporaryDirectory(prefix="meddistill-quant-") as work:
            fp32, prepared = Path(work) / "model.onnx", Path(work) / "model.prep.onnx"
            super().write(model, example, fp32, None)
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(path),
                Reader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                # 7-bit weights: without VNNI (AVX2, AVX-512 without VNNI) ONNX Runtime's u8s8 kernels saturate
                # their 16-bit sums, so the same file gave other probabilities there than in a browser or on a VNNI
                # CPU (up to 0.013 on the ChestX-ray14 page); with reduce_range every machine computes alike.
                reduce_range=True,
            )


@EXPORTS.register(WEB, extension=".html")
class WebPageFormat(OnnxInt8Format):
    """One self-contained HTML page: the int8 ONNX model, ONNX Runtime Web and an interface that reads a PNG, JPEG
    or DICOM scan and shows the probabilities (``meddistill.web``); opened from ``file://`` with no network.
    ``load`` runs the embedded model with ONNX Runtime, so the page's model is checked like any export."""

    needs_page = True

    def write(self, model, example, path, calibration, page=None):
        if page is None:
            raise ValueError("the web page needs the run's facts (page=...: meddistill.reports.web.page_info)")
        with tempfile.TemporaryDirectory(prefix="meddistill-web-") as work:
            onnx_file = Path(work) / "model.int8.onnx"
            super().write(model, example, onnx_file, calibration)
            info = {**page, "input_name": INPUT_NAME, "output_name": OUTPUT_NAME}
            Path(path).write_text(build_page(onnx_file.read_bytes(), info), encoding="utf-8")

    def load(self, path, threads):
        return onnx_runner(embedded_model(Path(path).read_bytes()), threads)


def export_model(
    model: nn.Module,
    fmt: str,
    path: str | Path,
    in_channels: int,
    image_size: int,
    calibration: torch.Tensor | None = None,
    page: dict | None = None,
) -> Path:
    """Write ``model`` to ``path`` in format ``fmt`` (atomically).

    Args:
        model: A network mapping (B, C, S, S) to logits (B, K); exported in eval mode on CPU.
        fmt: A name from ``available_formats()``.
        path: Output file.
        in_channels: Input channels C.
        image_size: Input side S.
        calibration: (N, C, S, S) real, normalised images for formats that
            need them ("onnx-int8": a few hundred train images); ignored by the others.
        page: The run's facts for a format that writes a page ("web": ``meddistill.reports.web.page_info``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: unknown format (listing the valid ones), or a calibrated format without calibration images.
    """
    exporter = EXPORTS.create(fmt)
    if exporter.needs_calibration and (calibration is None or len(calibration) == 0):
        raise ValueError(f"{fmt} needs calibration images (N, C, S, S), e.g. 256 training images")
    model = model.to("cpu").eval()
    example = torch.zeros(2, in_channels, *[image_size] * getattr(model, "spatial_dims", 2))  # a model of volumes: 3
    return atomic_write(path, lambda tmp: exporter.write(model, example, tmp, calibration, page))


def load_exported(path: str | Path, fmt: str, threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping images (B, C, S, S) to logits (B, K) on CPU, running the exported file.

    Args:
        path: File written by ``export_model``.
        fmt: Its format.
        threads: Intra-op threads for ONNX Runtime (default: its own choice).
    """
    return EXPORTS.create(fmt).load(path, threads)


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


class Tempered(nn.Module):
    """A model whose logits are divided by its val-fitted temperature (one, or one per finding), so an exported file
    gives calibrated probabilities (``meddistill.evaluation.calibration``): (B, C, S, S) -> (B, K) logits / T."""

    def __init__(self, model: nn.Module, temperature: list[float]) -> None:
        super().__init__()
        self.model = model
        self.spatial_dims = getattr(model, "spatial_dims", 2)  # what it takes, as the model it wraps
        self.register_buffer("temperature", torch.tensor(temperature, dtype=torch.float32).reshape(1, -1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images) / self.temperature


def compare_outputs(
    run: Callable,
    model: nn.Module,
    chunks: Iterable[torch.Tensor],
    activation: Callable | None = None,
    findings: bool = False,
) -> tuple[np.ndarray, float, float]:
    """(exported probabilities (N, K), max |p_exported - p_torch|, agreement) over image chunks.

    ``activation`` turns logits into probabilities (default softmax); agreement is the same-argmax fraction, or for
    ``findings`` (a sigmoid per finding) the fraction of (image, finding) calls at 0.5 that match."""
    model = model.to("cpu").eval()
    activation = activation or _softmax
    probs, max_diff, same, total = [], 0.0, 0, 0
    for images in chunks:
        with torch.no_grad():
            reference = activation(model(images).float())
        exported = activation(run(images).float())
        max_diff = max(max_diff, float((exported - reference).abs().max()))
        if not findings:
            same, total = same + int((exported.argmax(1) == reference.argmax(1)).sum()), total + len(images)
        else:
            same, total = same + int(((exported >= 0.5) == (reference >= 0.5)).sum()), total + exported.numel()
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
    _, max_diff, same = compare_outputs(load_exported(path, fmt), model, images.split(CHUNK))
    return {"max_abs_prob_diff": max_diff, "agreement": same, "size_bytes": Path(path).stat().st_size}


def calibration_images(batches, count: int = CALIBRATION_IMAGES, seed: int = 0) -> torch.Tensor:
    """``count`` images drawn at random (fixed seed) from a split's ``Batches``."""
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.cat([images for images, _, _ in batches.iterate(CHUNK, order)])
