"""``meddistill run`` and ``meddistill resume``: train a run, alone or as one rank of a torchrun job."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch
import torch.distributed as torch_dist
from tqdm import tqdm

from meddistill.cli.data import add_data_arguments
from meddistill.data.options import DataOptions
from meddistill.data.summary import describe_splits, leakage_lines
from meddistill.distillation.base import available_methods
from meddistill.errors import MedDistillError
from meddistill.runs.config import AUTO_METHOD, PRESETS, PRETRAINED_CHOICES, PRETRAINED_DEFAULTS, RunConfig
from meddistill.runs.deployment import DEPLOYED_FORMATS, deployed_fields
from meddistill.runs.jobs import run_recorded
from meddistill.runs.layout import CONFIG_FILE
from meddistill.runs.pipeline import execute
from meddistill.runs.plan import describe_plan, plan_run
from meddistill.runs.store import ACTIVE, RunStore, open_run
from meddistill.training import distributed
from meddistill.views.compare import search_summary
from meddistill.views.teachers import check_teacher

# RunConfig fields that `meddistill run` takes as options of the same name.
RUN_OPTIONS = (
    "teacher",
    "student",
    "method",
    "teacher_epochs",
    "student_epochs",
    "min_steps",
    "patience",
    "kd_temperature",
    "kd_alpha",
    "kd_beta",
    "lr",
    "batch_size",
    "image_size",
    "augment",
    "augment_students",
    "class_weighted",
    "seed",
    "device",
    "teacher_weights",
    "teacher_classes",
    "pretrained",
    "student_weights",
    "threads",
    "channels_last",
    "checkpoint_seconds",
    *DataOptions.names(),
)


def add_commands(commands) -> None:
    """Add ``run`` and ``resume`` to the sub-parsers ``commands``."""
    run = commands.add_parser("run", help="train teacher, scratch student and distilled student")
    run.add_argument(
        "--data",
        required=True,
        help="a .npz, a folder or .zip of class folders, or a MedMNIST name such as breastmnist",
    )
    defaults = RunConfig()
    run.add_argument("--teacher", help=f"teacher architecture (default {defaults.teacher})")
    run.add_argument("--student", help=f"student architecture (default {defaults.student})")
    run.add_argument(
        "--method",
        help=f"distillation method: {', '.join(available_methods())}, or auto to choose one and its settings on "
        f"validation data (default {defaults.method})",
    )
    run.add_argument(
        "--preset", choices=list(PRESETS), help="settings preset (default: thorough with a GPU, cpu without)"
    )
    run.add_argument("--teacher-epochs", type=int)
    run.add_argument("--student-epochs", type=int)
    run.add_argument(
        "--min-steps", type=int, help="raise the preset's default epochs to reach this many steps per model"
    )
    run.add_argument("--patience", type=int, help="stop a model after this many epochs without val improvement")
    run.add_argument("--kd-temperature", type=float)
    run.add_argument("--kd-alpha", type=float, help="weight of the teacher term; 1 - alpha goes to the labels")
    run.add_argument("--kd-beta", type=float, help="DKD: weight of the non-target-class term (default 8)")
    run.add_argument("--lr", type=float)
    run.add_argument("--batch-size", type=int)
    run.add_argument(
        "--image-size", type=int, help="train at this side in pixels (default: native, capped by the preset)"
    )
    flag = argparse.BooleanOptionalAction
    run.add_argument(
        "--augment", action=flag, help="augment the teacher's training images (default: on in cpu and thorough)"
    )
    run.add_argument(
        "--augment-students", action=flag, help="augment the students' training images too (thorough only)"
    )
    run.add_argument("--class-weighted", action=flag)
    run.add_argument("--seed", type=int)
    run.add_argument("--device", choices=["auto", "cpu", "cuda"])
    run.add_argument("--threads", type=int, help="CPU threads for torch (default: one per available core)")
    run.add_argument(
        "--channels-last", action=flag, help="train in the NHWC memory format (default: on; faster convolutions)"
    )
    run.add_argument(
        "--checkpoint-seconds",
        type=float,
        help="save the training state after the first epoch, then at most this often (default 30; 0: every epoch)",
    )
    run.add_argument(
        "--teacher-weights",
        help="a teacher trained elsewhere: .safetensors or a PyTorch state dict (.pt/.pth; never unpickled) for "
        "--teacher ARCH, a TorchScript file or an ONNX model; with --teacher-epochs 0 it is used as is. With "
        "--pretrained: the ImageNet weights file to start from instead of the cache or a download",
    )
    run.add_argument(
        "--teacher-classes",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        help="an imported teacher's class names in the order of its outputs, comma-separated (default: the "
        "dataset's order, as check-data prints it)",
    )
    run.add_argument(
        "--teacher-from",
        metavar="RUN",
        help="reuse the trained teacher of another run on the same data (run id or folder): not trained again, "
        "its cached logits reused",
    )
    run.add_argument(
        "--pretrained",
        nargs="?",
        const="teacher",
        choices=PRETRAINED_CHOICES,
        help="start the teacher (the default when given alone), the student or both from timm's ImageNet weights "
        f"(downloaded once, or from --teacher-weights / --student-weights); without --teacher it is "
        f"{PRETRAINED_DEFAULTS['teacher']}, without --student {PRETRAINED_DEFAULTS['student']}",
    )
    run.add_argument("--student-weights", help="with --pretrained student/both: the ImageNet weights file to use")
    add_data_arguments(run)
    run.add_argument("--out", help="write the run folder here instead of MEDDISTILL_HOME/runs/RUN_ID")
    run.set_defaults(func=cmd_run)
    resume = commands.add_parser("resume", help="continue an interrupted run from its last completed epoch")
    resume.add_argument("run")
    resume.set_defaults(func=cmd_resume)
    tune = commands.add_parser(
        "tune", help="choose the distillation method on validation data for a finished run's teacher (a new run)"
    )
    tune.add_argument("run", help="run id (or prefix) or run folder whose teacher is kept")
    tune.add_argument("--out", help="write the new run folder here instead of MEDDISTILL_HOME/runs/RUN_ID")
    tune.set_defaults(func=cmd_tune)


def config_from(args: argparse.Namespace) -> RunConfig:
    """The validated ``RunConfig`` of ``meddistill run``'s options (a local data path made absolute)."""
    overrides = {name: getattr(args, name) for name in RUN_OPTIONS}
    if getattr(args, "teacher_from", None):
        overrides.update(reused_teacher(args.teacher_from, overrides))
    data = args.data
    if Path(data).expanduser().exists():
        data = str(Path(data).expanduser().resolve())
    return RunConfig.from_preset(args.preset, data=data, **overrides).validate()


