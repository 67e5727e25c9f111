"""The commands stackmagic runs and waits for (installers, git, ``*-manage``, scripts), run so
that none outlives the run that started it.

Every command runs in a process group of its own (so a terminal's Ctrl-C does not reach it
behind stackmagic's back, and it can be stopped with everything it started), and:

- **dies with stackmagic**: it gets SIGKILL as soon as the thread that started it is gone (the
  Linux parent-death signal). That thread waits for the command, and step threads live until
  every step is over, so this happens only when stackmagic itself dies (SIGKILL, a crash).
  (So a command must be started by the thread that waits for it, as :func:`run` does);
- **is written down** under ``$DATA_DIR/stackmagic/running-commands/`` (process group and start time)
  while it runs, once :func:`adopt` named that directory. The parent-death signal reaches the
  command only, not what it started (a build backend under uv, ``sleep`` under ``sh``): the next
  ``stack`` calls :func:`adopt`, which ends the recorded groups of a run that died before it
  begins. Groups are signalled by id after checking their start time, never by name;
- **stops at once when the run is cancelled** (Ctrl-C, the notebook's stop button):
  :class:`Cancel` is the engine's cancel flag; setting it sends SIGTERM to the group of every
  command this process is running, and what is left of a group 0.5 s later gets SIGKILL. The
  command's caller gets :class:`Cancelled`.

Services are not run here: they live in tmux (stackmagic.tmux) and outlive stackmagic on purpose.
"""

from __future__ import annotations

import codecs
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackmagic.errors import StackError
from stackmagic.process_info import start_ticks

#: Where the running commands are written down, under $DATA_DIR/stackmagic. Not a name Python
#: could import: a process started in $DATA_DIR would otherwise take the folder for the module
#: stackmagic.children (the stack's own folder is called stackmagic too).
RECORDS = "running-commands"
#: How long a stopped command gets between SIGTERM and SIGKILL.
GRACE = 0.5
#: How often a waiting caller looks at the cancel flag.
POLL = 0.1
_PR_SET_PDEATHSIG = 1


class Cancelled(StackError):
    """The user interrupted the run (Ctrl-C, the notebook's stop button)."""

    exit_code = 130


@dataclass
class Result:
    """What a command did: its exit status and its output (stdout and stderr, interleaved)."""

    argv: list[str]
    returncode: int
    output: str
    timed_out: bool = False
    tail: list[str] = field(default_factory=list)       # its last lines


class _Child:
    def __init__(self, proc: subprocess.Popen, argv: Sequence[str]):
        self.proc = proc
        self.pgid = proc.pid            # the leader of a new session: group id == its pid
        self.ticks = start_ticks(proc.pid)
        self.command = Path(argv[0]).name if argv else "?"
        self.stop_requested = False
        self.record: Path | None = None


_live: set[_Child] = set()
_mutex = threading.Lock()
_registry: Path | None = None


# -- the parent-death signal ------------------------------------------------------------------
def _load_prctl():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError, ImportError):    # not Linux: the next run's sweep remains
        return None


_prctl = _load_prctl()


def _die_with(parent: int) -> Callable[[], None] | None:
    """The function run in the child between fork and exec: SIGKILL when our thread is gone,
    and exit at once if stackmagic already died before that was set."""
    if _prctl is None:
        return None
    prctl, kill = _prctl, int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(137)
    return preexec


