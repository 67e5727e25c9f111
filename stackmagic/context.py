"""What a step gets to do its work: settings (every read recorded), paths, the venv, tmux, a
``run`` that streams a command's output to the step's log and stops on Ctrl-C, and ini editing.

Each step gets its own :class:`Context` from :meth:`Context.for_step`; the settings it reads, and
what it asks its ``config`` about the enabled services, are recorded so the engine can re-run
exactly the steps a change touches.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from stackmagic import children
from stackmagic import events as ev
from stackmagic import ini
from stackmagic.children import Cancel, Cancelled  # noqa: F401 - Cancelled is part of this API
from stackmagic.errors import StackError
from stackmagic.tracking import tracked, tracked_config

if TYPE_CHECKING:
    from stackmagic.config import Config
    from stackmagic.plan import Step
    from stackmagic.python import Venv
    from stackmagic.state import State
    from stackmagic.tmux import Tmux


class CommandFailed(StackError):
    """A command a step ran exited non-zero."""

    def __init__(self, argv: list[str], code: int, tail: list[str]):
        self.argv, self.code, self.tail = argv, code, tail
        super().__init__(f"`{' '.join(map(str, argv))}` exited with status {code}")


class Context:
    """The engine's view for one step. Cheap to copy; shared parts are shared."""

    def __init__(self, config: "Config", *, state: "State", tmux: "Tmux", venv: "Venv",
                 emit: ev.EventSink = ev.ignore, cancel: threading.Event | None = None):
        self.config = config
        self._settings = config.settings
        self.state = state
        self.tmux = tmux
        self.venv = venv
        self.emit = emit
        self.cancel = cancel or Cancel()     # setting it stops the running commands
        self.step: "Step | None" = None
        self.reads: dict[str, str | None] = {}
        self.logfile: Path | None = None
        self.shared: dict[str, Any] = {}          # per-run scratch shared by all steps
        self.projects: list = []                  # the stack's projects, providers first

    # -- per step ---------------------------------------------------------------------------
    def for_step(self, step: "Step") -> "Context":
        child = object.__new__(Context)
        child.__dict__.update(self.__dict__)
        child.step = step
        child.reads = {}
        child.config = tracked_config(self.config, child.reads)
        safe = step.id.replace(" ", "-").replace("/", "_")
        child.logfile = self.step_log_dir / f"{safe}.log"
        return child

    @property
    def settings(self):
        """The settings; every read made through this is recorded for change detection."""
        return tracked(self._settings, self.reads)

    @property
    def step_log_dir(self) -> Path:
        return self._settings.logdir / "stack"

    @property
    def stack_dir(self) -> Path:
        """Where stackmagic keeps its own state: ``$DATA_DIR/stackmagic``."""
        return self._settings.data_dir / "stackmagic"

    def conf_dir(self, project: str) -> Path:
        return self.settings.path("STACK_CONF_DIR") / project

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.settings.service_host}:{port}{path}"

    # -- output -----------------------------------------------------------------------------
    def log(self, line: str) -> None:
        """A line in the step's log (and the live view)."""
        line = line.rstrip("\n")
        if self.logfile is not None:
            self.logfile.parent.mkdir(parents=True, exist_ok=True)
            with open(self.logfile, "a") as fh:
                fh.write(line + "\n")
        self.emit(ev.StepOutput(self.step.id if self.step else "", line))

    def warn(self, message: str) -> None:
        self.log(f"WARNING: {message}")
        self.emit(ev.Warning_(message, self.step.id if self.step else None))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("interrupted")

    # -- commands ---------------------------------------------------------------------------
    def run(self, *argv: str | os.PathLike, env: Mapping[str, str] | None = None,
            cwd: Path | None = None, check: bool = True, timeout: float | None = None,
            input: str | None = None, quiet: bool = False) -> str:
        """Run a command; its output goes to the step's log as it comes. Returns the output.

        The command runs in a process group of its own that dies with stackmagic (see
        :mod:`stackmagic.children`). When the run is cancelled or ``timeout`` passes, the group
        gets SIGTERM, and SIGKILL half a second later.
        """
        args = [str(a) for a in argv]
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        if not quiet:
            self.log("+ " + " ".join(args))
        result = children.run(args, env=full_env, cwd=cwd, input=input, timeout=timeout,
                              on_line=None if quiet else self.log, cancel=self.cancel)
        if result.timed_out:
            raise StackError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s")
        if check and result.returncode != 0:
            raise CommandFailed(args, result.returncode, result.tail)
        return result.output

    # -- config files -----------------------------------------------------------------------
    def iniset(self, path: Path, section: str, option: str, value: Any, *, raw: bool = False) -> None:
        """devstack's iniset; the file's directory is made when missing. Booleans as true/false.

        The value is written so that oslo.config reads back exactly ``value`` (see
        :func:`oslo_value`): a password with ``$``, ``%``, quotes or spaces survives. ``raw``
        writes it as given, for a file that another parser reads. Files under STACK_CONF_DIR
        are private (see :meth:`private_mode`): they hold passwords.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bool):
            value = "true" if value else "false"
        text = str(value) if raw else oslo_value(str(value))
        mode = self.private_mode(path)
        if mode is not None:
            _make_private(path, mode)
        ini.iniset(path, section, option, text)

    def private_mode(self, path: Path) -> int | None:
        """0600 for a file under STACK_CONF_DIR (config files hold passwords, and every service
        stackmagic configures runs as this user), else None (the umask decides)."""
        conf = self._settings.get("STACK_CONF_DIR")
        if not conf:
            return None
        try:
            Path(path).resolve().relative_to(Path(conf).resolve())
        except ValueError:
            return None
        return 0o600

    def write_file(self, path: Path, text: str, mode: int | None = None) -> None:
        """Write ``text`` to ``path`` atomically with ``mode`` (default: 0600 under
        STACK_CONF_DIR, 0644 elsewhere); the file never exists with a looser mode."""
        path = Path(path)
        if mode is None:
            mode = self.private_mode(path) or 0o644
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)


def oslo_value(value: str) -> str:
    """``value`` as an oslo.config file must hold it to read back ``value``.

    oslo.config substitutes ``$name`` and ``${name}`` with other options (``$$`` is a literal
    ``$``), strips the spaces around a value, and drops one pair of quotes that encloses the
    whole value. So ``$`` is doubled, and a value with surrounding spaces or wholly quoted is
    put inside double quotes. ``%`` needs nothing: oslo.config does not interpolate it, and the
    projects escape it themselves where they hand a database URL to configparser (alembic).
    A line break cannot be written (the settings are checked for them when loaded).
    """
    text = value.replace("$", "$$")
    if text != text.strip() or (len(text) >= 1 and text[0] == text[-1] and text[0] in "\"'"):
        text = f'"{text}"'
    return text


def _make_private(path: Path, mode: int) -> None:
    """Create ``path`` empty with ``mode``, or take group and other access from an existing
    one that has it (a stack made before files were private)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.close(fd)
        return
    except FileExistsError:
        pass
    current = path.stat().st_mode & 0o777
    if current & 0o077 and current != mode:
        os.chmod(path, mode)

