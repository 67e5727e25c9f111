"""`stackmagic provider -- COMMAND...`: run a command in the provider namespace, where the
public network's gateway lives (ping or ssh a floating IP). The work is in stackmagic.provider."""

from __future__ import annotations

import argparse

from stackmagic.cli.common import add_config_args, load


def register(sub) -> None:
    p = sub.add_parser("provider", help="run a command in the provider namespace (the public "
                                        "network's side: ping or ssh a floating IP)")
    add_config_args(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command and its arguments, after --")
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api, provider

    return provider.command(api.engine(load(args)).ctx, args.argv)
