"""The lifecycle every project in the catalog (and every plugin) describes: devstack's ``lib/*``
symmetry (install_, configure_, init_, start_, stop_, cleanup_) as methods of one class.

A project says what it clones, what it installs, how it is configured, initialised and started
(``processes``), which accounts and data it creates, how it is checked, and how it is cleaned.
The engine turns those into steps; a method a project does not override gives no step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable

from stackmagic.health import Check

if TYPE_CHECKING:
    from stackmagic.context import Context


@dataclass(frozen=True)
class Process:
    """One long-running process: one tmux window named ``service``."""

    service: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    health: Check | None = None
    endpoint: str | None = None         # what the summary shows (a URL)
    host: str | None = None             # where it listens, for the port-in-use check
    port: int | None = None
    timeout: float = 90.0               # seconds to wait for health


class Project:
    """Base of every catalog entry. Class attributes describe it; methods do the work.

    Only override what the project needs: ``configure``, ``init``, ``accounts``, ``data``,
    ``extra``, ``test_config`` each become a step only when overridden.
    """

    name: ClassVar[str]                                 # "keystone"
    services: ClassVar[dict[str, str]] = {}             # short name -> what it is
    repo: ClassVar[str | None] = None                   # "openstack/keystone", under GIT_BASE
    pypi: ClassVar[str | None] = None                   # PyPI name, for MIRROR_FROM_PYPI
    requirements: ClassVar[tuple[str, ...]] = ()        # more pip requirements for the venv
    system_packages: ClassVar[tuple[str, ...]] = ()     # Debian packages it needs
    uses_database: ClassVar[bool] = False               # needs a database created for it
    uses_keystone: ClassVar[bool] = False               # its accounts need Keystone running
    start_after: ClassVar[tuple[str, ...]] = ()         # projects whose processes start first
    source_dir_override: Path | None = None             # plugins: where the code already is
    plugin: str | None = None                           # the plugin that defined it

    # -- where things are ----------------------------------------------------------------
    def source_dir(self, ctx: "Context") -> Path:
        if self.source_dir_override is not None:
            return self.source_dir_override
        return ctx.settings.dest / self.name

    def config_files(self, ctx: "Context") -> list[Path]:
        """The config files it writes: local.conf post-config merges for them apply after configure."""
        return []

    def enabled_services(self, ctx: "Context") -> list[str]:
        return [s for s in self.services if ctx.config.is_service_enabled(s)]

    # -- lifecycle ---------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        """Debian packages it needs (installed with apt-get when missing)."""
        return self.system_packages

    def install_requirements(self, ctx: "Context") -> list[str]:
        """pip requirements for the shared venv: the source tree (editable) and extras."""
        return list(self.requirements)

    def editable(self, ctx: "Context") -> list[Path]:
        """Source trees installed editable: the clone, or a plugin checkout that is a package."""
        src = self.source_dir(ctx)
        if self.repo:
            return [src]
        if self.source_dir_override is not None and any(
            (src / f).exists() for f in ("pyproject.toml", "setup.py")
        ):
            return [src]
        return []

    def pre_install(self, ctx: "Context") -> None:
        """devstack's ``pre-install`` plugin phase: before the venv install."""

    def configure(self, ctx: "Context") -> None:
        """Write config files (devstack's configure_<project>)."""

    def init(self, ctx: "Context") -> None:
        """Database sync and first-time setup (devstack's init_<project>)."""

    def processes(self, ctx: "Context") -> Iterable[Process]:
        """The long-running processes of the enabled services (devstack's start_<project>)."""
        return ()

    def accounts(self, ctx: "Context") -> None:
        """Keystone users, services and endpoints (devstack's create_<project>_accounts)."""

    def data(self, ctx: "Context") -> None:
        """Initial data once it runs (images, flavors ...)."""

    def extra(self, ctx: "Context") -> None:
        """devstack's ``extra`` phase: after every service is up."""

    def test_config(self, ctx: "Context") -> None:
        """devstack's ``test-config`` phase: tempest and other test configuration."""

    def unstack(self, ctx: "Context") -> None:
        """devstack's ``unstack`` plugin phase: after its processes were stopped."""

    def cleanup(self, ctx: "Context") -> None:
        """Remove data, databases and generated config (devstack's cleanup_<project>); keep the source."""

    # -- helpers ------------------------------------------------------------------------------
    @classmethod
    def overrides(cls, method: str) -> bool:
        """True if this project defines ``method`` itself (so the step exists)."""
        for klass in cls.__mro__:
            if klass is Project:
                return False
            if method in vars(klass):
                return True
        return False
