"""`stackmagic verify`: prove the running stack works (token, projects, images, placement)."""

from __future__ import annotations

from rich.text import Text

from stackmagic.cli.common import add_config_args, console, load


def register(sub) -> None:
    p = sub.add_parser("verify", help="prove the running stack works with real API calls")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api
    from stackmagic.verify import verify

    results = verify(api.engine(load(args)))
    for check in results:
        mark = ("✓", "green") if check.ok else ("✗", "red")
        console.print(Text.assemble(mark, f" {check.describe()}"), highlight=False)
    return 0 if all(c.ok for c in results) else 1
