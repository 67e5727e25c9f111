"""Service processes in the tmux session ``stack``, and their log files.

Every service runs in its own window of the session (``tmux attach -t stack`` shows it live). The
window's process is a small bash launcher that runs the service in the foreground with its output
piped through ``tee`` into the log file. The launcher's pid (the pane's pid, the one we report)
leads the process group and the terminal session tmux made for the pane, and it lives exactly as
long as the service and its output. It does not ``exec`` the service: tee relays asynchronously,
and a service that dies at once would otherwise take its last words out of the pane with it.
Stopping a service signals that whole family (group, session and descendants), escalating from
SIGTERM to SIGKILL.

A window whose process died stays open (``remain-on-exit``) so its last output can be read in
tmux; :meth:`Tmux.start` replaces such a window. The log files keep everything regardless.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import libtmux

from stackmagic.errors import StackError

_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_POLL = 0.05
_KILL_GRACE = 5.0
_BLOCK = 64 * 1024

# The pane's process: $1 log file, $2 header line (for the pane: start() wrote it to the log), $3
# a pid file (empty for a service that stays in the foreground), then the service's argv. It leads
# the process group, runs the service in the foreground (so Ctrl-C in the pane reaches it) and
# outlives it until tee has passed the service's last words to the pane and the log; then it exits
# with the service's status. tee ignores the signals that stop the service; it ends when its input
# closes. A daemon that forks (a pid file given) is started with its output appended to the log
# (a daemon that keeps its stdout open would hold a pipe forever); once its pid file names it, the
# pane follows the log for as long as that pid lives, so the window lives exactly as long as the
# daemon does.
_LAUNCHER = """
log=$1; header=$2; pidfile=$3; shift 3
trap : HUP INT TERM
printf '%s\\n' "$header"
if [ -z "$pidfile" ]; then
  "$@" 2>&1 | (trap '' HUP INT TERM; exec tee -a -- "$log")
  exit "${PIPESTATUS[0]}"
