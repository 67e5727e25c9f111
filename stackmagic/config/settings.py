"""Settings: a typed, read-only view over the variables an evaluated localrc left.

Values are the strings bash produced. The typed readers follow devstack:
:meth:`Settings.bool` is devstack's ``trueorfalse`` (``1 yes Yes YES true True
TRUE`` are true, ``0 no No NO false False FALSE`` are false, anything else,
empty or unset gives the default). Defaults themselves live in
:mod:`stackmagic.config.defaults`; the properties here only repeat them for a
Settings made from a bare dict (tests, tools).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from stackmagic.config import defaults
from stackmagic.errors import ConfigError
from stackmagic.services import parse_service_list

_TRUE = frozenset({"1", "yes", "Yes", "YES", "true", "True", "TRUE"})
_FALSE = frozenset({"0", "no", "No", "NO", "false", "False", "FALSE"})
#: ``HEAT_AUTH_ENCRYPTION_KEY`` (and heat.conf's ``auth_encryption_key``) too, and ``SWIFT_HASH``:
#: the secret suffix Swift hashes every object's path with
_SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|ENCRYPTION_KEY|^SWIFT_HASH$", re.IGNORECASE)
MASK = "********"


def is_secret(name: str) -> bool:
    """True for a variable whose value must never be shown (passwords, secrets, tokens)."""
    return bool(_SECRET.search(name))


def _project_prefix(project: str) -> str:
    """``openstack-placement`` -> ``OPENSTACK_PLACEMENT`` (variable name prefix)."""
    return re.sub(r"[^A-Za-z0-9]", "_", project).upper()


class Settings(Mapping[str, str]):
    """Read-only mapping of setting name -> value, with typed readers.

    ``user`` names the variables the user set or changed (in the localrc or the
    environment); :meth:`user_settings` and :meth:`masked` report those.
    """

    def __init__(self, values: Mapping[str, str], user: frozenset[str] | set[str] = frozenset()):
        self._values = dict(values)
        self._user = frozenset(user)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self.masked()!r})"

    # -- typed readers -------------------------------------------------------

    def bool(self, name: str, default: bool = False) -> bool:
        """devstack's ``trueorfalse``: the value as a bool, ``default`` if not a boolean word."""
        value = self._values.get(name, "")
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        return default

    def int(self, name: str, default: int = 0) -> int:
        """The value as an int; ``default`` when unset or empty."""
        value = self._values.get(name, "").strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from None

    def path(self, name: str, default: str | Path | None = None) -> Path:
        """The value as a Path (``~`` expanded); ``default`` when unset or empty."""
        value = self._values.get(name, "")
        if not value:
            if default is None:
                raise ConfigError(f"{name} is not set; set it to a directory or file path")
            return Path(default).expanduser()
        return Path(value).expanduser()

    # -- common settings -----------------------------------------------------

    @property
    def dest(self) -> Path:
        """``DEST``: where source trees are cloned."""
        return self.path("DEST", defaults.default_dest())

    @property
    def data_dir(self) -> Path:
        """``DATA_DIR``: state, databases, generated configuration."""
        return self.path("DATA_DIR", self.dest / "data")

    @property
    def logdir(self) -> Path:
        """``LOGDIR``: one log file per service."""
        return self.path("LOGDIR", self.dest / "logs")

    @property
    def files(self) -> Path:
        """``FILES``: downloaded images and other cached files."""
        return self.path("FILES", self.data_dir / "files")

    @property
    def git_base(self) -> str:
        """``GIT_BASE``: the prefix of every default repository URL."""
        return self._values.get("GIT_BASE") or defaults.DEFAULT_GIT_BASE

    @property
    def reclone(self) -> bool:
        """``RECLONE``: fetch and reset checkouts that already exist."""
        return self.bool("RECLONE", False)

    @property
    def offline(self) -> bool:
        """``OFFLINE``: never touch the network."""
        return self.bool("OFFLINE", False)

    @property
    def error_on_clone(self) -> bool:
        """``ERROR_ON_CLONE``: fail instead of cloning a missing checkout."""
        return self.bool("ERROR_ON_CLONE", False)

    @property
    def git_depth(self) -> int:
        """``GIT_DEPTH``: shallow clone depth, 0 for full history."""
        return self.int("GIT_DEPTH", 0)

    @property
    def database_type(self) -> str:
        """``DATABASE_TYPE``: sqlite (stackmagic's default), mysql or postgresql."""
        return self._values.get("DATABASE_TYPE") or "sqlite"

    @property
    def host_ip(self) -> str:
        """``HOST_IP``: this host's address for services (default 127.0.0.1)."""
        return self._values.get("HOST_IP") or "127.0.0.1"

    @property
    def service_host(self) -> str:
        """``SERVICE_HOST``: the host in endpoint URLs (default ``HOST_IP``)."""
        return self._values.get("SERVICE_HOST") or self.host_ip

    @property
    def service_listen(self) -> str:
        """``SERVICE_LISTEN_ADDRESS``: the address services bind (default ``HOST_IP``)."""
        return self._values.get("SERVICE_LISTEN_ADDRESS") or self.host_ip

    @property
    def api_workers(self) -> int:
        """``API_WORKERS``: worker processes per API service."""
        return self.int("API_WORKERS", defaults.default_api_workers())

    @property
    def region_name(self) -> str:
        """``REGION_NAME`` (default RegionOne)."""
        return self._values.get("REGION_NAME") or "RegionOne"

    @property
    def target_branch(self) -> str:
        """``TARGET_BRANCH``: the release series branch projects default to."""
        return self._values.get("TARGET_BRANCH") or defaults.DEFAULT_BRANCH

    @property
    def admin_password(self) -> str | None:
        """``ADMIN_PASSWORD``, or None when unset."""
        return self._values.get("ADMIN_PASSWORD") or None

    @property
    def database_password(self) -> str | None:
        """``DATABASE_PASSWORD``, or None when unset."""
        return self._values.get("DATABASE_PASSWORD") or None

    @property
    def service_password(self) -> str | None:
        """``SERVICE_PASSWORD``, or None when unset."""
        return self._values.get("SERVICE_PASSWORD") or None

    @property
    def rabbit_password(self) -> str | None:
        """``RABBIT_PASSWORD``, or None when unset."""
        return self._values.get("RABBIT_PASSWORD") or None

    @property
    def enabled_services(self) -> list[str]:
        """``ENABLED_SERVICES`` as a list."""
        return parse_service_list(self._values.get("ENABLED_SERVICES", ""))

    def repo(self, project: str) -> str:
        """``<PROJECT>_REPO``, default ``$GIT_BASE/openstack/<project>.git``."""
        value = self._values.get(f"{_project_prefix(project)}_REPO")
        return value or f"{self.git_base}/openstack/{project}.git"

    def branch(self, project: str) -> str:
        """``<PROJECT>_BRANCH``, default ``TARGET_BRANCH``."""
        return self._values.get(f"{_project_prefix(project)}_BRANCH") or self.target_branch

    # -- reporting -----------------------------------------------------------

    @property
    def user_names(self) -> frozenset[str]:
        """Names of the variables the user set or changed."""
        return self._user

    def user_settings(self) -> dict[str, str]:
        """The variables the user set or changed, name -> value (passwords included)."""
        return {name: value for name, value in self._values.items() if name in self._user}

    def masked(self) -> dict[str, str]:
        """:meth:`user_settings` with every password, secret and token replaced by ``********``."""
        return {
            name: MASK if is_secret(name) else value for name, value in self.user_settings().items()
        }