class ProgressBars:
    """One tqdm progress bar per model: epoch, loss, validation accuracy, ETA."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, event) -> None:
        bar = self.bars.get(event.role)
        if bar is None:
            for other in self.bars.values():
                other.close()
            total = event.epochs * event.batches
            bar = self.bars[event.role] = tqdm(
                total=total, desc=f"{event.role:<15}", unit="batch", dynamic_ncols=True, file=sys.stderr
            )
        if event.kind == "batch":
            bar.update(1)
            bar.set_postfix_str(f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f}", refresh=False)
        else:
            bar.set_postfix_str(
                f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f} "
                f"val acc {event.val_acc:.3f} auc {event.val_auc:.3f}"
            )
            if event.epoch < event.epochs and bar.n < event.epoch * event.batches:
                bar.update(event.epoch * event.batches - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def comparison_table(report: dict) -> str:
    """A plain-text table of the three models: ACC, AUC, size, eager latency and speed-up, and the fastest
    latency as deployed (ONNX Runtime, fp32 or int8)."""
    models = report["models"]
    base = models.get("teacher", {}).get("latency_ms_b1")
    head = f"{'model':<17}{'arch':<20}{'ACC':>7}{'AUC':>7}{'params':>12}{'MB':>8}{'ms/img':>9}{'speed-up':>10}"
    lines = [head + f"{'ORT ms/img':>12}"]
    for role, m in models.items():
        speed = f"{base / m['latency_ms_b1']:.1f}x" if base else "-"
        deployed = [
            m[deployed_fields(fmt)[0]] for fmt in DEPLOYED_FORMATS.get(role, ()) if deployed_fields(fmt)[0] in m
        ]
        ort = f"{min(deployed):.3f}" if deployed else "-"
        lines.append(
            f"{role:<17}{m['arch']:<20}{m['test']['acc']:>7.3f}{m['test']['auc']:>7.3f}{m['params']:>12,}"
            f"{m['size_mb']:>8.2f}{m['latency_ms_b1']:>9.2f}{speed:>10}{ort:>12}"
        )
    return "\n".join(lines)


def train(store: RunStore | None, run: str, is_main: bool = True) -> int:
    """Train a registered run (rank 0: by id, with progress bars) or, on other ranks, the run folder ``run``."""
    bars = ProgressBars() if is_main else None
    try:
        if is_main:
            report = run_recorded(store, run, callback=bars)
        else:
            report = execute(RunConfig.load(Path(run) / CONFIG_FILE), run)
    except KeyboardInterrupt:
        if is_main:
            store.set_status(run, "interrupted", "Stopped with Ctrl-C; resume it with `meddistill resume`.")
        raise
    finally:
        if bars:
            bars.close()
    if is_main and report is not None:
        record = store.get(run)
        print(comparison_table(report))
        for line in [search_summary(report)] + [v["sentence"] for v in report.get("verdict", {}).values()]:
            if line:
                print(line)
        print(f"\nRun {record.id} written to {record.path}")
    return 0


def run_under_torchrun(config: RunConfig, out: str | None) -> int:
    """Run ``meddistill run`` as one rank of a torchrun job.

    Rank 0 registers the run (index and folder) and broadcasts the folder; all
    ranks train with DistributedDataParallel (gloo on CPU, NCCL on GPUs); only
    rank 0 writes.

    Args:
        config: The run's settings (``world_size`` is recorded from the job).
        out: Optional run folder (``--out``).
    """
    use_cuda = torch.cuda.is_available() and config.device != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch_dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        config.world_size = distributed.world_size()
        shared: list = [None, None]
        store = None
        if distributed.is_main():
            print_plan(config)
            store = RunStore()
            record = store.create(config, out)
            shared = [record.id, str(record.path)]
        torch_dist.broadcast_object_list(shared, src=0)
        result = train(store, shared[0]) if distributed.is_main() else train(None, shared[1], False)
        torch_dist.barrier()
        return result
    finally:
        torch_dist.destroy_process_group()


def print_plan(config: RunConfig) -> None:
    """Load the data (refusing bad data before a run is registered) and print what each model will train."""
    dataset = config.load_data()
    size = config.resolved_image_size(dataset.image_size)
    train = len(dataset.splits["train"])
    plans = plan_run(config, train, dataset.channels, size, dataset.num_classes)
    threads = config.threads or distributed.default_threads()
    provenance = dataset.provenance
    print(
        f"Data: {provenance.get('layout') or provenance.get('kind')}; splits: "
        f"{describe_splits(provenance.get('splits', ''))}"
    )
    for line in leakage_lines(provenance.get("leakage", {})):
        if line.startswith("warning"):
            print(line)
    if config.teacher_weights and not config.starts_pretrained("teacher"):
        print("Teacher: " + check_teacher(config, dataset))  # refused here, before anything trains, if it does not fit
    print(f"Plan on {dataset.summary()['name']} ({train} train images at {size} px, {threads} CPU threads):")
    print(describe_plan(plans), flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if distributed.launched_by_torchrun():
        config.load_data()  # refuse bad data before a run is registered
        return run_under_torchrun(config, args.out)
    print_plan(config)
    store = RunStore()
    record = store.create(config, args.out)
    return train(store, record.id)


def cmd_resume(args: argparse.Namespace) -> int:
    store = RunStore()
    store.mark_interrupted()
    record = store.get(args.run)
    if record.status == "done":
        print(f"Run {record.id} is already done.")
        return 0
    if record.status in ACTIVE:
        raise MedDistillError(
            f"Run {record.id} is {record.status} in another process; wait for it or stop that process first."
        )
    return train(store, record.id)


def reused_teacher(run: str, overrides: dict) -> dict:
    """The settings that make a new run reuse ``run``'s trained teacher as is (``--teacher-from``).

    Raises:
        MedDistillError: the run has no trained teacher, or --teacher-weights / --teacher were also given.
    """
    if overrides.get("teacher_weights") or overrides.get("teacher"):
        raise MedDistillError(
            "Give either --teacher-from (the teacher and its architecture come from that run) or --teacher / "
            "--teacher-weights, not both."
        )
    folder = open_run(run, RunStore())
    if not folder.has_weights("teacher"):
        raise MedDistillError(f"{folder.path.name} has no trained teacher yet; finish it with meddistill resume first.")
    source = folder.config()
    return {
        "teacher": source.teacher,
        "teacher_weights": str(folder.teacher_file()),
        "teacher_classes": source.teacher_classes,
        "teacher_epochs": overrides.get("teacher_epochs") or 0,
        "image_size": overrides.get("image_size") or folder.summary()["train_image_size"],
    }


def cmd_tune(args: argparse.Namespace) -> int:
    """A new run with the same data and settings, the old run's teacher used as is and ``--method auto``."""
    store = RunStore()
    folder = open_run(args.run, store)
    if not folder.has_weights("teacher"):
        raise MedDistillError(f"{folder.path.name} has no trained teacher yet; finish it with meddistill resume first.")
    config = dataclasses.replace(
        folder.config(), method=AUTO_METHOD, teacher_weights=str(folder.teacher_file()), teacher_epochs=0
    )
    config.given = sorted({*config.given, "method", "teacher_weights", "teacher_epochs"})
    print_plan(config.validate())
    record = store.create(config, args.out)
    return train(store, record.id)
