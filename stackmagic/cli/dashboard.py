"""`stackmagic dashboard`: Horizon's address, and a screenshot of one of its pages."""

from __future__ import annotations

from pathlib import Path

from stackmagic.cli.common import add_config_args, console, load


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="Horizon's address; with -o, a screenshot of a page")
    p.add_argument("page", nargs="?", default="project/instances/",
                   help="the page, its path below the dashboard (default: project/instances/)")
    p.add_argument("--user", default="demo", help="one of devstack's users (ADMIN_PASSWORD)")
    p.add_argument("--project", default=None, help="the project to show (default: the user's own)")
    p.add_argument("-o", "--output", type=Path, help="write a PNG screenshot of the page here")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api, dashboard

    engine = api.engine(load(args))
    if args.output is None:
        console.print(dashboard.url(engine), highlight=False)
        return 0
    shot = dashboard.screenshot(engine, args.page, user=args.user, project=args.project)
    args.output.write_bytes(shot.png)
    console.print(f"{shot.title}: {shot.url} as {shot.user} -> {args.output}", highlight=False)
    return 0
