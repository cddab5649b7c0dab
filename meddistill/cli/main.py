"""The ``meddistill`` command: train, list, show, check, resume, import, export and explain runs.

Each command group is a module with ``add_commands(subparsers)``; every
sub-command sets its handler with ``set_defaults(func=...)``. Bad input ends
with exit status 2 and one sentence naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

import meddistill.cli.data as data_commands
import meddistill.cli.explain as explain_commands
import meddistill.cli.export as export_commands
import meddistill.cli.runs as runs_commands
import meddistill.cli.train as train_commands
import meddistill.cli.trust as trust_commands
from meddistill.errors import MedDistillError

EXIT_BAD_INPUT = 2
COMMAND_GROUPS = (train_commands, data_commands, runs_commands, export_commands, explain_commands, trust_commands)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="meddistill", description="Distill a medical-image teacher into a small student and measure both."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MedDistillError, ValueError) as error:  # ValueError: unknown model, method or preset, listing valid names
        print(f"meddistill: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("meddistill: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
