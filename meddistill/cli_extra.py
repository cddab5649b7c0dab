"""CLI commands that work on a finished run's models: export and explain."""

from __future__ import annotations

EXTRA_COMMANDS: dict = {}


def add_extra_commands(commands) -> None:
    """Register the export and explain sub-commands on the main parser."""
