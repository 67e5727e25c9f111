"""Errors the engine and the configuration model raise.

Every error a user can cause is a :class:`StackError` whose message says what to change.
Front ends print ``str(err)`` and exit with :attr:`StackError.exit_code`.
"""

from __future__ import annotations


class StackError(Exception):
    """Base of every error stackmagic reports to a user."""

    exit_code = 1


class ConfigError(StackError):
    """The localrc / local.conf is wrong. ``file`` and ``line`` say where, when known."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        where = ""
        if file and line:
            where = f"{file}, line {line}: "
        elif file:
            where = f"{file}: "
        super().__init__(where + message)
        self.message = message
