"""Passwords: from the settings, or generated once and kept like devstack's ``.localrc.password``.

devstack asks for unset passwords at a prompt, which would block a notebook. stackmagic never
prompts: an unset ``ADMIN_PASSWORD`` / ``DATABASE_PASSWORD`` / ``SERVICE_PASSWORD`` /
``RABBIT_PASSWORD`` is generated, saved in ``$DATA_DIR/stackmagic/passwords`` (mode 0600) and
reused by every later run. Each unset password gets its own secret.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from stackmagic.config.settings import Settings

NAMES = ("ADMIN_PASSWORD", "DATABASE_PASSWORD", "SERVICE_PASSWORD", "RABBIT_PASSWORD")


def _read(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    out = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name in NAMES:
            out[name] = value
    return out


def with_passwords(config, stack_dir: Path, *, create: bool):
    """``config`` with every unset password filled from the saved file (generated if ``create``)."""
    values = dict(config.settings)
    missing = [n for n in NAMES if not values.get(n)]
    if not missing:
        return config
    path = stack_dir / "passwords"
    saved = _read(path)
    new = {n: secrets.token_hex(12) for n in missing if n not in saved}
    if new and create:
        saved.update(new)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in sorted(saved.items())))
        os.replace(path.with_suffix(".tmp"), path)
    values.update({n: saved[n] for n in missing if n in saved})
    settings = Settings(values, user=config.settings.user_names)
    return dataclasses.replace(config, settings=settings)
