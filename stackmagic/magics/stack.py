"""``%stack``, ``%unstack``, ``%stack_clean``: run the engine and render its events and summary.

Events arrive from the engine's threads; they are recorded under a lock and shown only from the
main thread (the one running the cell), either as one display updated in place (a kernel:
``update_display_data``) or as one printed line per step (terminal IPython).
"""

from __future__ import annotations

import html
import threading
import time
from typing import Callable

from stackmagic import events as ev
from stackmagic.engine import Interrupted, StepError
from stackmagic.i18n import _, message
from stackmagic.magics.render import Masker, MagicError, html_table, pre, seconds, text_table
from stackmagic.magics.services import ServiceTable, rows_of

#: Least time between two updates of the live display, in seconds.
REFRESH = 0.2


class Progress:
    """What the engine has done so far: a snapshot shown while ``%stack`` runs."""

    def __init__(self, masker: Callable[[str], str]):
        self.mask = masker
        self.t0 = time.monotonic()
        self.total = 0
        self.done = 0
        self.skipped = 0
        self.running: dict[str, tuple[str, float]] = {}   # step -> (project, start)
        self.finished: list[tuple[str, float]] = []
        self.failed: ev.StepFailed | None = None
        self.notes: list[str] = []
        self.output: list[str] = []
        self.state = "running"

    def apply(self, event: ev.Event) -> str | None:
        """Record ``event``; return a line to print in line mode (or None)."""
        if isinstance(event, ev.PlanReady):
            self.total = len(event.steps)
            return _("plan: {total} steps").format(total=self.total)
        if isinstance(event, ev.StepStarted):
            self.running[event.step] = (event.project, time.monotonic())
            return f"{self._stamp()} ▶ {event.step}  ({event.reason})"
        if isinstance(event, ev.StepSkipped):
            self.done += 1
            self.skipped += 1
            return None
        if isinstance(event, ev.StepFinished):
            self.running.pop(event.step, None)
            self.done += 1
            self.finished.append((event.step, event.seconds))
            return f"{self._stamp()} ✓ {event.step}  {seconds(event.seconds)}  [{self.done}/{self.total}]"
        if isinstance(event, ev.StepFailed):
            self.running.pop(event.step, None)
            self.failed = event
            return f"{self._stamp()} ✗ {event.step}  {event.error}"
        if isinstance(event, ev.StepOutput):
            self.output = (self.output + [f"{event.step}: {event.line}"])[-10:]
            return None
        text = (_("warning: {text}").format(text=message(event.message)) if isinstance(event, ev.Warning_)
                else _(getattr(event, "text", "")))
        self.notes.append(text)
        return text

    def _stamp(self) -> str:
        return f"{time.monotonic() - self.t0:7.1f}s"

    def _header(self) -> str:
        return _("{state}: {done}/{total} steps ({skipped} already done), {elapsed}").format(
            state=_(self.state), done=self.done, total=self.total or "?", skipped=self.skipped,
            elapsed=seconds(time.monotonic() - self.t0))

    def _running_rows(self) -> list[tuple[str, str, str]]:
        now = time.monotonic()
        return [(step, project, seconds(now - t0)) for step, (project, t0) in self.running.items()]

    def __repr__(self) -> str:
        width = 30
        filled = int(width * self.done / self.total) if self.total else 0
        parts = [f"[{'#' * filled}{'.' * (width - filled)}] {self._header()}"]
        if self.running:
            parts.append(text_table((_("step"), _("project"), _("elapsed")), self._running_rows()))
        parts += [f"✓ {step} {seconds(secs)}" for step, secs in self.finished[-8:]]
        parts += self.notes[-5:]
        if self.failed:
            parts.append(f"✗ {self.failed.step}: {self.failed.error}")
            parts += ["    " + line for line in self.failed.log_tail[-15:]]
        return self.mask("\n".join(parts))

    def _repr_html_(self) -> str:
        bar = f'<progress value="{self.done}" max="{self.total or 1}" style="width:24em"></progress>'
        parts = [f"<div>{bar} {html.escape(self._header())}</div>"]
        if self.running:
            parts.append(html_table((_("step"), _("project"), _("elapsed")), self._running_rows(), _("running")))
        if self.finished:
            parts.append(html_table((_("step"), _("time")), [(s, seconds(t)) for s, t in self.finished[-8:]],
                                    _("finished (latest)")))
        parts += [f"<div>{html.escape(n)}</div>" for n in self.notes[-5:]]
        if self.output:
            parts.append(pre(self.output, "#666"))
        if self.failed:
            parts.append(f'<p style="color:red"><b>✗ {html.escape(self.failed.step)}</b>: '
                         f"{html.escape(self.failed.error)}</p>" + pre(self.failed.log_tail[-15:]))
            if self.failed.log_path:
                parts.append("<p>" + html.escape(_("full log: {path}").format(path=self.failed.log_path)) + "</p>")
        return self.mask("".join(parts))


