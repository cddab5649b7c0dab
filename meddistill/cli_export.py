"""The `meddistill export` command: write a run's model as TorchScript, ONNX or int8 ONNX and check it."""

from __future__ import annotations

import argparse
from pathlib import Path

from meddistill.errors import MedDistillError

ROLES = ("teacher", "student_scratch", "student_kd")  # as meddistill.pipeline.ROLES (not imported: keeps `meddistill --help` free of torch)
FORMATS = ("torchscript", "onnx", "onnx-int8")  # as meddistill.export.FORMATS


def _run_folder(run: str) -> Path:
    """A run id (or prefix) from the index, or an existing run folder."""
    folder = Path(run).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        return folder.resolve()
    from meddistill.runs import RunStore

    return RunStore().get(run).path


def cmd_export(args: argparse.Namespace) -> int:
    """Export the model, check it on the test split and print the figures."""
    from meddistill.export import export_run

    run_dir = _run_folder(args.run)
    try:
        result = export_run(run_dir, args.format, role=args.model, out=args.out)
    except OSError as error:
        raise MedDistillError(f"Could not write the export ({error.strerror or error}) for {error.filename or run_dir}; check the --out folder exists and is writable.") from None
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MedDistillError(f"Exporting {args.model} of run {run_dir.name} as {args.format} failed ({first}); try another --format.") from None
    print(result["path"])
    print(
        f"{result['format']} {result['role']}: {result['size_bytes'] / 1e6:.3f} MB, "
        f"max |prob diff| vs PyTorch {result['max_abs_prob_diff']:.2e}, agreement {result['agreement']:.1%}, "
        f"test ACC {result['test_acc']:.3f}, AUC {result['test_auc']:.3f}"
    )
    return 0


def register(commands) -> dict:
    """Add the ``export`` sub-command to ``commands``; return ``{"export": handler}``."""
    parser = commands.add_parser("export", help="export a run's model to TorchScript, ONNX or int8 ONNX and check it on the test split")
    parser.add_argument("run", help="run id (or prefix) or run folder")
    parser.add_argument("--format", choices=list(FORMATS), default="onnx", help="file format (default onnx)")
    parser.add_argument("--model", choices=list(ROLES), default="student_kd", help="which model of the run (default student_kd)")
    parser.add_argument("--out", help="output file (default RUN/exports/MODEL.EXT)")
    return {"export": cmd_export}
