"""The lifecycle every project in the catalog (and every plugin) describes: devstack's ``lib/*``
symmetry (install_, configure_, init_, start_, stop_, cleanup_) as methods of one class.

A project says what it clones, what it installs, how it is configured, initialised and started
(``processes``), which accounts and data it creates, how it is checked, and how it is cleaned.
The engine turns those into steps; a method a project does not override gives no step.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable

from stackmagic.health import Check

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from stackmagic.context import Context
    from stackmagic.verify import Listing


#: The phases of a project's own steps, in the order they run (stack.sh's order).
PROJECT_PHASES = ("configure", "init", "start", "accounts", "data")


@dataclass(frozen=True)
class Need:
    """What a project requires of another: ``capability`` ready before its own ``before`` phase.

    ``Need("database", before="init")``: the database server is up before my init creates my
    database. ``Need("identity", before="accounts")``: Keystone runs and has its own accounts
    before mine are made. ``services`` narrows a ``before="start"`` need to some of my processes
    (``Need("hypervisor", before="start", services=("n-cpu",))``). An ``optional`` need is met
    when a provider is available and left out otherwise (Keystone runs without memcached).
    """

    capability: str
    before: str = "init"
    services: tuple[str, ...] = ()
    optional: bool = False

    def __post_init__(self) -> None:
        if self.before not in PROJECT_PHASES:
            raise ValueError(f"Need({self.capability!r}): before must be one of {PROJECT_PHASES}")


@dataclass(frozen=True)
class Process:
    """One long-running process: one tmux window named ``service``.

    Most services run in the foreground of their window. A daemon that forks and writes a pid
    file says so with ``pidfile``: its window then follows it (its ``daemon_log`` when given) for
    as long as the pid lives; it is found, checked and stopped through that pid. ``stop_signal``
    and ``stop_timeout`` say how it stops (SIGKILL follows when the timeout passes); ``user`` /
    ``group`` run it as another account (root starts it there); ``needs_root`` refuses to plan it
    for anyone else. ``after`` names services (of any project) that must be up before this one.
    """

    service: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    health: Check | None = None
    endpoint: str | None = None         # what the summary shows (a URL)
    host: str | None = None             # where it listens, for the port-in-use check
    port: int | None = None
    timeout: float = 90.0               # seconds to wait for health
    after: tuple[str, ...] = ()         # services that start (and are healthy) first
    pidfile: Path | None = None         # the daemon forks and writes its pid here
    daemon_log: Path | None = None      # where a forking daemon writes its log (the window shows it)
    user: str | None = None             # run as this account (root only)
    group: str | None = None            # ... with this group
    needs_root: bool = False            # only root can run it (libvirtd, ovs-vswitchd ...)
    stop_signal: int = signal.SIGTERM   # what asks it to stop
    stop_timeout: float = 10.0          # seconds before SIGKILL


class Project:
    """Base of every catalog entry. Class attributes describe it; methods do the work.

    Only override what the project needs: ``configure``, ``init``, ``accounts``, ``data``,
    ``extra``, ``test_config`` each become a step only when overridden.

    The contract with the planner (no other module names a project):

    - ``provides``: capability -> the phase after which it is available to others, e.g.
      ``{"database": "start"}`` (the server runs), ``{"identity": "accounts"}`` (Keystone runs
      and holds its base accounts). Capabilities in use: ``database``, ``identity``, ``cache``,
      ``message-bus``, ``coordination``, ``hypervisor``, ``vswitch``; any string works. When the
      provider has no step of that phase, its last earlier step stands in.
    - ``requires``: :class:`Need` entries; each orders the provider's phase before one of mine,
      and pulls the provider into the stack when it is not enabled by name.
    - ``when_needed``: the project comes only when something enabled requires what it provides
      (the database, memcached); its service names alone do not bring it. ``available(ctx)``
      says whether it can run here at all (an optional need goes unmet otherwise).
    - ``persistent``: a plain ``unstack`` keeps its processes running (database and message
      servers, as devstack's unstack.sh); ``unstack --all`` stops them too.
    - ``own_order``: pairs of its own phases, the first before the second, beyond the usual
      configure, init, then start and accounts side by side, then data: Keystone's
      ``(("start", "accounts"),)`` (its accounts are made through its running API), Heat's
      ``(("accounts", "start"),)``. Every project's accounts come after the identity
      provider's, since accounts are made in Keystone.
    - ``ports``: setting -> default, every port it listens on (sandboxes pick free ones).
    - ``group``: the devstack group name that is_service_enabled knows it by (``glance``).
    - ``devstack_plugin``: a recipe for a project that devstack runs only through its plugin
      (``enable_plugin heat URL``): that line then uses this recipe instead of cloning the
      plugin's bash, takes URL and REF as the project's source, and enables
      ``plugin_services`` (as the plugin's settings file would) unless the localrc disabled them.
    - ``tempest_plugins``: pip requirements installed into Tempest's venv with Tempest when both
      run (devstack's install_<project>tempest: ``zaqar-tempest-plugin``).
    """

    name: ClassVar[str]                                 # "keystone"
    services: ClassVar[dict[str, str]] = {}             # short name -> what it is
    repo: ClassVar[str | None] = None                   # "openstack/keystone", under GIT_BASE
    pypi: ClassVar[str | None] = None                   # PyPI name, for MIRROR_FROM_PYPI
    requirements: ClassVar[tuple[str, ...]] = ()        # more pip requirements for the venv
    system_packages: ClassVar[tuple[str, ...]] = ()     # Debian packages it needs
    provides: ClassVar[dict[str, str]] = {}             # capability -> phase it is ready after
    requires: ClassVar[tuple[Need, ...]] = ()           # what it needs of others, and when
    when_needed: ClassVar[bool] = False                 # comes only when required by another
    persistent: ClassVar[bool] = False                  # plain unstack keeps it running
    own_order: ClassVar[tuple[tuple[str, str], ...]] = ()   # (phase, later phase) of its own
    #: projects whose services its own cache the capabilities of (Nova: Neutron's extensions):
    #: its services restart when that project's config or data setup was made anew
    restarts_with: ClassVar[tuple[str, ...]] = ()
    ports: ClassVar[dict[str, int]] = {}                # port setting -> default
    group: ClassVar[str | None] = None                  # devstack's group name for it
    devstack_plugin: ClassVar[str | None] = None        # the devstack plugin it stands in for
    plugin_services: ClassVar[tuple[str, ...]] = ()     # what that plugin's settings enable
    tempest_plugins: ClassVar[tuple[str, ...]] = ()     # pip requirements: its tempest plugin
    source_dir_override: Path | None = None             # plugins: where the code already is
    plugin: str | None = None                           # the plugin that defined it

    #: attributes of the first catalog, and what says the same now
    _RETIRED: ClassVar[dict[str, str]] = {
        "uses_database": 'requires = (Need("database", before="init"), ...)',
        "uses_keystone": 'requires = (Need("identity", before="accounts"), ...)',
        "start_after": 'requires = (Need(<capability>, before="start"), ...) or Process(after=...)',
        "implicit": "when_needed = True", "wanted_by": "when_needed = True and requires in the others",
        "is_database": 'provides = {"database": "start"}', "aliases": "services",
    }

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        old = [name for name in cls._RETIRED if name in vars(cls)]
        if old:
            raise TypeError(f"project class {cls.__name__}: {', '.join(old)} no longer exist; write "
                            + "; ".join(f"{cls._RETIRED[n]} (for {n})" for n in old))

    def available(self, ctx: "Context") -> bool:
        """Whether it can run on this machine with these settings (default: yes)."""
        return True

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

    def verify_checks(self, ctx: "Context") -> list["Listing"]:
        """What ``stackmagic verify`` asks the running project through openstacksdk."""
        return []

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """(section, key, value) for tempest.conf while it runs (devstack's configure_tempest)."""
        return []

    @classmethod
    def setting_problems(cls, values: "Mapping[str, str]", enabled: "Sequence[str]") -> list[tuple[str, str]]:
        """(setting, what is wrong and what to write instead) for each of its own settings that
        cannot work here with the ``enabled`` services: checked with every other value when the
        configuration is read (config/validate.py), so a bad one is refused before anything runs."""
        return []

    def plan_notes(self, ctx: "Context") -> list[str]:
        """One-line decisions ``plan`` and the stack's start show, each with its reason (what a
        probe chose: "libvirt: virt_type qemu, because ..."). Cheap: plan calls it every time."""
        return []

    def before_unstack(self, ctx: "Context") -> None:
        """What unstack does while every service still runs, before any is stopped (devstack's
        cleanup_nova removes the instances through libvirtd, which outlives it there)."""

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
