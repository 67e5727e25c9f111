"""Events the engine emits while it works; front ends render them.

The engine never prints. It calls ``on_event(event)`` with one of the dataclasses below, from the
thread that runs the step (renderers must be thread-safe or hand events to one thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union


@dataclass(frozen=True)
class PlanReady:
    steps: list[str]                 # step ids in plan order
    to_run: list[str]                # those that will run (not already done), best guess


@dataclass(frozen=True)
class StepStarted:
    step: str
    phase: str
    project: str
    reason: str                      # why it runs: "new", "setting ADMIN_PASSWORD changed", ...


@dataclass(frozen=True)
class StepSkipped:
    step: str
    phase: str
    project: str
    reason: str = "already done"


@dataclass(frozen=True)
class StepOutput:
    step: str
    line: str


@dataclass(frozen=True)
class StepFinished:
    step: str
    phase: str
    project: str
    seconds: float


@dataclass(frozen=True)
class StepFailed:
    step: str
    phase: str
    project: str
    seconds: float
    error: str
    log_tail: list[str] = field(default_factory=list)
    log_path: str | None = None


@dataclass(frozen=True)
class Warning_:
    message: str
    step: str | None = None


@dataclass(frozen=True)
class Message:
    """A line of information for the user (what the unstack/clean verbs did, ...)."""

    text: str


Event = Union[PlanReady, StepStarted, StepSkipped, StepOutput, StepFinished, StepFailed, Warning_, Message]
EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default sink: drop every event."""
