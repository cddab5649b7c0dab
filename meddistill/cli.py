"""The ``meddistill`` command: train, list, show, check, resume, import, export and explain runs.

Bad input ends with exit status 2 and one sentence naming the file and the
fix, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meddistill.config import PRESETS, RunConfig
from meddistill.errors import MedDistillError

EXIT_BAD_INPUT = 2


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a .npz, a folder or .zip of class folders, or a MedMNIST name such as breastmnist")
    parser.add_argument("--teacher", help="teacher architecture (default resnet18)")
    parser.add_argument("--student", help="student architecture (default tiny_cnn)")
    parser.add_argument("--method", help="distillation method: kd, attention or fitnet (default kd)")
    parser.add_argument("--preset", choices=list(PRESETS), help="settings preset (default: thorough with a GPU, cpu without)")
    parser.add_argument("--teacher-epochs", type=int)
    parser.add_argument("--student-epochs", type=int)
    parser.add_argument("--kd-temperature", type=float)
    parser.add_argument("--kd-alpha", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--image-size", type=int, help="train at this side in pixels (default: native, capped by the preset)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None, help="augment the teacher's training images (default: on in the cpu and thorough presets)")
    parser.add_argument("--augment-students", action=argparse.BooleanOptionalAction, default=None, help="augment the students' training images too (default: on in thorough only)")
    parser.add_argument("--class-weighted", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--teacher-weights", help="start the teacher from this local .safetensors file")
    parser.add_argument("--out", help="write the run folder here instead of MEDDISTILL_HOME/runs/RUN_ID")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meddistill", description="Distill a medical-image teacher into a small student and measure both.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_arguments(commands.add_parser("run", help="train teacher, scratch student and distilled student"))
    commands.add_parser("runs", help="list runs")
    show = commands.add_parser("show", help="print a run's report")
    show.add_argument("run", help="run id (or prefix) or run folder")
    show.add_argument("--json", action="store_true", help="print report.json as it is")
    check = commands.add_parser("check-data", help="validate a dataset without training")
    check.add_argument("source")
    resume = commands.add_parser("resume", help="continue an interrupted run from its last completed epoch")
    resume.add_argument("run")
    imported = commands.add_parser("import", help="add a run folder made elsewhere (e.g. with torchrun) to the index")
    imported.add_argument("run_dir")
    from meddistill.cli_extra import add_extra_commands

    add_extra_commands(commands)
    return parser


def _config_from(args: argparse.Namespace) -> RunConfig:
    names = ["teacher", "student", "method", "teacher_epochs", "student_epochs", "kd_temperature", "kd_alpha", "lr", "batch_size",
             "image_size", "augment", "augment_students", "class_weighted", "seed", "device", "teacher_weights"]
    overrides = {name: getattr(args, name) for name in names}
    data = args.data
    if Path(data).expanduser().exists():
        data = str(Path(data).expanduser().resolve())
    return RunConfig.from_preset(args.preset, data=data, **overrides).validate()


class _Bars:
    """One tqdm progress bar per model: epoch, loss, validation accuracy, ETA."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, event) -> None:
        from tqdm import tqdm

        bar = self.bars.get(event.role)
        if bar is None:
            for other in self.bars.values():
                other.close()
            bar = self.bars[event.role] = tqdm(total=event.epochs * event.batches, desc=f"{event.role:<15}", unit="batch", dynamic_ncols=True, file=sys.stderr)
        if event.kind == "batch":
            bar.update(1)
            bar.set_postfix_str(f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f}", refresh=False)
        else:
            bar.set_postfix_str(f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f} val acc {event.val_acc:.3f} auc {event.val_auc:.3f}")
            if event.epoch < event.epochs and bar.n < event.epoch * event.batches:
                bar.update(event.epoch * event.batches - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def comparison_table(report: dict) -> str:
    """A plain-text table of the three models (ACC, AUC, size, latency, speed-up)."""
    models = report["models"]
    base = models.get("teacher", {}).get("latency_ms_b1")
    lines = [f"{'model':<17}{'arch':<20}{'ACC':>7}{'AUC':>7}{'params':>12}{'MB':>8}{'ms/img':>9}{'speed-up':>10}"]
    for role, m in models.items():
        speed = f"{base / m['latency_ms_b1']:.1f}x" if base else "-"
        lines.append(f"{role:<17}{m['arch']:<20}{m['test']['acc']:>7.3f}{m['test']['auc']:>7.3f}{m['params']:>12,}{m['size_mb']:>8.2f}{m['latency_ms_b1']:>9.2f}{speed:>10}")
    return "\n".join(lines)


def _train(store, run_id: str, is_main: bool = True) -> int:
    from meddistill.jobs import run_recorded
    from meddistill.pipeline import execute

    bars = _Bars() if is_main else None
    try:
        if is_main:
            report = run_recorded(store, run_id, callback=bars)
        else:
            report = execute(RunConfig.load(Path(run_id) / "config.json"), run_id)
    except KeyboardInterrupt:
        if is_main:
            store.set_status(run_id, "interrupted", "Stopped with Ctrl-C; resume it with `meddistill resume`.")
        raise
    finally:
        if bars:
            bars.close()
    if is_main and report is not None:
        record = store.get(run_id)
        print(comparison_table(report))
        print(f"\nRun {record.id} written to {record.path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from meddistill import distributed
    from meddistill.data import load_dataset
    from meddistill.runs import RunStore

    config = _config_from(args)
    load_dataset(config.data, seed=config.seed)  # refuse bad data before a run is registered
    if distributed.launched_by_torchrun():
        return distributed.run_under_torchrun(config, args.out, _train)
    store = RunStore()
    record = store.create(config, args.out)
    return _train(store, record.id)


def cmd_resume(args: argparse.Namespace) -> int:
    from meddistill.runs import RunStore

    store = RunStore()
    store.mark_interrupted()
    record = store.get(args.run)
    if record.status == "done":
        print(f"Run {record.id} is already done.")
        return 0
    if record.status in ("queued", "running"):
        raise MedDistillError(f"Run {record.id} is {record.status} in another process; wait for it or stop that process first.")
    return _train(store, record.id)


def cmd_runs(args: argparse.Namespace) -> int:
    import datetime

    from meddistill.runs import RunStore

    store = RunStore()
    store.mark_interrupted()
    runs = store.list()
    if not runs:
        print("No runs yet. Start one with: meddistill run --data breastmnist")
        return 0
    print(f"{'run':<24}{'status':<13}{'created':<18}{'teacher':<17}{'student':<20}dataset")
    for run in runs:
        created = datetime.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M")
        print(f"{run.id:<24}{run.status:<13}{created:<18}{run.teacher:<17}{run.student:<20}{Path(run.dataset).name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from meddistill.runs import RunStore

    record = RunStore().get(args.run)
    report = record.report()
    if report is None:
        print(f"Run {record.id} is {record.status} and has no report yet. {record.message}".strip())
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    data = report["dataset"]
    print(f"Run {record.id} ({record.status}) on {data['name']}: {', '.join(data['classes'])}; test set of {data['sizes']['test']} images at {data['train_image_size']} px")
    print(comparison_table(report))
    if "agreement" in report:
        print("Agreement with the teacher: " + ", ".join(f"{k} {v:.1%}" for k, v in report["agreement"].items()))
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from meddistill.data import load_dataset

    dataset = load_dataset(args.source, verify="all")
    summary = dataset.summary()
    print(f"{args.source}: valid dataset '{summary['name']}' ({summary['provenance'].get('kind')})")
    print(f"  classes: {', '.join(summary['classes'])}")
    print(f"  channels: {summary['channels']}, typical image size: {summary['image_size']} px")
    for split, counts in summary["counts"].items():
        print(f"  {split:<5} {sum(counts):>7} images  " + ", ".join(f"{c}: {n}" for c, n in zip(summary["classes"], counts)))
    print(f"  splits: {summary['provenance'].get('splits')}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from meddistill.runs import RunStore

    record = RunStore().import_run(args.run_dir)
    print(f"Imported {record.path} as run {record.id} ({record.status}).")
    return 0


COMMANDS = {"run": cmd_run, "runs": cmd_runs, "show": cmd_show, "check-data": cmd_check_data, "resume": cmd_resume, "import": cmd_import}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from meddistill.cli_extra import EXTRA_COMMANDS

    handler = {**COMMANDS, **EXTRA_COMMANDS}[args.command]
    try:
        return handler(args)
    except MedDistillError as error:
        print(f"meddistill: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:  # unknown model, method or preset: the message lists valid names
        print(f"meddistill: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("meddistill: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
