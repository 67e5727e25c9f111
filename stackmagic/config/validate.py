"""Check the values a localrc left before anything is touched.

:func:`check_values` runs when the configuration is loaded (``plan``, ``stack``, ``status`` and
the magics all load it first), so a bad value is refused before the engine takes its first step:
a running stack is never stopped, restarted or reconfigured because of it. Every problem found
is reported at once, one per line, each naming the setting and what to write instead. Values
are never quoted in a message when the setting is a secret.

:func:`check_places` checks that ``DEST``, ``DATA_DIR``, ``LOGDIR`` and ``FILES`` are (or can
become) directories this user can write; :func:`check_name` checks a plugin or project name
used as a directory name.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from stackmagic.config.settings import is_secret
from stackmagic.errors import ConfigError

#: A setting whose name ends like this holds a TCP port.
_PORT = re.compile(r"(^|_)PORT$")
#: Settings that must be an IP address (they are bound or put into URLs).
ADDRESSES = ("HOST_IP", "SERVICE_LISTEN_ADDRESS")
#: Settings that may be an IP address or a host name.
HOSTS = ("SERVICE_HOST",)
#: Whole-number settings and the smallest value each takes.
NUMBERS: dict[str, int] = {
    "GIT_DEPTH": 0,
    "GIT_TIMEOUT": 0,
    "SERVICE_TIMEOUT": 1,
    "API_WORKERS": 1,
    "STACK_PARALLEL": 1,
    "HEAT_ENGINE_WORKERS": 1,
}
#: The directories stackmagic writes into.
PLACES = ("DEST", "DATA_DIR", "LOGDIR", "FILES")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _shown(name: str, value: str) -> str:
    """``NAME='value'`` for a message (``NAME`` alone for a secret)."""
    return name if is_secret(name) else f"{name}={value!r}"


def _port(name: str, value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d+", text):
        return f"{_shown(name, value)} is not a port number; write a whole number from 1 to 65535"
    if not 1 <= int(text) <= 65535:
        return f"{_shown(name, value)} is out of range; a port is a whole number from 1 to 65535"
    return None


def _address(name: str, value: str, hostname_ok: bool) -> str | None:
    text = value.strip()
    if not text:
        return None
    try:
        ipaddress.ip_address(text.strip("[]"))
        return None
    except ValueError:
        pass
    looks_numeric = re.fullmatch(r"[\d.]+", text) is not None
    if hostname_ok and not looks_numeric and _HOSTNAME.match(text):
        return None
    what = "an IP address or a host name" if hostname_ok else "an IP address"
    return f"{_shown(name, value)} is not {what}; write one such as 127.0.0.1"


def _number(name: str, value: str, least: int) -> str | None:
    text = value.strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d+", text):
        return f"{_shown(name, value)} is not a whole number; write {least} or more"
    if int(text) < least:
        return f"{_shown(name, value)} is too small; write {least} or more"
    return None


def _series(value: str) -> str | None:
    from stackmagic import constraints

    if not value:
        return None
    known = sorted(p.stem for p in constraints.HERE.glob("*.txt") if not p.stem.endswith("-releases"))
    if value in known:
        return None
    return (f"RELEASE_SERIES={value!r} is not a release series stackmagic knows; "
            f"write one of: {', '.join(known)} (or leave it unset for {constraints.SERIES})")


def _secret_lines(name: str, value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return (f"{name} contains a line break, which no config file can hold; "
                "write the password on one line")
    return None


def _key_length(name: str, value: str, length: int, why: str) -> str | None:
    if not value or len(value) == length:
        return None
    return (f"{name} has {len(value)} characters; it must have exactly {length} ({why}): "
            f"write {length} characters, or leave it unset and stackmagic generates one and keeps it")


def problems(values: Mapping[str, str], enabled: Sequence[str] = ()) -> list[str]:
    """Every problem with ``values`` (setting name -> value) while ``enabled`` services run,
    one message each."""
    return [message for _, message in _problems(values, enabled)]


def _problems(values: Mapping[str, str], enabled: Sequence[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str | None]] = []
    for name, value in sorted(values.items()):
        if _PORT.search(name):
            found.append((name, _port(name, value)))
        if is_secret(name):
            found.append((name, _secret_lines(name, value)))
    bad_host_ip = _address("HOST_IP", values.get("HOST_IP", ""), hostname_ok=False)
    for name in (*ADDRESSES, *HOSTS):
        value = values.get(name, "")
        if name != "HOST_IP" and bad_host_ip and value == values.get("HOST_IP"):
            continue                      # it only repeats HOST_IP (its default), reported once
        found.append((name, _address(name, value, hostname_ok=name in HOSTS)))
    for name, least in NUMBERS.items():
        found.append((name, _number(name, values.get(name, ""), least)))
    from stackmagic.passwords import KEPT

    for name, kept in KEPT.items():
        if kept.length:
            found.append((name, _key_length(name, values.get(name, ""), kept.length, kept.why)))
    found.append(("RELEASE_SERIES", _series(values.get("RELEASE_SERIES", ""))))
    from stackmagic.catalog import builtin_projects

    for project in builtin_projects():
        found += project.setting_problems(values, enabled)
    return [(name, message) for name, message in found if message]


def _assigned(name: str, text: str) -> int | None:
    """The last line of ``text`` that assigns ``name`` (``NAME=`` or ``export NAME=``)."""
    pattern = re.compile(rf"^\s*(?:export\s+|declare\s+(?:-\w+\s+)*)?{re.escape(name)}\+?=")
    found = None
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            found = number
    return found


def check_values(values: Mapping[str, str], enabled: Sequence[str], file: str | None = None,
                 text: str = "") -> None:
    """Raise :class:`ConfigError` listing every bad value in ``values`` while ``enabled``
    services run; ``text`` (the localrc) gives the line that sets each one, when it is there."""
    found = _problems(values, enabled)
    if not found:
        return
    lines = [_assigned(name, text) for name, _ in found]
    if len(found) == 1:
        raise ConfigError(found[0][1], file=file, line=lines[0])
    listed = "\n".join(f"  - {f'line {line}: ' if line else ''}{message}"
                       for (_, message), line in zip(found, lines))
    raise ConfigError(f"{len(found)} settings are wrong:\n{listed}", file=file)


def check_parallel(parallel: int | None) -> None:
    """``-j`` / ``parallel=``: None (use STACK_PARALLEL) or 1 and more."""
    if parallel is not None and (isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1):
        raise ConfigError(f"-j / --parallel is {parallel!r}; write 1 or more (steps run at once)")


def check_name(kind: str, name: str, file: str | None = None, line: int | None = None) -> None:
    """A plugin or project name becomes a directory name: letters, digits, ``-``, ``_``, ``.``,
    and not ``.`` or ``..``."""
    if not _NAME.match(name) or name in (".", ".."):
        names = _NAMES_WHAT.get(kind, "a file name")
        raise ConfigError(
            f"{kind} name {name!r} cannot be used: it names {names}, so use only "
            "letters, digits, '-', '_' and '.' (and not '.' or '..')", file=file, line=line)


_NAMES_WHAT = {"plugin": "a directory under DEST", "project": "its config and data directories",
               "service": "its log file and tmux window"}


def _kind(path: Path) -> str | None:
    """"dir", "other" (exists, not a directory), None (missing), or why it cannot be seen."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return "blocked"
    except OSError as err:
        return f"unreachable: {err.strerror}"
    return "dir" if stat.S_ISDIR(info.st_mode) else "other"


