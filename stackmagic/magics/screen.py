"""``%screen_tail`` and ``%screen``: service logs (from the log files) and the tmux windows."""

from __future__ import annotations

import html
from pathlib import Path

from stackmagic.errors import StackError
from stackmagic.i18n import _
from stackmagic.magics.render import MagicError, html_table, pre, text_table


class LogTail:
    """The last lines of a service's log; ``.lines`` is the list, ``.note`` a remark (or "")."""

    def __init__(self, service: str, path: Path, lines: list[str], note: str = ""):
        self.service, self.path, self.lines, self.note = service, path, lines, note

    def __repr__(self) -> str:
        head = f"# {self.service}: {self.path}" + (f"\n# {self.note}" if self.note else "")
        return "\n".join([head, *self.lines])

    def _repr_html_(self) -> str:
        note = f'<p style="color:#b58900">{html.escape(self.note)}</p>' if self.note else ""
        return f"<b>{html.escape(self.service)}</b> <code>{html.escape(str(self.path))}</code>{note}" + pre(self.lines)


class Windows(list):
    """The tmux windows of session ``stack``: a list of (window, pid) pairs."""

    def __init__(self, rows: list[tuple[str, int | None]], session: str, socket: str | None):
        super().__init__(rows)
        self.attach = f"tmux {'-L ' + socket + ' ' if socket else ''}attach -t {session}"

    def __repr__(self) -> str:
        if not self:
            return _("no tmux windows: nothing is running (run %stack)")
        return (text_table((_("window"), _("pid")), [(w, p or "-") for w, p in self]) + "\n"
                + _("(attach: {command})").format(command=self.attach))

    def _repr_html_(self) -> str:
        if not self:
            return "<p>" + html.escape(_("no tmux windows: nothing is running (run %stack)")) + "</p>"
        return html_table((_("window"), _("pid")), [(w, p or "-") for w, p in self]) + \
            "<p>" + html.escape(_("(attach: {command})").format(command=self.attach)) + "</p>"


def _listing(engine) -> str:
    running = list(engine.tmux.running())
    return _("running: {names}").format(names=", ".join(running)) if running else _("nothing is running (run %stack)")


def tail(engine, service: str, n: int, grep: str | None) -> LogTail:
    """The last ``n`` lines (matching ``grep``) of ``service``'s log file."""
    try:
        path = engine.logfile(service)
        lines = engine.logs(service, n, grep)
    except StackError as err:
        raise MagicError(f"{err}\n{_listing(engine)}") from None
    note = "" if engine.tmux.is_running(service) else _("{service} is not running; {listing}").format(
        service=service, listing=_listing(engine))
    return LogTail(service, path, lines, note)


def follow(engine, service: str, seconds: float, grep: str | None):
    """Yield the lines appended to ``service``'s log during ``seconds`` (those matching ``grep``)."""
    return engine.follow(service, seconds, grep)


def windows(engine) -> Windows:
    """Every window of the tmux session with the pid of its process."""
    tmux = engine.tmux
    names = tmux.windows() if tmux.exists() else []
    live = tmux.running()
    return Windows([(name, live.get(name)) for name in names], tmux.session, tmux.server.socket_name)
