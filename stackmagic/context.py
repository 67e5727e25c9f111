"""What a step gets to do its work: settings (every read recorded), paths, the venv, tmux, a
``run`` that streams a command's output to the step's log and stops on Ctrl-C, and ini editing.

Each step gets its own :class:`Context` from :meth:`Context.for_step`; the settings it reads are
recorded so the engine can re-run exactly the steps a changed setting touches.
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

    # -- per step ---------------------------------------------------------------------------
    def for_step(self, step: "Step") -> "Context":
        child = object.__new__(Context)
        child.__dict__.update(self.__dict__)
        child.step = step
        child.reads = {}
        safe = step.id.replace(" ", "-").replace("/", "_")
        child.logfile = self.step_log_dir / f"{safe}.log"
        return child

    @property
    def settings(self):
        """The settings; every read made through this is recorded for change detection."""
        from stackmagic.tracking import tracked

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
    def iniset(self, path: Path, section: str, option: str, value: Any) -> None:
        """devstack's iniset; the file's directory is made when missing. Booleans as true/false."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bool):
            value = "true" if value else "false"
        ini.iniset(path, section, option, str(value))

    def write_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
