"""CLI commands that work on a finished run's models: export and explain."""

from __future__ import annotations

from meddistill import cli_explain, cli_export

EXTRA_COMMANDS: dict = {}


def add_extra_commands(commands) -> None:
    """Register the export and explain sub-commands on the main parser."""
    for module in (cli_export, cli_explain):
        EXTRA_COMMANDS.update(module.register(commands))
