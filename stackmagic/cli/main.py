"""Entry point of the ``stackmagic`` command: one module per verb, each with ``register``."""

from __future__ import annotations

import argparse
import sys

from stackmagic.errors import StackError

VERBS = ("plan", "samples", "stack", "unstack", "clean", "status", "logs", "verify", "dashboard",
         "kernel", "provider")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="stackmagic", description="devstack, rebuilt in Python")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"stackmagic.cli.{verb}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except StackError as err:
        print(f"stackmagic {args.verb}: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # a file or directory the system refused (permissions, a full disk ...): say which
        where = f": {err.filename}" if err.filename else ""
        print(f"stackmagic {args.verb}: {err.strerror or err}{where}; fix it and run "
              f"{args.verb} again (what was done stays done)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stackmagic {args.verb}: interrupted", file=sys.stderr)
        return 130
