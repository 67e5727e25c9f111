"""`stackmagic stack`: bring the stack up (or continue where it stopped)."""

from __future__ import annotations

from stackmagic.cli import render
from stackmagic.cli.common import add_config_args, console, load


def register(sub) -> None:
    p = sub.add_parser("stack", help="clone, install, configure and start the enabled services")
    add_config_args(p)
    p.add_argument("--dry-run", action="store_true", help="show the plan without doing it")
    p.add_argument("-v", "--verbose", action="store_true", help="show every command's output")
    p.add_argument("-j", "--parallel", type=int, default=None, help="steps run at once (STACK_PARALLEL)")
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    cfg = load(args)
    for warning in cfg.warnings:
        render.warning(warning)
    engine = api.engine(cfg, on_event=render.ProgressPrinter(args.verbose), parallel=args.parallel)
    if args.dry_run:
        result = engine.stack(dry_run=True)
        for r in result.results:
            console.print(f"{r.status:>9}  {r.step}", markup=False)
        return 0
    api.remember(cfg)
    result = engine.stack()
    render.summary(result)
    return 0
