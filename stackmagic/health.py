"""How a service proves it is healthy: its own probe, not just "the process exists"."""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpCheck:
    """Healthy when ``url`` answers with an HTTP status below 500 (300 for a version list is fine)."""

    url: str
    timeout: float = 2.0

    def probe(self) -> tuple[bool, str]:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:  # noqa: S310
                return True, f"HTTP {resp.status}"
        except urllib.error.HTTPError as err:
            return err.code < 500, f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            return False, f"no answer from {self.url} ({reason})"

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
    """Healthy when ``argv`` exits 0."""

    argv: tuple[str, ...]
    timeout: float = 10.0

    def probe(self) -> tuple[bool, str]:
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
