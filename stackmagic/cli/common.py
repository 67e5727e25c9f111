"""Arguments and output helpers shared by the verbs."""

from __future__ import annotations

import argparse

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE",
                        help="localrc or local.conf (default: ./local.conf, ./localrc, "
                             "or the one the last `stack` used)")
    parser.add_argument("--sample", metavar="NAME", help="use a shipped sample (see `stackmagic samples`)")


def load(args: argparse.Namespace):
    from stackmagic import api

    return api.load(args.config, sample=args.sample)


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value // 60:.0f} min {value % 60:.0f} s"
