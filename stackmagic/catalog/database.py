"""The database every OpenStack service keeps its data in (devstack's lib/database).

``DATABASE_TYPE`` picks the backend: ``sqlite`` (the default here: no server, one file per
database under ``$DATA_DIR/databases``), ``mysql`` (MariaDB) or ``postgresql``, both from Debian's
packages and started by stackmagic in their own tmux window. The project is implicit: it comes
with the first enabled project that ``uses_database``. Projects call
``Database.url(ctx, name)`` in configure and ``Database.create(ctx, name)`` in init.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.context import Context

BACKENDS = ("sqlite", "mysql", "postgresql")


def backend(ctx: "Context") -> str:
    kind = ctx.settings.database_type
    if kind not in BACKENDS:
        raise ConfigError(f"DATABASE_TYPE={kind} is not supported; use one of: {', '.join(BACKENDS)}")
    return kind


class Database(Project):
    name = "database"
    services = {"mysql": "MariaDB server", "postgresql": "PostgreSQL server"}
    implicit = True
    is_database = True
    aliases = ("mysql", "postgresql")

    def wanted_by(self, ctx: "Context", chosen: list[Project]) -> bool:
        return any(p.uses_database for p in chosen)

    # -- the URLs and databases projects use ----------------------------------------------
    @staticmethod
    def directory(ctx: "Context") -> Path:
        return ctx.settings.data_dir / "databases"

    @classmethod
    def url(cls, ctx: "Context", name: str) -> str:
        kind = backend(ctx)
        if kind == "sqlite":
            return f"sqlite:///{cls.directory(ctx) / (name + '.sqlite')}"
        raise ConfigError(f"DATABASE_TYPE={kind} is not available yet; use sqlite")

    @classmethod
    def create(cls, ctx: "Context", name: str) -> None:
        """Make sure database ``name`` exists (empty the first time)."""
        if backend(ctx) == "sqlite":
            cls.directory(ctx).mkdir(parents=True, exist_ok=True)

    @classmethod
    def drop(cls, ctx: "Context", name: str) -> None:
        if backend(ctx) == "sqlite":
            (cls.directory(ctx) / f"{name}.sqlite").unlink(missing_ok=True)

    # -- lifecycle ------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        return ()

    def processes(self, ctx: "Context") -> Iterable[Process]:
        backend(ctx)
        return ()

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(self.directory(ctx), ignore_errors=True)
