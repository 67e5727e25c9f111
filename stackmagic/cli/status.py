"""`stackmagic status`: every service, probed now."""

from __future__ import annotations

from stackmagic.cli import render
from stackmagic.cli.common import add_config_args, console, load


def register(sub) -> None:
    p = sub.add_parser("status", help="show every service and whether it is healthy")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    services = api.engine(load(args), on_event=render.ProgressPrinter()).status()
    if not services:
        console.print("nothing has been started (run `stackmagic stack`)")
        return 0
    console.print(render.services_table(services))
    return 0 if all(s.healthy for s in services) else 3
