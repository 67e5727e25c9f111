"""Render the engine's events and results in a terminal (rich)."""

from __future__ import annotations

import time

from rich.table import Table

from stackmagic import events as ev
from stackmagic.cli.common import console, seconds


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
        if isinstance(event, ev.PlanReady):
            self.total = len(event.steps)
            console.print(f"plan: {self.total} steps")
        elif isinstance(event, ev.StepStarted):
            console.print(f"{self._stamp()} [cyan]▶[/cyan] {event.step}  [dim]({event.reason})[/dim]")
        elif isinstance(event, ev.StepSkipped):
            self.finished += 1
            if self.verbose:
                console.print(f"{self._stamp()} [dim]= {event.step} ({event.reason})[/dim]")
        elif isinstance(event, ev.StepFinished):
            self.finished += 1
            console.print(f"{self._stamp()} [green]✓[/green] {event.step}  "
                          f"[dim]{seconds(event.seconds)}  [{self.finished}/{self.total}][/dim]")
        elif isinstance(event, ev.StepFailed):
            console.print(f"{self._stamp()} [red]✗ {event.step}[/red]  {event.error}", markup=True)
        elif isinstance(event, ev.StepOutput) and self.verbose:
            console.print(f"[dim]    {event.step}: {event.line}[/dim]", markup=False)
        elif isinstance(event, ev.Warning_):
            console.print(f"[yellow]warning:[/yellow] {event.message}")
        elif isinstance(event, ev.Message):
            console.print(event.text)


def services_table(services, title: str = "services") -> Table:
    table = Table(title=title)
    for col in ("service", "project", "pid", "health", "endpoint", "uptime", "memory"):
        table.add_column(col)
    for s in services:
        if s.healthy:
            health = "[green]healthy[/green]"
        elif s.running:
            health = f"[red]unhealthy[/red] {s.detail}"
        else:
            health = f"[red]down[/red] ({s.detail})"
        table.add_row(s.service, s.project, str(s.pid or "-"), health, s.endpoint or "-",
                      seconds(s.uptime) if s.uptime is not None else "-",
                      f"{s.rss_kib // 1024} MiB" if s.rss_kib else "-")
    return table


def summary(result) -> None:
    console.print(services_table(result.services))
    phases = Table(title="time per phase")
    phases.add_column("phase")
    phases.add_column("time", justify="right")
    for phase, secs in result.by_phase().items():
        phases.add_row(phase, seconds(secs))
    projects = Table(title="time per project")
    projects.add_column("project")
    projects.add_column("time", justify="right")
    for project, secs in sorted(result.by_project().items(), key=lambda kv: -kv[1]):
        projects.add_row(project, seconds(secs))
    if result.ran:
        console.print(phases)
        console.print(projects)
    skipped = result.skipped
    console.print(f"{len(result.ran)} steps ran, {len(skipped)} skipped as already done"
                  + (": " + ", ".join(r.step for r in skipped) if skipped and len(skipped) <= 12 else ""))
    for name in result.unsupported:
        console.print(f"[yellow]not started:[/yellow] {name} (stackmagic cannot run it yet)")
    console.print(f"stack finished in {seconds(result.seconds)}")
