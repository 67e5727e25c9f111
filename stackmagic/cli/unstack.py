"""`stackmagic unstack`: stop every process stackmagic started."""

from __future__ import annotations

from stackmagic.cli import render
from stackmagic.cli.common import add_config_args, console, load


def register(sub) -> None:
    p = sub.add_parser("unstack", help="stop every service that was started")
    add_config_args(p)
    p.add_argument("--all", action="store_true", help="also stop the database and message servers")
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    engine = api.engine(load(args), on_event=render.ProgressPrinter())
    stopped = engine.unstack(all=args.all)
    console.print(f"stopped {len(stopped)} processes" if stopped else "nothing was running")
    return 0