def _usable(path: Path) -> str | None:
    """Why ``path`` cannot be a directory this user writes into, or None when it can."""
    probe = path
    kind = _kind(probe)
    while kind in (None, "blocked") and probe.parent != probe:
        probe = probe.parent
        kind = _kind(probe)
    if kind and kind.startswith("unreachable"):
        return f"{probe} cannot be reached by this user ({_user()}): {kind.partition(': ')[2]}"
    if kind == "other":
        if probe == path:
            return f"{path} exists and is not a directory"
        return f"{probe} (on the way to {path}) is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == path:
            return f"{path} is a directory this user ({_user()}) cannot write"
        return f"{path} cannot be made: this user ({_user()}) cannot write {probe}"
    return None


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.geteuid()}"


def check_places(settings, file: str | None = None) -> None:
    """Raise :class:`ConfigError` unless DEST, DATA_DIR, LOGDIR and FILES can be used."""
    found = []
    for name, path in (("DEST", settings.dest), ("DATA_DIR", settings.data_dir),
                       ("LOGDIR", settings.logdir), ("FILES", settings.files)):
        if not path.is_absolute():
            found.append(f"{name}={str(path)!r} is not an absolute path; write one starting with /")
            continue
        why = _usable(path)
        if why:
            found.append(f"{name}: {why}; set {name} to a directory this user can write "
                         "(or fix the permissions)")
    if found:
        raise ConfigError(found[0] if len(found) == 1 else
                          f"{len(found)} places are not usable:\n" + "\n".join(f"  - {p}" for p in found),
                          file=file)