# -- the record of running commands ----------------------------------------------------------
def adopt(stack_dir: Path) -> list[str]:
    """End what commands of a dead stackmagic left running under ``stack_dir`` (their whole
    process groups), then record this process's commands there. Returns what was ended.

    Call it holding the stack's lock, before any work.
    """
    global _registry
    directory = Path(stack_dir) / RECORDS
    ended = end_leftovers(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _registry = directory
    return ended


def end_leftovers(directory: Path) -> list[str]:
    """SIGKILL the recorded process groups whose stackmagic is gone; forget every record of them."""
    ended: list[str] = []
    if not directory.is_dir():
        return ended
    with _mutex:
        ours = {c.pgid for c in _live}
    me, my_ticks = os.getpid(), start_ticks(os.getpid())
    for path in sorted(directory.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            pgid, ticks = int(rec["pgid"]), rec["ticks"]
            owner, owner_ticks = int(rec["owner"]), rec["owner_ticks"]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if (owner, owner_ticks) == (me, my_ticks):
            if pgid in ours:
                continue                          # still running, ours
        elif start_ticks(owner) == owner_ticks:
            continue                              # another stackmagic that is alive runs it
        members = group_members(pgid, ticks)
        if members:
            _kill_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 3
            while group_members(pgid, ticks) and time.monotonic() < deadline:
                time.sleep(0.02)
            ended.append(f"{rec.get('command', '?')} (process group {pgid}, {len(members)} processes)")
        path.unlink(missing_ok=True)
    return ended


def group_members(pgid: int, ticks: int | None) -> list[int]:
    """The live processes of group ``pgid``, if that group is the one whose leader started at
    ``ticks`` (a group id is not reused while one of its processes lives; a new leader with that
    pid means the old group is gone)."""
    leader = start_ticks(pgid)
    if leader is not None and ticks is not None and leader != ticks:
        return []
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid and (ticks is None or int(fields[19]) >= ticks):
            members.append(int(stat.parent.name))
    return members


def _register(child: _Child) -> None:
    with _mutex:
        _live.add(child)
    directory = _registry
    if directory is None:
        return
    record = directory / f"{child.pgid}.json"
    data = {"pgid": child.pgid, "ticks": child.ticks, "command": child.command,
            "owner": os.getpid(), "owner_ticks": start_ticks(os.getpid()), "since": time.time()}
    try:
        tmp = record.with_name(f".{record.name}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, record)
        child.record = record
    except OSError:
        pass                                      # a place we cannot write: the signal remains


def _unregister(child: _Child) -> None:
    with _mutex:
        _live.discard(child)
    if child.record is not None:
        child.record.unlink(missing_ok=True)


# -- stopping ---------------------------------------------------------------------------------
def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(child: _Child) -> None:
    """SIGTERM to the group, SIGKILL to what is left of it after :data:`GRACE`; reap the leader."""
    _kill_group(child.pgid, signal.SIGTERM)
    try:
        child.proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(child.pgid, signal.SIGKILL)
    child.proc.wait()


def stop_all() -> int:
    """Stop every command this process is running (their callers get :class:`Cancelled`)."""
    with _mutex:
        children = list(_live)
    for child in children:
        child.stop_requested = True
        _kill_group(child.pgid, signal.SIGTERM)
    return len(children)


class Cancel(threading.Event):
    """The engine's cancel flag. Setting it also stops, at once, every command this process is
    running, including those started by code that never looks at the flag (the installer, git)."""

    def set(self) -> None:
        super().set()
        stop_all()


# -- running ----------------------------------------------------------------------------------
def run(argv: Sequence[str | os.PathLike], *, env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None, input: str | None = None,
        on_line: Callable[[str], None] | None = None, timeout: float | None = None,
        cancel: threading.Event | None = None, tail: int = 30,
        stderr: int | None = subprocess.STDOUT) -> Result:
    """Run ``argv`` and wait for it; each line of its output goes to ``on_line`` as it comes.

    ``env`` is the whole environment (default: ours). Raises :class:`Cancelled` when ``cancel``
    is set or :func:`stop_all` stops it, after stopping the command's group; a ``timeout`` stops
    it too and returns with ``timed_out``. ``stderr`` may be a file to keep it apart.
    Raises :class:`FileNotFoundError` if the program does not exist.
    """
    args = [os.fspath(a) for a in argv]
    proc = subprocess.Popen(
        args, cwd=cwd, env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
        preexec_fn=_die_with(os.getpid()),
    )
    child = _Child(proc, args)
    try:
        _register(child)
    except BaseException:                 # Ctrl-C right now: the command must not run on
        _stop(child)
        _unregister(child)
        proc.stdout.close()
        raise
    out: list[str] = []
    last: deque[str] = deque(maxlen=tail)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    partial = ""
    timed_out = False
    deadline = time.monotonic() + timeout if timeout else None
    sel = selectors.DefaultSelector()

    def take(text: str) -> None:
        nonlocal partial
        lines = (partial + text).split("\n")
        partial = lines.pop()
        for line in lines:
            out.append(line + "\n")
            last.append(line)
            if on_line is not None:
                on_line(line)

    def flush() -> None:
        nonlocal partial
        take(decoder.decode(b"", final=True))
        if partial:
            out.append(partial)
            last.append(partial)
            if on_line is not None:
                on_line(partial)
            partial = ""

    def stopping() -> bool:
        return child.stop_requested or (cancel is not None and cancel.is_set())

    try:
        if input is not None:
            try:
                proc.stdin.write(input.encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
        fd = proc.stdout.fileno()
        sel.register(fd, selectors.EVENT_READ)
        eof = False
        while True:
            if stopping():
                raise Cancelled("interrupted")
            if deadline and time.monotonic() > deadline:
                timed_out = True
                break
            if eof:
                try:
                    proc.wait(timeout=POLL)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if sel.select(timeout=POLL):
                data = os.read(fd, 65536)
                if data:
                    take(decoder.decode(data))
                else:
                    flush()
                    eof = True
    except BaseException:
        _stop(child)
        raise
    finally:
        sel.close()
        proc.stdout.close()
        if timed_out:
            _stop(child)
        _unregister(child)
    return Result(args, proc.returncode, "".join(out), timed_out, list(last))
