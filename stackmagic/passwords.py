"""Passwords: from the settings, or generated once and kept like devstack's ``.localrc.password``.

devstack asks for unset passwords at a prompt, which would block a notebook. stackmagic never
prompts: an unset ``ADMIN_PASSWORD`` / ``DATABASE_PASSWORD`` / ``SERVICE_PASSWORD`` /
``RABBIT_PASSWORD`` is generated, saved in ``$DATA_DIR/stackmagic/passwords`` (mode 0600) and
reused by every later run. Each unset password gets its own secret. ``SWIFT_HASH`` (stack.sh
reads it with the passwords, when Swift is enabled) is made and kept the same way for a stack
that runs Swift: Swift hashes every object's path with it, so a new one would lose every object
stored.

Heat's ``HEAT_AUTH_ENCRYPTION_KEY`` (the ``auth_encryption_key`` its engine encrypts the
credentials it stores with; devstack writes one fixed key) is kept the same way, 32 characters
as Heat requires, once a Heat service is enabled: a new key would leave every stored credential
unreadable. So is Zaqar's ``ZAQAR_SIGNED_URL_SECRET_KEY`` (its ``[signed_url] secret_key``): a new one
would void every pre-signed URL handed out. One table, :data:`KEPT`, says which are made when.

A password is never generated again for a stack that already used one: when the file is
damaged (not text, lines that are not ``NAME=value``), or a password that finished steps used
is missing from it, ``stack`` refuses with a message saying how to recover instead of locking
the services out of their databases. Readers (``create=False``: status, dry-run) take what they
can and write nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from pathlib import Path

from stackmagic.config.settings import Settings
from stackmagic.errors import StackError


@dataclasses.dataclass(frozen=True)
class Kept:
    """How a kept secret is made: only for a stack that runs a service of ``group`` (None: for
    every stack), with exactly ``length`` characters when its user requires that (``why`` says
    who does; a value of another length is refused when the configuration is read)."""

    group: str | None = None
    length: int | None = None
    why: str = ""


#: Every secret generated once and kept: the four passwords stack.sh asks for, SWIFT_HASH
#: (stack.sh reads it only when Swift is enabled), Heat's auth_encryption_key and Zaqar's
#: signing key for pre-signed URLs (the plugin writes a fixed string)
KEPT: dict[str, Kept] = {
    "ADMIN_PASSWORD": Kept(), "DATABASE_PASSWORD": Kept(), "SERVICE_PASSWORD": Kept(),
    "RABBIT_PASSWORD": Kept(),
    "SWIFT_HASH": Kept("swift"),
    "HEAT_AUTH_ENCRYPTION_KEY": Kept("heat", 32, "Heat refuses an auth_encryption_key of another "
                                     "length, and takes 16 or 24 only with a warning"),
    "ZAQAR_SIGNED_URL_SECRET_KEY": Kept("zaqar"),
}
NAMES = tuple(KEPT)


class PasswordsError(StackError):
    """The saved passwords cannot be trusted; generating new ones would lock the stack out."""


def _read(path: Path) -> tuple[dict[str, str], str | None]:
    """The saved passwords, and why the file is damaged (None when it is not)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as err:
        return {}, f"it cannot be read ({err.strerror})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}, "it is not text"
    out: dict[str, str] = {}
    damage = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or name not in NAMES or not value:
            damage = damage or f"line {number} is not NAME=password with a known name"
            continue
        out[name] = value
    if not out and damage is None:
        damage = "it is empty"
    return out, damage


def _used(stack_dir: Path) -> set[str]:
    """The password names that finished steps read. A state file that exists but cannot be
    read counts as having used them all: better a question to the user than a locked stack."""
    path = stack_dir / "state.json"
    try:
        data = json.loads(path.read_text())
        return {name for record in data["steps"].values() for name, value in record["reads"].items()
                if name in NAMES and value is not None}
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set(NAMES)


def _refuse(path: Path, why: str, names: list[str]) -> PasswordsError:
    listed = ", ".join(names)
    return PasswordsError(
        f"the passwords file {path} {why}, and this stack already has data made with "
        f"{listed}: new passwords would lock its services out of their users and databases. "
        f"Restore the file (lines NAME=password), or set {listed} in the localrc to the "
        "passwords the stack was made with; to start over instead, run `stackmagic clean` "
        f"and remove {path}")


def with_passwords(config, stack_dir: Path, *, create: bool):
    """``config`` with every unset password filled from the saved file (generated if ``create``)."""
    values = dict(config.settings)
    missing = [n for n, kept in KEPT.items() if not values.get(n)
               and (kept.group is None or config.is_service_enabled(kept.group))]
    if not missing:
        return config
    path = stack_dir / "passwords"
    saved, damage = _read(path)
    new = {n: secrets.token_hex((KEPT[n].length or 24) // 2) for n in missing if n not in saved}
    if new and create:
        lost = sorted(_used(stack_dir) & set(new))
        if lost:
            why = (f"is damaged ({damage})" if damage else
                   "is missing" if not path.exists() else f"has no {', '.join(lost)}")
            raise _refuse(path, why, lost)
        if damage and path.exists():
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
        saved.update(new)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in sorted(saved.items())))
        os.replace(path.with_suffix(".tmp"), path)
    values.update({n: saved[n] for n in missing if n in saved})
    settings = Settings(values, user=config.settings.user_names)
    return dataclasses.replace(config, settings=settings)
