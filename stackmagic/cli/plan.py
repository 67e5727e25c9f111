"""`stackmagic plan`: what a localrc / local.conf asks for, without doing anything."""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text

from stackmagic.cli import render
from stackmagic.cli.common import add_config_args, console


def register(sub) -> None:
    p = sub.add_parser("plan", help="show what a localrc / local.conf enables and sets")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic import api

    report = api.plan_report(args.config, sample=args.sample)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 2 if report["errors"] else 0
    for message in report["errors"]:
        render.error(message)
    if report["errors"]:
        return 2
    if report.get("source"):
        console.print(f"configuration: {report['source']}", markup=False)
    table = Table(title="enabled services", show_lines=False)
    for col in ("project", "service", "what it is", "runs here"):
        table.add_column(col)
    last = None
    for row in sorted(report["services"], key=lambda r: r["project"]):
        table.add_row(Text(row["project"] if row["project"] != last else ""), Text(row["service"]),
                      Text(row["description"]), _runs(row))
        last = row["project"]
    console.print(table)
    if report["disabled"]:
        console.print("disabled: " + ", ".join(report["disabled"]), markup=False)
    for plugin in report["plugins"]:
        console.print(f"plugin: {plugin['name']} {plugin['url']} {plugin['ref']}", markup=False)
    if report["settings"]:
        console.print("settings that differ from the defaults:")
        for name, value in sorted(report["settings"].items()):
            console.print(f"  {name}={value}", markup=False)
    for m in report["merges"]:
        console.print(f"{m['phase']}: {m['file']} [{m['section']}] {m['key']} = {m['value']}", markup=False)
    for note in report.get("notes", []):
        console.print(note, markup=False)
    for warning in report["warnings"]:
        render.warning(warning)
    return 0


def _runs(row) -> str:
    if row["runs_here"]:
        return "yes"
    if row["status"] == "retired":
        return "retired upstream"
    if row["status"] == "plugin":
        return "needs a plugin"
    return "not yet"
