"""The ``meddistill`` command line (``meddistill --help``); ``main`` is the console script's entry point."""

from meddistill.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
