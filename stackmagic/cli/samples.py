"""`stackmagic samples`: list the shipped sample configurations."""

from __future__ import annotations

from rich.text import Text

from stackmagic.cli.common import console


def register(sub) -> None:
    p = sub.add_parser("samples", help="list the shipped sample configurations")
    p.add_argument("name", nargs="?", help="print this sample's text")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from stackmagic.samples import list_samples, sample_path

    if args.name:
        console.print(Path(sample_path(args.name)).read_text(), end="", markup=False)
        return 0
    for name, (path, description) in list_samples().items():
        console.print(Text.assemble((f"{name:<18}", "bold"), f" {description}"))
    return 0
