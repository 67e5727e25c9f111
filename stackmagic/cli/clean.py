"""`stackmagic clean`: unstack, then remove databases, data and logs (source trees stay)."""

from __future__ import annotations

from stackmagic.cli import render
from stackmagic.cli.common import add_config_args, load


def register(sub) -> None:
    p = sub.add_parser("clean", help="unstack and remove databases, data, config and logs")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    api.engine(load(args), on_event=render.ProgressPrinter()).clean()
    return 0
