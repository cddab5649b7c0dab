"""The ``meddistill explain`` command: a saliency overlay for one scan and one trained model.

Example:
    meddistill explain --run runs/2024-05-01_12-00-00 --image scan.dcm --out scan_cam.png

writes ``scan_cam.png`` (the heat map blended on the scan, at the scan's
resolution) and ``scan_cam.npy`` (the raw (S, S) float32 map in [0, 1] at the
model's input size), and prints the predicted class and its probability. For a run
of volumes ``--image`` is a NIfTI file: the PNG is the axial slice through the
map's peak and the .npy the (S, S, S) map.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from meddistill.data.folder import decode_file
from meddistill.data.tensors import image_tensor
from meddistill.data.volumes import decode_nifti, is_nifti
from meddistill.errors import DataError, MedDistillError
from meddistill.explain.methods import available_explainers, predict_proba, saliency
from meddistill.explain.overlay import overlay
from meddistill.explain.planes import representative_slice
from meddistill.io.atomic import atomic_write
from meddistill.store.index import open_run
from meddistill.store.layout import ROLES


def add_commands(commands) -> None:
    """Add ``explain`` to the sub-parsers ``commands``."""
    parser = commands.add_parser(
        "explain", help="save a saliency overlay (Grad-CAM, occlusion, integrated gradients) of one image"
    )
    parser.add_argument("--run", required=True, help="run folder or run id (or id prefix)")
    parser.add_argument(
        "--image", required=True, help="a PNG, JPEG, BMP, TIFF or DICOM (.dcm) file; a NIfTI volume for a 3D run"
    )
    parser.add_argument(
        "--model", choices=ROLES, default="student_kd", help="which of the run's models to explain (default student_kd)"
    )
    parser.add_argument(
        "--method", choices=available_explainers(), default="gradcam", help="saliency method (default gradcam)"
    )
    parser.add_argument("--out", required=True, help="overlay PNG to write; the raw map goes beside it as .npy")
    parser.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Write the overlay PNG and the .npy map for ``args.image``; print the prediction."""
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        raise MedDistillError(f"--out {out.name} must end in .png (the raw map is written beside it as .npy).")
    image_path = Path(args.image).expanduser()
    if not image_path.is_file():
        raise DataError(f"Image {image_path.name} does not exist at {image_path.parent}; check the --image path.")
    folder = open_run(args.run).require_finished()
    model, summary = folder.load_model(args.model), folder.summary()
    dims = summary.get("spatial_dims", 2)
    if (dims == 3) != is_nifti(image_path):
        wanted = "a NIfTI volume (.nii or .nii.gz)" if dims == 3 else "a 2D image (PNG, JPEG, BMP, TIFF or DICOM)"
        raise DataError(
            f"Run {folder.path.name} was trained on {'volumes' if dims == 3 else '2D images'}; give {wanted}."
        )
    scan = decode_nifti(image_path) if dims == 3 else decode_file(image_path)
    x = image_tensor(scan, summary["channels"], summary["train_image_size"], dims)
    probs = predict_proba(model, x)
    predicted = int(probs.argmax())
    heat = saliency(model, x, predicted, args.method)
    picture = representative_slice(scan, heat, heat)["teacher"] if dims == 3 else overlay(scan, heat)

    def write_npy(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, heat)

    atomic_write(out, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
    atomic_write(out.with_suffix(".npy"), write_npy)
    name = summary["classes"][predicted]
    print(f"{args.model} ({model.arch}) predicts '{name}' with probability {probs[predicted]:.3f}.")
    print(f"{args.method} overlay written to {out} and the raw map to {out.with_suffix('.npy')}.")
    return 0
