"""The one Python virtual environment every project is installed into (devstack's GLOBAL_VENV).

It is created and filled with uv (``uv venv``, ``uv pip install``), which is an order of magnitude
faster than pip here; without uv it falls back to ``python -m venv`` and the venv's own pip.

Network: ``uv pip install`` asks the package index about every name it resolves, except that it
reuses index pages it cached less than their allowed age ago (10 minutes on PyPI). With
``offline=True`` it never touches the network: names resolve from local paths, ``find_links``
directories and uv's cache only, and a name found in none of them fails the install. Source trees
with a build backend are built in an isolated environment whose build requirements must be
available the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from stackmagic.errors import StackError

_TAIL = 20


class VenvError(StackError):
    """The virtual environment cannot be created or used."""


class InstallError(StackError):
    """Installing requirements into the virtual environment failed."""

    def __init__(self, requirements: Sequence[str], returncode: int, tail: Sequence[str]):
        self.requirements = list(requirements)
        self.returncode = returncode
        self.tail = list(tail)
        listing = " ".join(self.requirements)
        output = "\n".join(f"    {line}" for line in self.tail)
        super().__init__(
            f"installing {listing} failed (exit status {returncode}); the installer said:\n{output}\n"
            "Fix the requirement, constraint or source tree it names, or reach the package index."
        )


class CommandError(StackError):
    """A command run with :meth:`Venv.run` failed."""

    def __init__(self, argv: Sequence[str], why: str, output: str):
        self.argv = list(argv)
        last = "\n".join(f"    {line}" for line in output.splitlines()[-_TAIL:])
        super().__init__(f"{' '.join(self.argv)} {why}" + (f"; its last output:\n{last}" if last else ""))


def find_uv() -> Path | None:
    """The ``uv`` binary of the installed ``uv`` package, or ``None`` if there is none."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return Path(find_uv_bin())
    except FileNotFoundError:
        return None


def normalize(name: str) -> str:
    """A distribution name in its normalized form (PEP 503): ``Oslo_Config`` -> ``oslo-config``."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Venv:
    """A virtual environment at ``path``, made from the Python running stackmagic."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        """The path of the script or program ``name`` in the venv's ``bin`` directory."""
        return self.path / "bin" / name

    def ensure(self) -> bool:
        """Create the venv if it is missing; return True if it was created.

        A directory that is not a venv, or a venv whose interpreter no longer runs, is left alone
        and raises :class:`VenvError`.
        """
        if (self.path / "pyvenv.cfg").is_file():
            if not self.python.exists():
                raise VenvError(
                    f"the virtual environment {self.path} is broken (its python is gone, was the "
                    "system Python upgraded?); remove the directory and run again"
                )
            return False
        if self.path.exists() and any(self.path.iterdir()):
            raise VenvError(f"{self.path} exists and is not a virtual environment; remove it or choose another path")
        uv = find_uv()
        if uv is not None:
            argv = [str(uv), "venv", "--quiet", "--no-project", "--python", sys.executable, str(self.path)]
        else:
            argv = [sys.executable, "-m", "venv", str(self.path)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise VenvError(f"creating the virtual environment {self.path} failed: {result.stderr.strip()}")
        return True

    def install(
        self,
        requirements: Sequence[str],
        *,
        editable: Sequence[Path] = (),
        constraints: Path | None = None,
        upgrade: bool = False,
        find_links: Sequence[Path] = (),
        offline: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Install ``requirements`` and the source trees ``editable`` (in develop mode).

        ``constraints`` is a pip constraints file (devstack's upper-constraints); ``upgrade``
        upgrades what is already installed; ``find_links`` are directories of wheels and sdists
        to use besides the index; ``offline`` forbids the network (see the module's notes). Each
        line of the installer's output is passed to ``log`` as it comes. Raises
        :class:`InstallError` with the last lines of output if the install fails.
        """
        if not requirements and not editable:
            return
        argv = self._pip("install")
        if find_uv() is not None:
            # uv skips byte-compiling by default; then every service's first start compiles
            # the whole tree (a cold stack took ~100 s instead of ~34 s in the baseline)
            argv.append("--compile-bytecode")
        if upgrade:
            argv.append("--upgrade")
        if constraints is not None:
            argv += ["--constraint", str(constraints)]
        for directory in find_links:
            argv += ["--find-links", str(directory)]
        if offline:
            argv.append("--offline" if find_uv() is not None else "--no-index")
        for tree in editable:
            argv += ["--editable", str(tree)]
        argv += list(requirements)
        returncode, tail = _stream(argv, log)
        if returncode != 0:
            raise InstallError([*requirements, *(f"-e {tree}" for tree in editable)], returncode, tail)

    def installed(self) -> dict[str, str]:
        """The distributions installed in the venv: normalized name -> version."""
        result = subprocess.run(self._pip("list", "--format", "json"), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise VenvError(f"listing the packages of {self.path} failed: {result.stderr.strip()}")
        return {normalize(entry["name"]): entry["version"] for entry in json.loads(result.stdout)}

    def run(
        self,
        *argv: str | Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv and return its result, with output captured as text.

        A bare command name found in the venv's ``bin`` runs from there; the environment is
        ours plus ``env``, with the venv activated (``VIRTUAL_ENV``, ``bin`` first on ``PATH``).
        With ``check``, a non-zero exit status raises :class:`CommandError`, and so does going
        past ``timeout`` seconds in any case.
        """
        args = [str(arg) for arg in argv]
        if args and "/" not in args[0] and self.bin(args[0]).exists():
            args[0] = str(self.bin(args[0]))
        full_env = {**os.environ, **(env or {})}
        full_env["VIRTUAL_ENV"] = str(self.path)
        full_env["PATH"] = os.pathsep.join([str(self.path / "bin"), full_env.get("PATH", "")])
        try:
            result = subprocess.run(
                args, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            output = _text(err.stdout) + _text(err.stderr)
            raise CommandError(args, f"did not finish in {timeout} s", output) from None
        except FileNotFoundError:
            raise CommandError(args, f"cannot run: {args[0]} not found in {self.path / 'bin'} or on PATH", "") from None
        if check and result.returncode != 0:
            raise CommandError(args, f"failed with exit status {result.returncode}", result.stdout + result.stderr)
        return result

    def _pip(self, *args: str) -> list[str]:
        uv = find_uv()
        if uv is not None:
            return [str(uv), "pip", args[0], "--python", str(self.python), *args[1:]]
        return [str(self.python), "-m", "pip", *args, "--disable-pip-version-check"]


def _stream(argv: list[str], log: Callable[[str], None] | None) -> tuple[int, list[str]]:
    """Run ``argv``, pass each output line to ``log``; return the exit status and the last lines."""
    tail: deque[str] = deque(maxlen=_TAIL)
    env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1", "PIP_PROGRESS_BAR": "off"}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                if log is not None:
                    log(line)
        except BaseException:
            proc.kill()
            raise
    return proc.returncode, list(tail)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""
