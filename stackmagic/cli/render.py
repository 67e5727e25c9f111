"""Render the engine's events and results in a terminal (rich)."""

from __future__ import annotations

import time

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stackmagic import events as ev
from stackmagic.cli.common import console, err_console, seconds


class ProgressPrinter:
    """One line per step as it starts, finishes, fails or is skipped; tool output with verbose."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self.t0 = time.monotonic()
        self.total = 0
        self.finished = 0

    def _stamp(self) -> str:
        return f"[dim]{time.monotonic() - self.t0:7.1f}s[/dim]"

    def __call__(self, event: ev.Event) -> None:
        # every text that comes from the user or a tool is escaped: rich would take
        # [[local|localrc]] or [section] for markup and eat it
        if isinstance(event, ev.PlanReady):
            self.total = len(event.steps)
            console.print(f"plan: {self.total} steps")
        elif isinstance(event, ev.StepStarted):
            console.print(f"{self._stamp()} [cyan]▶[/cyan] {escape(event.step)}  "
                          f"[dim]({escape(event.reason)})[/dim]")
        elif isinstance(event, ev.StepSkipped):
            self.finished += 1
            if self.verbose:
                console.print(f"{self._stamp()} [dim]= {escape(event.step)} ({escape(event.reason)})[/dim]")
        elif isinstance(event, ev.StepFinished):
            self.finished += 1
            console.print(f"{self._stamp()} [green]✓[/green] {escape(event.step)}  "
                          f"[dim]{seconds(event.seconds)}  [{self.finished}/{self.total}][/dim]")
        elif isinstance(event, ev.StepFailed):
            console.print(f"{self._stamp()} [red]✗ {escape(event.step)}[/red]  {escape(event.error)}")
        elif isinstance(event, ev.StepOutput) and self.verbose:
            console.print(Text(f"    {event.step}: {event.line}", style="dim"))
        elif isinstance(event, ev.Warning_):
            warning(event.message)
        elif isinstance(event, ev.Message):
            console.print(event.text, markup=False)


def warning(message: str) -> None:
    """``warning: message``, the message printed as written."""
    console.print(Text.assemble(("warning:", "yellow"), " ", str(message)))


def error(message: str) -> None:
    """``error: message`` on stderr, the message printed as written."""
    err_console.print(Text.assemble(("error:", "red"), " ", str(message)))


def services_table(services, title: str = "services") -> Table:
    table = Table(title=title)
    for col in ("service", "project", "pid", "health", "endpoint", "uptime", "memory"):
        table.add_column(col)
    for s in services:
        if s.healthy:
            health = Text("healthy", style="green")
        elif s.running:
            health = Text.assemble(("unhealthy", "red"), f" {s.detail}")
        else:
            health = Text.assemble(("down", "red"), f" ({s.detail})")
        table.add_row(Text(s.service), Text(s.project), str(s.pid or "-"), health, Text(s.endpoint or "-"),
                      seconds(s.uptime) if s.uptime is not None else "-",
                      f"{s.rss_kib // 1024} MiB" if s.rss_kib else "-")
    return table


def summary(result) -> None:
    console.print(services_table(result.services))
    phases = Table(title="time per phase")
    phases.add_column("phase")
    phases.add_column("time", justify="right")
    for phase, secs in result.by_phase().items():
        phases.add_row(Text(phase), seconds(secs))
    projects = Table(title="time per project")
    projects.add_column("project")
    projects.add_column("time", justify="right")
    for project, secs in sorted(result.by_project().items(), key=lambda kv: -kv[1]):
        projects.add_row(Text(project), seconds(secs))
    if result.ran:
        console.print(phases)
        console.print(projects)
    skipped = result.skipped
    console.print(f"{len(result.ran)} steps ran, {len(skipped)} skipped as already done"
                  + (": " + ", ".join(r.step for r in skipped) if skipped and len(skipped) <= 12 else ""),
                  markup=False)
    for name in result.unsupported:
        console.print(Text.assemble(("not started:", "yellow"), f" {name} (stackmagic cannot run it yet)"))
    console.print(f"stack finished in {seconds(result.seconds)}")
