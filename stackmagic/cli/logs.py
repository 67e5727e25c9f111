"""`stackmagic logs SERVICE`: the last lines of a service's log, optionally following it."""

from __future__ import annotations

from stackmagic.cli.common import add_config_args, load


def register(sub) -> None:
    p = sub.add_parser("logs", help="show the last lines of a service's log")
    p.add_argument("service")
    p.add_argument("-n", type=int, default=20, help="how many lines (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    p.add_argument("--grep", help="only lines matching this regular expression")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    engine = api.engine(load(args))
    for line in engine.logs(args.service, args.n, args.grep):
        print(line)
    if args.follow:
        try:
            for line in engine.follow(args.service, float("inf"), args.grep):
                print(line, flush=True)
        except KeyboardInterrupt:
            pass
    return 0