fi
"$@" >>"$log" 2>&1 </dev/null
status=$?
if [ "$status" != 0 ]; then tail -n 20 -- "$log"; exit "$status"; fi
for _ in $(seq 600); do [ -s "$pidfile" ] && break; sleep 0.05; done
read -r pid <"$pidfile" || { echo "no pid in $pidfile" | tee -a -- "$log"; exit 1; }
exec tail --pid="$pid" -s 0.2 -n 20 -F -- "$log" 2>/dev/null
"""


class TmuxError(StackError):
    """A service cannot be started or found in tmux as asked."""


_SPAWN_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Window:
    window_id: str
    name: str
    pid: int
    dead: bool


class Tmux:
    """The tmux session holding one window per service.

    ``socket_name`` selects a tmux server of its own (``tmux -L <socket_name>``); ``None`` is the
    user's default server, so that ``tmux attach -t stack`` just works.
    """

    def __init__(self, session: str = "stack", socket_name: str | None = None):
        self.session = session
        self.server = libtmux.Server(socket_name=socket_name)

    def start(self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str], logfile: Path,
              pidfile: Path | None = None) -> int:
        """Run ``argv`` in a new window ``name``; return the pid leading the service's process group.

        ``env`` is laid over the environment the tmux server gives its windows, plus
        ``PYTHONUNBUFFERED=1``. Output goes to the pane and is appended to ``logfile`` after a
        header line with the date and the command. A window ``name`` whose process is dead is
        replaced; one whose process runs raises :class:`TmuxError`. With ``pidfile``, ``argv``
        starts a daemon that forks and writes its pid there: the window then follows the log
        while that pid lives (the returned pid is the window's, not the daemon's).
        """
        _check_name(name)
        if not argv:
            raise TmuxError(f"no command given for service {name}")
        full_env = {**env, "PYTHONUNBUFFERED": "1"}
        _check_command(name, argv[0], cwd, full_env.get("PATH", os.environ.get("PATH", "")))
        old = self._window(name)
        if old is not None:
            if not old.dead and _alive(old.pid):
                raise TmuxError(
                    f"service {name} is already running (pid {old.pid}, tmux window "
                    f"{self.session}:{name}); stop it before starting it again"
                )
            self.stop(name)
        logfile.parent.mkdir(parents=True, exist_ok=True)
        header = f"--- {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z} start {name}: {shlex.join(argv)}"
        with logfile.open("a") as log:
            log.write(header + "\n")
        return self._spawn(name, argv, cwd, full_env, logfile, header, pidfile)

    def pid(self, name: str) -> int | None:
        """The pid of service ``name``, or ``None`` if it has no window or its process is gone."""
        window = self._window(name)
        if window is None or window.dead or not _alive(window.pid):
            return None
        return window.pid

    def running(self) -> dict[str, int]:
        """Every window whose process is alive: name -> pid (one tmux call for all)."""
        return {w.name: w.pid for w in self._windows() if not w.dead and _alive(w.pid)}

    def is_running(self, name: str) -> bool:
        """Whether service ``name`` has a live process."""
        return self.pid(name) is not None

    def stop(self, name: str, *, timeout: float = 10, sig: int = signal.SIGTERM) -> bool:
        """Stop service ``name`` and close its window; return True if a process was stopped.

        SIGTERM goes to the service's process group and to every other process of its family;
        whatever is left after ``timeout`` seconds gets SIGKILL.
        """
        window = self._window(name)
        if window is None:
            return False
        stopped = _terminate([window.pid], timeout, sig)
        self._cmd("kill-window", "-t", window.window_id, check=False)
        return stopped

    def windows(self) -> list[str]:
        """The names of the session's windows, in tmux order (empty if there is no session)."""
        return [window.name for window in self._windows()]

    def kill_session(self, *, timeout: float = 10) -> None:
        """Stop every service of the session (all at once) and remove the session."""
        _terminate([window.pid for window in self._windows()], timeout)
        self._cmd("kill-session", "-t", f"={self.session}", check=False)

    def exists(self) -> bool:
        """Whether the session exists."""
        return bool(self.server.is_alive() and self.server.has_session(self.session, exact=True))

    def _spawn(self, name: str, argv: list[str], cwd: Path, env: dict[str, str], logfile: Path, header: str,
               pidfile: Path | None) -> int:
        common = ["-d", "-n", name, "-c", str(cwd), "-P", "-F", "#{pane_pid}"]
        common += [f"-e{key}={value}" for key, value in env.items()]
        command = ["--", "/bin/bash", "-c", _LAUNCHER, f"stackmagic-{name}", str(logfile), header,
                   str(pidfile or ""), *argv]
        # remain-on-exit is set in the same tmux command list, before a quick exit could close it.
        remain = [";", "set-option", "-w", "-t", f"={self.session}:={name}", "remain-on-exit", "on"]
        with _SPAWN_LOCK:  # the engine starts services from several threads at once
            if self.exists():
                out = self._cmd("new-window", "-t", f"={self.session}:", *common, *command, *remain)
            else:
                out = self._cmd("new-session", "-s", self.session, *common, *command, *remain)
        return int(out[0])

    def _windows(self) -> list[_Window]:
        fmt = "\t".join(["#{session_name}", "#{window_id}", "#{window_name}", "#{pane_pid}", "#{pane_dead}"])
        lines = self._cmd("list-windows", "-a", "-F", fmt, check=False)
        windows = []
        for line in lines:
            fields = line.split("\t")
            if len(fields) == 5 and fields[0] == self.session and fields[3].isdigit():
                windows.append(_Window(fields[1], fields[2], int(fields[3]), fields[4] == "1"))
        return windows

    def _window(self, name: str) -> _Window | None:
        return next((window for window in self._windows() if window.name == name), None)

    def _cmd(self, *args: str, check: bool = True) -> list[str]:
        result = self.server.cmd(*args)
        if check and result.returncode != 0:
            raise TmuxError(f"tmux {args[0]} failed: {' '.join(result.stderr)}")
        return list(result.stdout)


def stop_pid(pid: int, timeout: float = 10, sig: int = signal.SIGTERM) -> bool:
    """Stop process ``pid``, its process group, its session and its descendants.

    SIGTERM first, SIGKILL to what is left after ``timeout`` seconds. Returns True if a process
    was stopped. A pid recorded long ago may have been reused by an unrelated process: pass only
    pids whose owner is known to be ours.
    """
    return _terminate([pid], timeout, sig)


def tail(logfile: Path, n: int = 20, grep: str | None = None) -> list[str]:
    """The last ``n`` lines of ``logfile`` (those matching the regular expression ``grep``).

    Reads the file backwards in blocks, so the cost follows what is returned, not the file's size.
    A missing file has no lines.
    """
    try:
        pattern = re.compile(grep) if grep is not None else None
    except re.error as err:
        raise TmuxError(f"bad grep pattern {grep!r}: {err}; give a Python regular expression") from None
    found: list[str] = []
    if n <= 0:
        return found
    try:
        with logfile.open("rb") as handle:
            for raw in _lines_backwards(handle):
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if pattern is None or pattern.search(line):
                    found.append(line)
                    if len(found) == n:
                        break
    except FileNotFoundError:
        return []
    found.reverse()
    return found