class Renderer:
    """The engine's ``on_event``: records events, shows them from the main thread only."""

    def __init__(self, progress: Progress, live: bool, verbose: bool = False):
        self.progress = progress
        self.live = live
        self.verbose = verbose
        self.lock = threading.Lock()
        self.pending: list[str] = []
        self.handle = None
        self.last = 0.0

    def start(self) -> None:
        """Show the (empty) progress display."""
        if self.live:
            from IPython.display import display

            self.handle = display(self.progress, display_id=True)

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            line = self.progress.apply(event)
            if isinstance(event, ev.StepOutput) and self.verbose:
                line = f"    {event.step}: {event.line}"
            if line is not None:
                self.pending.append(line)
        if threading.current_thread() is threading.main_thread():
            self.refresh(force=isinstance(event, (ev.StepFailed, ev.PlanReady)))

    def refresh(self, force: bool = False) -> None:
        """Update the display (at most every :data:`REFRESH` seconds unless ``force``)."""
        with self.lock:
            lines, self.pending = self.pending, []
            if self.live:
                now = time.monotonic()
                if self.handle is not None and (force or now - self.last >= REFRESH):
                    self.last = now
                    self.handle.update(self.progress)
            else:
                for line in lines:
                    print(self.progress.mask(line), flush=True)

    def finish(self, state: str) -> None:
        """Show the final state (``done``, ``failed``, ``interrupted``)."""
        self.progress.state = state
        self.refresh(force=True)


class StackReport:
    """``%stack``'s result: services, time per phase and per project, what was skipped.

    ``.summary`` is the engine's :class:`~stackmagic.engine.Summary`; ``.services`` a
    :class:`~stackmagic.magics.services.ServiceTable`.
    """

    def __init__(self, summary, masker: Callable[[str], str]):
        self.summary = summary
        self.services = ServiceTable(rows_of(summary.services))
        self.mask = masker

    def _tables(self) -> list[tuple[tuple[str, ...], list[tuple[str, str]], str]]:
        s = self.summary
        if not s.ran:
            return []
        return [((_("phase"), _("time")), [(p, seconds(t)) for p, t in s.by_phase().items()], _("time per phase")),
                ((_("project"), _("time")), [(p, seconds(t)) for p, t in
                                             sorted(s.by_project().items(), key=lambda kv: -kv[1])],
                 _("time per project"))]

    def _lines(self) -> list[str]:
        s = self.summary
        skipped = s.skipped
        lines = [_("{ran} steps ran, {skipped} skipped as already done").format(ran=len(s.ran), skipped=len(skipped))
                 + (": " + ", ".join(r.step for r in skipped) if skipped and len(skipped) <= 12 else "")]
        lines += [_("not started: {name} (stackmagic cannot run it yet)").format(name=name) for name in s.unsupported]
        lines += [_("warning: {text}").format(text=message(w)) for w in s.warnings]
        lines.append(_("stack finished in {elapsed}").format(elapsed=seconds(s.seconds)))
        return lines

    def __repr__(self) -> str:
        parts = [repr(self.services)] + [text_table(h, r, t) for h, r, t in self._tables()] + self._lines()
        return self.mask("\n".join(parts))

    def _repr_html_(self) -> str:
        parts = [self.services._repr_html_()] + [html_table(h, r, t) for h, r, t in self._tables()]
        parts += [f"<div>{html.escape(line)}</div>" for line in self._lines()]
        return self.mask("".join(parts))


class DryRun:
    """``%stack --dry-run``: every step of the plan and whether it would run."""

    def __init__(self, summary):
        self.rows = [(r.status, r.step, r.phase, r.project) for r in summary.results]

    def _shown(self) -> list[tuple[str, str, str, str]]:
        return [(_(status), step, phase, project) for status, step, phase, project in self.rows]

    def _headers(self) -> tuple[str, ...]:
        return (_("status"), _("step"), _("phase"), _("project"))

    def __repr__(self) -> str:
        return text_table(self._headers(), self._shown())

    def _repr_html_(self) -> str:
        return html_table(self._headers(), self._shown(), _("plan (nothing done)"))


def _masker(engine) -> Callable[[str], str]:
    return lambda text: Masker(engine.config.settings)(text)


def stack(cfg, *, live: bool, dry_run: bool = False, verbose: bool = False,
          parallel: int | None = None) -> StackReport | DryRun:
    """Run ``stack`` on ``cfg`` with live progress; failures and Ctrl-C become :class:`MagicError`."""
    from stackmagic import api

    holder: dict = {}
    progress = Progress(lambda text: holder["mask"](text))
    renderer = Renderer(progress, live and not dry_run, verbose)
    engine = api.engine(cfg, on_event=renderer, parallel=parallel)
    holder["mask"] = _masker(engine)
    if dry_run:
        return DryRun(engine.stack(dry_run=True))
    api.remember(cfg)
    renderer.start()
    try:
        summary = engine.stack()
    except StepError as err:
        renderer.finish("failed")
        tail = "\n".join("    " + line for line in err.tail[-15:])
        raise MagicError(progress.mask(
            _("step '{step}' failed: {cause}").format(step=err.step.id, cause=err.cause) + f"\n{tail}\n"
            + ("(" + _("full log: {path}").format(path=err.logfile) + ")\n" if err.logfile else "")
            + _("Fix the cause and run %stack again: it continues from here."))) from None
    except (Interrupted, KeyboardInterrupt) as err:
        renderer.finish("interrupted")
        text = str(err) if isinstance(err, Interrupted) else "interrupted"
        raise MagicError(message(text.replace("Run stack again", "Run %stack again"))) from None
    renderer.finish("done")
    return StackReport(summary, holder["mask"])


def unstack(cfg, *, all: bool = False) -> str:
    """Stop every service that was started; say what was stopped."""
    from stackmagic import api

    stopped = api.engine(cfg).unstack(all=all)
    if not stopped:
        return _("nothing was running")
    return _("stopped {count} processes: {names}").format(count=len(stopped), names=", ".join(stopped))


def clean(cfg) -> str:
    """unstack, then remove databases, data, config and logs; say what was cleaned."""
    from stackmagic import api

    messages: list[str] = []
    api.engine(cfg, on_event=lambda e: messages.append(e.text) if isinstance(e, ev.Message) else None).clean()
    return "\n".join(_(m) for m in messages) or _("cleaned")
