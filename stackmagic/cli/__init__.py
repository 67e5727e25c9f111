"""The ``stackmagic`` command line: parses arguments, calls the engine, renders its results."""

from stackmagic.cli.main import main

__all__ = ["main"]