def follow(logfile: Path, seconds: float) -> Iterator[str]:
    """Yield the lines appended to ``logfile`` from now on, for ``seconds`` seconds.

    The starting point is the end of the file when ``follow`` is called; a file that does not
    exist yet is read from its start once it appears, and one that shrinks is read again from its
    start. A last unterminated line is yielded when the time is up.
    """
    try:
        start = logfile.stat().st_size
    except FileNotFoundError:
        start = 0
    return _follow(logfile, start, time.monotonic() + seconds)


def _follow(logfile: Path, position: int, deadline: float) -> Iterator[str]:
    pending = b""
    while True:
        try:
            size = logfile.stat().st_size
        except FileNotFoundError:
            size = position = 0
        if size < position:
            position, pending = 0, b""
        if size > position:
            with logfile.open("rb") as handle:
                handle.seek(position)
                data = handle.read(size - position)
            position += len(data)
            *complete, pending = (pending + data).split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", "replace").rstrip("\r")
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.1, left))
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


def _lines_backwards(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of a file, last first, without their newlines."""
    position = handle.seek(0, os.SEEK_END)
    if position == 0:
        return
    rest = b""
    last_block = True
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        handle.seek(position)
        pieces = (handle.read(step) + rest).split(b"\n")
        rest = pieces.pop(0)  # it may start in the block before
        if last_block and pieces and pieces[-1] == b"":
            pieces.pop()  # the file's final newline ends a line, it does not start one
        last_block = False
        yield from reversed(pieces)
    yield rest


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise TmuxError(
            f"service name {name!r} cannot name a tmux window: use letters, digits, '-' and '_'"
        )


def _check_command(name: str, command: str, cwd: Path, path: str) -> None:
    if not cwd.is_dir():
        raise TmuxError(f"service {name}: working directory {cwd} does not exist")
    if "/" in command:
        found = (cwd / command).is_file() and os.access(cwd / command, os.X_OK)
    else:
        found = shutil.which(command, path=path) is not None
    if not found:
        raise TmuxError(f"service {name}: command {command!r} not found (PATH={path}); install it first")


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int


def _processes() -> list[_Proc]:
    """Every live (not zombie) process, from /proc."""
    procs = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        procs.append(_Proc(int(entry.name), int(fields[1]), int(fields[2]), int(fields[3])))
    return procs


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")


def family(roots: Iterable[int]) -> set[int]:
    """The live processes started under ``roots`` (see :func:`_family`)."""
    return _family(roots)


def _family(roots: Iterable[int]) -> set[int]:
    """The live processes that are one of ``roots``, in their group or session, or below them."""
    roots = set(roots)
    procs = _processes()
    members = {p.pid for p in procs if p.pid in roots or p.pgid in roots or p.sid in roots}
    children: dict[int, list[int]] = {}
    for proc in procs:
        children.setdefault(proc.ppid, []).append(proc.pid)
    todo = list(members | roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in members:
                members.add(child)
                todo.append(child)
    members -= {0, 1, os.getpid()}
    return members


def _signal(roots: Iterable[int], members: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to the process groups of ``roots`` and to each of ``members``."""
    sends = [(os.killpg, pid) for pid in roots] + [(os.kill, pid) for pid in members]
    for send, pid in sends:
        try:
            send(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: set[int], deadline: float) -> set[int]:
    left = {pid for pid in pids if _alive(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(_POLL)
        left = {pid for pid in left if _alive(pid)}
    return left


def _terminate(roots: list[int], timeout: float, sig: int = signal.SIGTERM) -> bool:
    """``sig`` (SIGTERM) to the families of ``roots``, then SIGKILL what outlives ``timeout``."""
    roots = [pid for pid in roots if pid not in (0, 1, os.getpid(), os.getpgrp())]
    members = _family(roots)
    if not members:
        return False
    _signal(roots, members, sig)
    left = _wait_gone(members, time.monotonic() + timeout)
    # children forked while we waited belong to the family too
    left |= _family(roots)
    if left:
        _signal(roots, left, signal.SIGKILL)
        left = _wait_gone(left | _family(roots), time.monotonic() + _KILL_GRACE)
    if left:
        raise TmuxError(f"processes {sorted(left)} survived SIGKILL; they may be stuck in the kernel")
    return True
