"""``meddistill check-data`` and the dataset options every command that reads data shares."""

from __future__ import annotations

import argparse

from meddistill.data.loader import load_dataset
from meddistill.data.multilabel import UNCERTAIN_POLICIES
from meddistill.data.options import DataOptions
from meddistill.data.summary import describe


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``DataOptions``: labels-CSV columns, patient key, duplicates."""
    group = parser.add_argument_group("dataset")
    group.add_argument("--file-column", help="labels-CSV column with the image files (default: guessed)")
    group.add_argument("--label-column", help="labels-CSV column with the classes (default: guessed)")
    group.add_argument("--split-column", help="labels-CSV column with train/val/test (default: guessed)")
    group.add_argument("--group-column", help="labels-CSV column with the patient id: one patient, one split")
    group.add_argument(
        "--group-pattern",
        help=r"regular expression over file names whose first group is the patient key, e.g. '^(person\d+)'",
    )
    group.add_argument(
        "--drop-duplicates",
        action="store_true",
        default=None,
        help="drop val and test images that duplicate a training image (exactly or nearly)",
    )
    group.add_argument(
        "--subgroup-column",
        dest="subgroup_columns",
        action="append",
        metavar="COLUMN",
        help="a labels-CSV column (Sex, Patient Age, View Position, site) whose values get their own test figures; "
        "repeat it for several",
    )
    labels = group.add_mutually_exclusive_group()
    labels.add_argument(
        "--multi-label",
        dest="multi_label",
        action="store_const",
        const=True,
        help="read a label column's joined values (Atelectasis|Effusion) as several findings per image",
    )
    labels.add_argument(
        "--single-label",
        dest="multi_label",
        action="store_const",
        const=False,
        help="keep each label value as one class, even when it contains |, ; or ,",
    )
    group.add_argument(
        "--uncertain",
        choices=UNCERTAIN_POLICIES,
        help="one column per finding (CheXpert): how -1 (uncertain) is read; default ignore (left out of the loss "
        "and the metrics)",
    )


def options_from(args: argparse.Namespace) -> DataOptions:
    """The options given on the command line (the rest keep their defaults)."""
    return DataOptions(**{name: getattr(args, name) for name in DataOptions.names() if getattr(args, name) is not None})


def add_commands(commands) -> None:
    """Add ``check-data`` to the sub-parsers ``commands``."""
    check = commands.add_parser("check-data", help="validate a dataset without training and report leaks")
    check.add_argument("source", help="a .npz, a folder or .zip of images, or a MedMNIST name")
    check.add_argument("--seed", type=int, default=0, help="seed for the splits that have to be made")
    add_data_arguments(check)
    check.set_defaults(func=cmd_check_data)


def cmd_check_data(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.source, seed=args.seed, verify="all", options=options_from(args))
    summary = dataset.summary()
    print(f"{args.source}: valid dataset '{summary['name']}' ({summary['provenance'].get('kind')})")
    for line in describe(summary):
        print(f"  {line}")
    return 0
