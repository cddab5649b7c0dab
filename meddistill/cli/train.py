"""``meddistill run`` and ``meddistill resume``: train a run, alone or as one rank of a torchrun job."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as torch_dist
from tqdm import tqdm

from meddistill.cli.data import add_data_arguments
from meddistill.data.dataset import MedDataset
from meddistill.data.options import DataOptions
from meddistill.data.summary import describe_splits, findings_checks, leakage_warnings
from meddistill.errors import MedDistillError
from meddistill.pipeline.building import distil_line
from meddistill.pipeline.plan import BUDGET_NOTE, describe_plan, plan_run, volume_note
from meddistill.pipeline.runner import budgeted, execute
from meddistill.pipeline.train_on import plan_line
from meddistill.reports.tables import comparison_table, findings_table, summary_lines
from meddistill.services.teachers import check_teacher
from meddistill.services.tracked import tracked_run
from meddistill.settings.config import PRESETS, RunConfig
from meddistill.settings.declarations import SETTINGS, add_setting_options
from meddistill.settings.files import merged, read_settings
from meddistill.settings.sources import AUTO_METHOD
from meddistill.store.index import ACTIVE, RunStatus, RunStore, open_run
from meddistill.store.layout import CONFIG_FILE
from meddistill.training import distributed


def add_commands(commands) -> None:
    """Add ``run``, ``resume`` and ``tune`` to the sub-parsers ``commands``; ``run``'s setting options are made from
    the settings' declarations (``meddistill.settings.declarations``)."""
    run = commands.add_parser("run", help="train teacher, scratch student and distilled student")
    run.add_argument(
        "--data",
        help="a .npz, a folder or .zip of class folders, or a MedMNIST name such as breastmnist (or data: in --config)",
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        help="a settings file (YAML or JSON, the settings' own names; `meddistill config RUN` writes one); the flags "
        "you also give override it",
    )
    run.add_argument(
        "--preset", choices=list(PRESETS), help="settings preset (default: thorough with a GPU, cpu without)"
    )
    add_setting_options(run, {name: value for name, value in RunConfig().to_dict().items() if name in _NAMED})
    run.add_argument(
        "--teacher-from",
        metavar="RUN",
        help="reuse the trained teacher of another run on the same data (run id or folder): not trained again, "
        "its cached logits reused",
    )
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


_NAMED = ("teacher", "student", "method")  # settings whose library default --help names (the rest: the preset's)


def config_from(args: argparse.Namespace) -> RunConfig:
    """The validated ``RunConfig`` of ``meddistill run``'s options (a local data path made absolute)."""
    names = [s.name for s in SETTINGS.values() if s.cli] + list(DataOptions.names())
    overrides = {name: getattr(args, name) for name in names}
    preset, data = args.preset, args.data
    if getattr(args, "config", None):
        from_file = read_settings(args.config)
        preset, data = preset or from_file.pop("preset", None), data or from_file.pop("data", None)
        from_file.pop("preset", None), from_file.pop("data", None)
        overrides = merged(from_file, overrides)
    if not data:
        raise MedDistillError("give the data to train on: --data, or data: in the --config file.")
    if getattr(args, "teacher_from", None):
        overrides.update(reused_teacher(args.teacher_from, overrides))
    if Path(data).expanduser().exists():
        data = str(Path(data).expanduser().resolve())
    return RunConfig.from_preset(preset, data=data, **overrides).validate()


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


def train(store: RunStore | None, run: str, is_main: bool = True, dataset: MedDataset | None = None) -> int:
    """Train a registered run (rank 0: by id, with progress bars) or, on other ranks, the run folder ``run``
    (``dataset``: the run's data when already loaded)."""
    bars = ProgressBars() if is_main else None
    try:
        if is_main:
            report = tracked_run(store, run, callback=bars, dataset=dataset)
        else:
            report = execute(RunConfig.load(Path(run) / CONFIG_FILE), run)
    except KeyboardInterrupt:
        if is_main:
            store.set_status(run, RunStatus.INTERRUPTED, "Stopped with Ctrl-C; resume it with `meddistill resume`.")
        raise
    finally:
        if bars:
            bars.close()
    if is_main and report is not None:
        record = store.get(run)
        print(comparison_table(report))
        if findings_table(report):
            print(findings_table(report))
        for line in summary_lines(report):
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
        config = config.replace(world_size=distributed.world_size())
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


def print_plan(config: RunConfig) -> MedDataset:
    """Load the data (refusing bad data before a run is registered), print what each model will train, and return
    the data (the run trains on it without reading it again)."""
    dataset = config.load_data()
    train = len(dataset.splits["train"])
    fitted = budgeted(config.for_data(dataset.image_size, dataset.spatial_dims), dataset)  # what execute will run
    size = fitted.resolved_image_size(dataset.image_size)
    plans = plan_run(fitted, train, dataset.channels, size, dataset.num_classes)
    threads = config.threads or distributed.default_threads()
    provenance = dataset.provenance
    print(
        f"Data: {provenance.get('layout') or provenance.get('kind')}; splits: "
        f"{describe_splits(provenance.get('splits', ''))}"
    )
    for line in leakage_warnings(provenance.get("leakage", {})) + [c.text for c in findings_checks(provenance)]:
        print(f"warning: {line}")
    if config.teacher_source().from_file:
        print("Teacher: " + check_teacher(config, dataset))  # refused here, before anything trains, if it does not fit
    unit = f"volumes at {size}^3 voxels" if dataset.spatial_dims == 3 else f"images at {size} px"
    print(f"Plan on {dataset.summary()['name']} ({train} train {unit}, {threads} CPU threads):")
    print(describe_plan(plans), flush=True)
    volumes = volume_note(fitted, train, dataset.channels, dataset.image_size, dataset.num_classes)
    for note in (volumes, fitted.extra.get(BUDGET_NOTE), plan_line(fitted), distil_line(fitted)):
        if note:
            print(note, flush=True)
    return dataset


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if distributed.launched_by_torchrun():
        config.load_data()  # refuse bad data before a run is registered
        return run_under_torchrun(config, args.out)
    dataset = print_plan(config)
    store = RunStore()
    record = store.create(config, args.out)
    return train(store, record.id, dataset=dataset)


def cmd_resume(args: argparse.Namespace) -> int:
    store = RunStore()
    store.mark_interrupted()
    record = store.get(args.run)
    if record.status == RunStatus.DONE:
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
        "teacher_from": str(folder.path),
        "image_size": overrides.get("image_size") or folder.summary()["train_image_size"],
    }


def cmd_tune(args: argparse.Namespace) -> int:
    """A new run with the same data and settings, the old run's teacher used as is and ``--method auto``."""
    store = RunStore()
    folder = open_run(args.run, store)
    if not folder.has_weights("teacher"):
        raise MedDistillError(f"{folder.path.name} has no trained teacher yet; finish it with meddistill resume first.")
    source = folder.config()
    config = source.replace(
        method=AUTO_METHOD,
        teacher_weights=str(folder.teacher_file()),
        teacher_from=str(folder.path),
        teacher_epochs=0,
        given=sorted({*source.given, "method", "teacher_weights", "teacher_from", "teacher_epochs"}),
        extra={k: v for k, v in source.extra.items() if k != BUDGET_NOTE},  # a new run: its own plan
    )
    dataset = print_plan(config.validate())
    record = store.create(config, args.out)
    return train(store, record.id, dataset=dataset)
