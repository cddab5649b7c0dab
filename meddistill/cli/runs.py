"""``meddistill runs``, ``show``, ``card`` and ``import``: look at runs and datasets without training."""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from meddistill.errors import MedDistillError
from meddistill.io.atomic import atomic_write
from meddistill.reports.card import model_card
from meddistill.reports.tables import comparison_table, findings_table, summary_lines
from meddistill.reports.trust import trust_text
from meddistill.settings.files import settings_text
from meddistill.store.index import RunStore, open_run
from meddistill.store.layout import CARD_FILE


def add_commands(commands) -> None:
    """Add ``runs``, ``show`` and ``import`` to the sub-parsers ``commands``."""
    commands.add_parser("runs", help="list runs").set_defaults(func=cmd_runs)
    show = commands.add_parser("show", help="print a run's report")
    show.add_argument("run", help="run id (or prefix) or run folder")
    show.add_argument("--json", action="store_true", help="print report.json as it is")
    show.set_defaults(func=cmd_show)
    card = commands.add_parser("card", help="write a run's model card: one self-contained HTML file")
    card.add_argument("run", help="run id (or prefix) or run folder")
    card.add_argument("--out", default=CARD_FILE, help=f"output file (default {CARD_FILE})")
    card.add_argument("--no-examples", action="store_true", help="leave out the example cases and their maps")
    card.set_defaults(func=cmd_card)
    settings = commands.add_parser(
        "config", help="print a run's settings as a file that runs it again: meddistill run --config FILE"
    )
    settings.add_argument("run", help="run id (or prefix) or run folder")
    settings.set_defaults(func=cmd_config)
    imported = commands.add_parser("import", help="add a run folder made elsewhere (e.g. with torchrun) to the index")
    imported.add_argument("run_dir")
    imported.set_defaults(func=cmd_import)


def cmd_runs(args: argparse.Namespace) -> int:
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
    record = RunStore().get(args.run)
    report = record.report()
    if report is None:
        print(f"Run {record.id} is {record.status} and has no report yet. {record.message}".strip())
        return 0
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    data = report.dataset
    print(
        f"Run {record.id} ({record.status}) on {data['name']}: {', '.join(data['classes'])}; "
        f"test set of {data['sizes']['test']} images at {data['train_image_size']} px"
    )
    print(comparison_table(report))
    if findings_table(report):
        print(findings_table(report))
    for line in summary_lines(report):
        print(line)
    if report.agreement:
        print("Agreement with the teacher: " + ", ".join(f"{k} {v:.1%}" for k, v in report.agreement.items()))
    if report.trust is not None:
        print()
        print(trust_text(report.trust))
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    folder = open_run(args.run, RunStore())
    html = model_card(folder.path, examples=not args.no_examples)
    out = Path(args.out).expanduser()
    try:
        atomic_write(out, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    except OSError as error:
        raise MedDistillError(f"Could not write {out} ({error.strerror or error}); check the folder exists.") from None
    print(f"Model card of run {folder.path.name} written to {out} ({len(html) / 1e3:.0f} kB, opens offline).")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print(settings_text(open_run(args.run, RunStore()).config()), end="")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    record = RunStore().import_run(args.run_dir)
    print(f"Imported {record.path} as run {record.id} ({record.status}).")
    return 0
