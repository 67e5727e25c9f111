"""How a service proves it is healthy: its own probe, not just "the process exists"."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpCheck:
    """Healthy when ``url`` answers with an HTTP status below 500 (300 for a version list is fine).

    A server that accepts the connection but has not answered within ``timeout`` is asked once
    more, given ``patience`` seconds: on a loaded machine (two cores, fifty services, a status
    that probes eight at a time) a busy single-worker API is slow, not sick. A refused
    connection fails at once.
    """

    url: str
    timeout: float = 2.0
    patience: float = 15.0

    def probe(self) -> tuple[bool, str]:
        healthy, detail, timed_out = self._ask(self.timeout)
        if not timed_out:
            return healthy, detail
        start = time.monotonic()
        healthy, detail, _ = self._ask(self.patience)
        if healthy:
            detail += f" (slow: answered {time.monotonic() - start:.1f} s after a {self.timeout:g} s probe timed out)"
        return healthy, detail

    def _ask(self, timeout: float) -> tuple[bool, str, bool]:
        """(healthy, detail, whether it timed out)"""
        try:
            with urllib.request.urlopen(self.url, timeout=timeout) as resp:  # noqa: S310
                return True, f"HTTP {resp.status}", False
        except urllib.error.HTTPError as err:
            return err.code < 500, f"HTTP {err.code}", False
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            return False, f"no answer from {self.url} ({reason})", isinstance(reason, TimeoutError)

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class PortCheck:
    """Healthy when something accepts TCP connections on ``host:port``."""

    host: str
    port: int
    timeout: float = 1.0

    def probe(self) -> tuple[bool, str]:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return True, f"port {self.port} open"
        except OSError as err:
            return False, f"port {self.port} closed ({err.strerror or err})"

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CommandCheck:
    """Healthy when ``argv`` exits 0.

    A command that fails is run once more: a daemon's control socket or database (ovn-appctl's
    3 s, ovsdb-client's) can miss one answer while the daemon recomputes on a loaded machine
    (the suite saw ovn-northd and ovn-controller "unhealthy" at the end of a stack that switched
    Neutron's layout, on two cores with load 9, and healthy a moment later). A stopped daemon
    fails both runs, quickly.
    """

    argv: tuple[str, ...]
    timeout: float = 10.0

    def probe(self) -> tuple[bool, str]:
        healthy, detail = self._run()
        if healthy:
            return healthy, detail
        again, second = self._run()
        if again:
            return True, f"{second} (answered on a second try; the first: {detail})"
        return False, second

    def _run(self) -> tuple[bool, str]:
        try:
            proc = subprocess.run(
                self.argv, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return False, str(err)
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        return proc.returncode == 0, last[0][:200]

    def describe(self) -> str:
        return " ".join(self.argv)


Check = HttpCheck | PortCheck | CommandCheck


def to_dict(check: Check | None) -> dict | None:
    """A check as plain data, to keep in the state."""
    if check is None:
        return None
    kind = {HttpCheck: "http", PortCheck: "port", CommandCheck: "command"}[type(check)]
    data = {k: v for k, v in vars(check).items()}
    if "argv" in data:
        data["argv"] = list(data["argv"])
    return {"kind": kind, **data}


def from_dict(data: dict | None) -> Check | None:
    if not data:
        return None
    data = dict(data)
    kind = data.pop("kind")
    if kind == "command":
        data["argv"] = tuple(data["argv"])
    return {"http": HttpCheck, "port": PortCheck, "command": CommandCheck}[kind](**data)
