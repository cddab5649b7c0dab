"""``meddistill export``: write a run's model as TorchScript, ONNX, int8 ONNX or an offline web page and check it."""

from __future__ import annotations

import argparse
from pathlib import Path

from meddistill.errors import MedDistillError
from meddistill.evaluation.export import EXPORTS, available_formats
from meddistill.reports.export import export_run
from meddistill.store.index import open_run
from meddistill.store.layout import ROLES


def add_commands(commands) -> None:
    """Add ``export`` to the sub-parsers ``commands``."""
    parser = commands.add_parser(
        "export",
        help="export a run's model to TorchScript, ONNX, int8 ONNX or one offline web page (web) and check it on the "
        "test split",
    )
    parser.add_argument("run", help="run id (or prefix) or run folder")
    parser.add_argument("--format", choices=available_formats(), default="onnx", help="file format (default onnx)")
    parser.add_argument(
        "--model", choices=ROLES, default="student_kd", help="which model of the run (default student_kd)"
    )
    parser.add_argument("--out", help="output file (default RUN/exports/MODEL.EXT)")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="export the raw logits (default: divided by the model's val-fitted temperature: calibrated); use it for "
        "a teacher you will distil from again, so the file gives the teacher's own logits",
    )
    parser.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export the model, check it on the test split and print the figures."""
    run_dir = open_run(args.run).path
    try:
        result = export_run(run_dir, args.format, role=args.model, out=args.out, raw=args.raw)
    except OSError as error:
        raise MedDistillError(
            f"Could not write the export ({error.strerror or error}) for {error.filename or run_dir}; "
            "check the --out folder exists and is writable."
        ) from None
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MedDistillError(
            f"Exporting {args.model} of run {run_dir.name} as {args.format} failed ({first}); try another --format."
        ) from None
    print(result["path"])
    if EXPORTS.entry(args.format).factory.needs_page:
        print(f"open it in any browser (no install, no network): {Path(result['path']).resolve().as_uri()}")
    print(
        f"{result['format']} {result['role']}: {result['size_bytes'] / 1e6:.3f} MB, "
        f"max |prob diff| vs PyTorch {result['max_abs_prob_diff']:.2e}, agreement {result['agreement']:.1%}, "
        f"test ACC {result['test_acc']:.3f}, AUC {result['test_auc']:.3f}"
    )
    if result["temperature"] is not None:
        temperatures = ", ".join(f"{t:.3f}" for t in result["temperature"][:4])
        print(
            f"calibrated: logits divided by T = {temperatures} (fitted on val); max |prob diff| vs the report's "
            f"calibrated test probabilities {result['max_abs_diff_vs_report']:.2e}"
        )
    return 0
