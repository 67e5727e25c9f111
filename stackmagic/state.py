"""What the engine remembers between runs, under ``$DATA_DIR/stackmagic/``.

``state.json`` holds one record per finished step (its fingerprint, what it read, how long it
took) and one per process started (pid, tmux window, log file, endpoint). It is rewritten
atomically after every change, so a crash or Ctrl-C never leaves it half written.
``lock`` is held (flock) by the one ``stack`` / ``unstack`` / ``clean`` running at a time.
No secret is stored: setting values are kept only as hashes.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stackmagic.errors import StackError


class LockedError(StackError):
    """Another stack / unstack / clean holds the lock."""


@dataclass
class StepRecord:
    key: str                               # fingerprint of the inputs when the step succeeded
    reads: dict[str, str]                  # setting name -> hash of the value it had
    inputs: dict[str, str]                 # extra inputs (source sha, merges ...) -> hash
    seconds: float
    finished: float
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProcessRecord:
    service: str
    project: str
    pid: int
    window: str
    logfile: str
    started: float
    endpoint: str | None = None
    port: int | None = None
    host: str | None = None
    key: str = ""                          # the start step's fingerprint
    health: dict | None = None             # its probe, see stackmagic.health.to_dict
    start_ticks: int | None = None         # when pid started: guards against a reused pid
    persistent: bool = False               # a plain unstack keeps it (database, message servers)
    pidfile: str | None = None             # a forking daemon's pid file
    daemon_ticks: int | None = None        # when that daemon started
    stop_signal: int = 15                  # what asks it to stop (SIGTERM)
    stop_timeout: float = 10.0             # seconds before SIGKILL
    needs: list[str] = field(default_factory=list)     # services that were up before it started


class State:
    """The on-disk state of one stack. Thread-safe; every mutation is saved at once."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / "state.json"
        self._mutex = threading.Lock()
        self.steps: dict[str, StepRecord] = {}
        self.processes: dict[str, ProcessRecord] = {}
        self.services: dict[str, dict] = {}     # the last plan's services: name -> project, endpoint
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise StackError(f"the state file {self.path} is a directory; move it away "
                             "(stack then re-runs every step)") from None
        except OSError as err:
            raise StackError(f"the state file {self.path} cannot be read ({err.strerror}); "
                             "fix its permissions or move it away") from None
        try:
            data = json.loads(raw.decode("utf-8"))
            steps = _records(data, "steps", StepRecord)
            processes = _records(data, "processes", ProcessRecord)
            services = data.get("services", {})
            if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
                raise ValueError("'services' is not a mapping of records")
        except (ValueError, TypeError, AttributeError) as err:
            self.damaged = _why(err)
            return
        # in the order they started (the file is written with sorted keys): unstack stops them in
        # reverse, the services before the database and message servers they use
        processes = dict(sorted(processes.items(), key=lambda item: item[1].started))
        self.steps, self.processes, self.services = steps, processes, services

    #: Why the state file could not be trusted (None when it could): the records are then
    #: empty, so every step re-runs, and the damaged file is moved aside on the first save.
    damaged: str | None = None
    #: Where the damaged file was moved, once it was.
    moved_to: Path | None = None

    def describe_damage(self) -> str:
        """A warning for the user about a damaged state file."""
        where = (f"it was moved to {self.moved_to}" if self.moved_to else
                 f"stack moves it aside ({self.path.name}.damaged-<time>)")
        return (f"the state file {self.path} is damaged ({self.damaged}); {where} and starts "
                "from an empty state: every step re-runs (source trees and data stay)")

    def save(self) -> None:
        with self._mutex:
            self._save_locked()

    def _save_locked(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.damaged and self.moved_to is None and self.path.exists():
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            self.moved_to = aside
        data = {
            "version": 1,
            "steps": {k: asdict(v) for k, v in self.steps.items()},
            "processes": {k: asdict(v) for k, v in self.processes.items()},
            "services": self.services,
        }
        tmp = self.path.with_name(f".state.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def record_step(self, step_id: str, record: StepRecord) -> None:
        with self._mutex:
            self.steps[step_id] = record
            self._save_locked()

    def forget_steps(self, predicate) -> list[str]:
        """Drop the records of the steps for which ``predicate(step_id)`` is true."""
        with self._mutex:
            gone = [k for k in self.steps if predicate(k)]
            for k in gone:
                del self.steps[k]
            self._save_locked()
        return gone

    def record_process(self, record: ProcessRecord) -> None:
        with self._mutex:
            self.processes[record.service] = record
            self._save_locked()

    def record_services(self, services: dict[str, dict]) -> None:
        with self._mutex:
            self.services = dict(services)
            self._save_locked()

    def forget_process(self, service: str) -> None:
        with self._mutex:
            self.processes.pop(service, None)
            self._save_locked()


def _records(data: Any, key: str, cls: type) -> dict[str, Any]:
    """``data[key]`` as records of ``cls``; ValueError/TypeError when it has the wrong shape."""
    if not isinstance(data, dict):
        raise ValueError(f"it holds a JSON {type(data).__name__ if data is not None else 'null'}, "
                         "not an object")
    records = data.get(key, {})
    if not isinstance(records, dict):
        raise ValueError(f"'{key}' is not an object")
    out = {}
    for name, fields in records.items():
        if not isinstance(fields, dict):
            raise ValueError(f"'{key}' record {name!r} is not an object")
        try:
            record = cls(**fields)
        except TypeError:
            raise ValueError(f"'{key}' record {name!r} has the wrong fields") from None
        for attr, kinds in _TYPES.items():
            value = getattr(record, attr, _MISSING)
            if value is not _MISSING and not isinstance(value, kinds):
                raise ValueError(f"'{key}' record {name!r}: {attr} is a {type(value).__name__}")
        out[name] = record
    return out


_MISSING = object()
#: The types the fields of the records must have (None allowed where a field is optional).
_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,), "reads": (dict,), "inputs": (dict,), "seconds": (int, float),
    "finished": (int, float), "outputs": (dict,), "service": (str,), "project": (str,),
    "pid": (int,), "window": (str,), "logfile": (str,), "started": (int, float),
    "endpoint": (str, type(None)), "port": (int, type(None)), "host": (str, type(None)),
    "health": (dict, type(None)), "start_ticks": (int, type(None)),
}


def _why(err: BaseException) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON: {err.msg} at line {err.lineno}; it may have been cut short"
    return str(err)


class Lock:
    """An exclusive, non-blocking lock file; a second holder gets a clear message."""

    def __init__(self, directory: Path, verb: str, *, create: bool = True):
        self.path = Path(directory) / "lock"
        self.verb = verb
        self.create = create
        self._fd: int | None = None

    def __enter__(self) -> "Lock":
        if not self.create:
            # a reader (dry-run) writes nothing: with no lock file there is nothing to guard
            if not self.path.exists():
                return self
            fd = os.open(self.path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(f"another stackmagic command is running; wait for it to "
                                  f"finish, then run {self.verb} again") from None
            self._fd = fd
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"another stackmagic command is running ({holder}); wait for it to finish, "
                f"or stop it, then run {self.verb} again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.verb}, pid {os.getpid()}, since {time.strftime('%H:%M:%S')}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None and not self.create:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
