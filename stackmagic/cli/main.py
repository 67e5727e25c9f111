"""Entry point: one subcommand module per verb."""

from __future__ import annotations

import argparse
import sys

from stackmagic.errors import StackError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackmagic", description="devstack, rebuilt in Python")
    parser.add_subparsers(dest="verb", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except StackError as err:
        print(f"stackmagic: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("stackmagic: interrupted", file=sys.stderr)
        return 130
