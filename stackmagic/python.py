"""The one Python virtual environment every project is installed into (devstack's GLOBAL_VENV).

It is created and filled with uv (``uv venv``, ``uv pip install``), which is an order of magnitude
faster than pip here; without uv it falls back to ``python -m venv`` and the venv's own pip.

Network: ``uv pip install`` asks the package index about every name it resolves, except that it
reuses index pages it cached less than their allowed age ago (10 minutes on PyPI). With
``offline=True`` it never touches the network: names resolve from local paths, ``find_links``
directories and uv's cache only, and a name found in none of them fails the install. Source trees
with a build backend are built in an isolated environment whose build requirements must be
available the same way.

Interrupted or killed, nothing is left half-made for the next run to trust: a venv whose creation
was cut short is made again (a mark beside it says creation is under way; ``uv venv`` killed early
leaves no ``pyvenv.cfg``), and an install cut short leaves a mark in the venv, so that
:meth:`Venv.complete` is false (the install step runs again) and the next install reinstalls.
Installer commands run through :mod:`stackmagic.children`: they die with stackmagic and stop at
once when the run is cancelled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from stackmagic import children
from stackmagic.errors import StackError

_TAIL = 20
#: What ``uv venv`` and ``python -m venv`` make before ``pyvenv.cfg``.
_VENV_PARTS = frozenset({"bin", "lib", "lib64", "include", ".gitignore", "CACHEDIR.TAG", ".lock"})
_NO_PROGRESS = {"NO_COLOR": "1", "UV_NO_PROGRESS": "1", "PIP_PROGRESS_BAR": "off"}


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

    @property
    def _creating(self) -> Path:
        """Written before the venv is made, removed once it is: while it exists, the venv
        directory is a half-made one of ours (its maker was interrupted or killed)."""
        return self.path.with_name(f".{self.path.name}.creating")

    @property
    def _installing(self) -> Path:
        """Written before an install, removed when it finished: an install that was cut short
        leaves it, and the next install then reinstalls everything it names."""
        return self.path / ".stackmagic-installing"

    def complete(self) -> bool:
        """True if the venv was made to the end and no install into it was cut short."""
        return ((self.path / "pyvenv.cfg").is_file() and self.python.exists()
                and not self._creating.exists() and not self._installing.exists())

    def ensure(self) -> bool:
        """Create the venv if it is missing, or make it again if it is half-made; return True if
        it was created.

        Half-made: its creation was interrupted (stackmagic's mark of a creation in progress is
        still there, or the directory holds only what ``uv venv`` writes first, without the
        ``pyvenv.cfg`` it writes last), or its python is gone. Any other directory that is not a
        venv is left alone and raises :class:`VenvError`.
        """
        if self._creating.exists() or self._cut_short():
            shutil.rmtree(self.path, ignore_errors=True)
            if self.path.exists():
                raise VenvError(f"the half-made virtual environment {self.path} cannot be removed; "
                                "remove it by hand and run again")
        elif (self.path / "pyvenv.cfg").is_file():
            if self.python.exists():
                return False
            shutil.rmtree(self.path, ignore_errors=True)       # its python is gone: useless
        elif self.path.exists() and any(self.path.iterdir()):
            raise VenvError(f"{self.path} exists and is not a virtual environment; remove it or choose another path")
        uv = find_uv()
        if uv is not None:
            argv = [str(uv), "venv", "--quiet", "--no-project", "--python", sys.executable, str(self.path)]
        else:
            argv = [sys.executable, "-m", "venv", str(self.path)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._creating.write_text(f"{os.getpid()}\n")
        result = children.run(argv)
        if result.returncode != 0:
            raise VenvError(f"creating the virtual environment {self.path} failed: {result.output.strip()}")
        self._creating.unlink()
        return True

    def _cut_short(self) -> bool:
        """A directory ``uv venv`` / ``python -m venv`` began and did not finish: only their parts
        (no pyvenv.cfg), and in ``bin`` only the interpreter links and activation scripts."""
        if (self.path / "pyvenv.cfg").exists() or not self.path.is_dir():
            return False
        names = {p.name for p in self.path.iterdir()}
        if not names or not names <= _VENV_PARTS:
            return False
        bin_dir = self.path / "bin"
        return not bin_dir.is_dir() or all(
            p.name.lower().startswith(("python", "activate", "deactivate", "pip", "pydoc"))
            for p in bin_dir.iterdir())

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
        if self._installing.exists():
            # the last install was cut short: files of a package may be missing behind its
            # metadata, which says it is installed
            argv.append("--reinstall" if find_uv() is not None else "--force-reinstall")
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
        self._installing.write_text(" ".join(argv) + "\n")
        result = children.run(argv, env={**os.environ, **_NO_PROGRESS},
                              on_line=log, tail=_TAIL)
        if result.returncode >= 0:
            self._installing.unlink()     # it finished (failing before it installs anything)
        if result.returncode != 0:
            raise InstallError([*requirements, *(f"-e {tree}" for tree in editable)],
                               result.returncode, result.tail)

    def installed(self) -> dict[str, str]:
        """The distributions installed in the venv: normalized name -> version."""
        with tempfile.TemporaryFile() as errors:
            result = children.run(self._pip("list", "--format", "json"), stderr=errors)
            errors.seek(0)
            said = errors.read().decode(errors="replace")
        if result.returncode != 0:
            raise VenvError(f"listing the packages of {self.path} failed: {said.strip()}")
        return {normalize(entry["name"]): entry["version"] for entry in json.loads(result.output)}

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
            with tempfile.TemporaryFile() as errors:
                result = children.run(args, env=full_env, cwd=cwd, timeout=timeout, stderr=errors)
                errors.seek(0)
                stderr = errors.read().decode(errors="replace")
        except FileNotFoundError:
            raise CommandError(args, f"cannot run: {args[0]} not found in {self.path / 'bin'} or on PATH", "") from None
        if result.timed_out:
            raise CommandError(args, f"did not finish in {timeout} s", result.output + stderr)
        if check and result.returncode != 0:
            raise CommandError(args, f"failed with exit status {result.returncode}", result.output + stderr)
        return subprocess.CompletedProcess(args, result.returncode, result.output, stderr)

    def _pip(self, *args: str) -> list[str]:
        uv = find_uv()
        if uv is not None:
            return [str(uv), "pip", args[0], "--python", str(self.python), *args[1:]]
        return [str(self.python), "-m", "pip", *args, "--disable-pip-version-check"]
