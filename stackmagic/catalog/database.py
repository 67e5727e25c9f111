"""The database every OpenStack service keeps its data in (devstack's lib/database).

``DATABASE_TYPE`` picks the backend:

- ``sqlite`` (the default here): no server, one file per database under ``$DATA_DIR/databases``.
- ``mysql``: MariaDB from Debian's ``mariadb-server``. configure writes our own
  ``$DATA_DIR/mysql/my.cnf`` (port ``DATABASE_PORT`` or 3306, bound to ``SERVICE_LISTEN_ADDRESS``,
  socket and pid file in ``$DATA_DIR/mysql``) and initialises ``$DATA_DIR/mysql/data`` with
  ``mariadb-install-db``; the server runs in tmux window ``mysql``.
- ``postgresql``: PostgreSQL from Debian's ``postgresql``. configure runs ``initdb`` into
  ``$DATA_DIR/postgresql/data`` (socket directory ``$DATA_DIR/postgresql``); the server runs in
  tmux window ``postgresql``.

As root the servers run as Debian's ``mysql`` / ``postgres`` users (PostgreSQL refuses root),
otherwise as the current user. Administration goes over the unix socket as the server's own
superuser; services connect over TCP as ``DATABASE_USER`` (default ``root``, as in devstack) with
``DATABASE_PASSWORD``. The password never appears on a command line or in a log: SQL goes to the
client's stdin, and carries only the server's hash of the password.

The project comes when an enabled project declares ``Need("database", ...)``. Projects call ``Database.url(ctx, name)`` in configure and ``Database.create(ctx, name)`` in init.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable
from urllib.parse import quote

from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.system_user import check_reachable
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

BACKENDS = ("sqlite", "mysql", "postgresql")
_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
_SOCKET_MAX = 107                   # sun_path holds 108 bytes, the last one a NUL
_ADMIN_LOCK = threading.Lock()      # PostgreSQL refuses concurrent ALTER ROLE of one role


def backend(ctx: "Context") -> str:
    """``DATABASE_TYPE``, checked."""
    kind = ctx.settings.database_type
    if kind not in BACKENDS:
        raise ConfigError(f"DATABASE_TYPE={kind} is not supported; use one of: {', '.join(BACKENDS)}")
    return kind


class Database(Project):
    """The database project; every call dispatches to the backend ``DATABASE_TYPE`` names."""

    name = "database"
    services = {"mysql": "MariaDB server", "postgresql": "PostgreSQL server"}
    provides = {"database": "start"}        # the server runs (SQLite: its directory exists)
    when_needed = True
    persistent = True                       # a plain unstack keeps the server, as devstack's
    ports = {"DATABASE_PORT": 3306}

    # -- the URLs and databases projects use ----------------------------------------------
    @staticmethod
    def directory(ctx: "Context") -> Path:
        """Where the SQLite backend keeps its database files."""
        return ctx.settings.data_dir / "databases"

    @classmethod
    def url(cls, ctx: "Context", name: str) -> str:
        """The SQLAlchemy URL of database ``name`` (with the password, for config files)."""
        return _impl(ctx).url(ctx, _checked_name(name))

    @classmethod
    def create(cls, ctx: "Context", name: str) -> None:
        """Make sure database ``name`` exists (empty the first time) and the user may use it."""
        _impl(ctx).create(ctx, _checked_name(name))

    @classmethod
    def drop(cls, ctx: "Context", name: str) -> None:
        """Remove database ``name``; nothing to do when the server is not running."""
        _impl(ctx).drop(ctx, _checked_name(name))

    # -- lifecycle ------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        return _impl(ctx).packages

    def install_requirements(self, ctx: "Context") -> list[str]:
        return [*self.requirements, *_impl(ctx).requirements]

    def configure(self, ctx: "Context") -> None:
        _impl(ctx).configure(ctx)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        return _impl(ctx).processes(ctx)

    def cleanup(self, ctx: "Context") -> None:
        """Remove the data of every backend (the servers are stopped before clean calls this)."""
        for impl in _IMPLS.values():
            impl.cleanup(ctx)


def _checked_name(name: str) -> str:
    if not _NAME.match(name):
        raise StackError(f"database name {name!r}: use only letters, digits and _")
    return name


# -- SQLite ----------------------------------------------------------------------------------
class _Sqlite:
    """One file per database; nothing to install or start."""

    packages: ClassVar[tuple[str, ...]] = ()
    requirements: ClassVar[tuple[str, ...]] = ()

    def url(self, ctx: "Context", name: str) -> str:
        # a busy timeout: concurrent writers wait for the lock instead of failing ("database is locked")
        return f"sqlite:///{Database.directory(ctx) / (name + '.sqlite')}?timeout=30"

    def create(self, ctx: "Context", name: str) -> None:
        Database.directory(ctx).mkdir(parents=True, exist_ok=True)

    def drop(self, ctx: "Context", name: str) -> None:
        (Database.directory(ctx) / f"{name}.sqlite").unlink(missing_ok=True)

    def configure(self, ctx: "Context") -> None:
        Database.directory(ctx).mkdir(parents=True, exist_ok=True)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        return ()

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(Database.directory(ctx), ignore_errors=True)


# -- what MariaDB and PostgreSQL share ---------------------------------------------------------
class _Server(ABC):
    """A database server of ours: its directory, address, account and admin connection."""

    service: ClassVar[str]              # tmux window, and directory under DATA_DIR
    system_user: ClassVar[str]          # Debian's account for the server, used when root
    default_port: ClassVar[int]
    scheme: ClassVar[str]
    query: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]
    requirements: ClassVar[tuple[str, ...]]

    def base(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / self.service

    def datadir(self, ctx: "Context") -> Path:
        return self.base(ctx) / "data"

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int("DATABASE_PORT", self.default_port)

    def listen(self, ctx: "Context") -> str:
        return ctx.settings.service_listen

    def run_as(self) -> str | None:
        """The account the server runs as when it is not the current one (we are root)."""
        return self.system_user if os.geteuid() == 0 else None

    def as_user(self) -> list[str]:
        """The argv prefix that runs a program as the server's account."""
        user = self.run_as()
        return [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user, "--"] if user else []

    def url(self, ctx: "Context", name: str) -> str:
        s = ctx.settings
        host = s.get("DATABASE_HOST") or s.service_host
        if ":" in host:
            host = f"[{host}]"
        user, password = quote(_user(ctx), safe=""), quote(_password(ctx), safe="")
        return f"{self.scheme}://{user}:{password}@{host}:{self.port(ctx)}/{name}?{self.query}"

    def create(self, ctx: "Context", name: str) -> None:
        self.admin(ctx, self.account_sql(ctx) + self.create_sql(name))

    def drop(self, ctx: "Context", name: str) -> None:
        if not _accepting(self.socket(ctx)):
            ctx.log(f"{self.service} is not running; database {name} goes with its data directory")
            return
        self.admin(ctx, self.drop_sql(name))

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(self.base(ctx), ignore_errors=True)

    def admin(self, ctx: "Context", sql: str) -> None:
        """Run ``sql`` as the server's superuser over the unix socket (SQL on stdin, not logged)."""
        ctx.log(f"{self.service}: administration over {self.socket(ctx)}")
        with _ADMIN_LOCK:
            ctx.run(*self.admin_argv(ctx), input=sql, cwd=self.base(ctx), timeout=120)

    def prepare_base(self, ctx: "Context") -> Path:
        """Make ``$DATA_DIR/<service>``, owned by the server's account, and check it can be used."""
        base = self.base(ctx)
        sock = self.socket(ctx)
        if len(str(sock)) > _SOCKET_MAX:
            raise ConfigError(
                f"the {self.service} socket {sock} is {len(str(sock))} characters long; unix "
                f"sockets allow {_SOCKET_MAX}. Choose a shorter DATA_DIR.")
        base.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        if user:
            _require_account(user, self.packages[0])
            shutil.chown(base, user, user)
            check_reachable(base, user, "the database server")
        return base

    # -- per backend ---------------------------------------------------------------------------
    @abstractmethod
    def socket(self, ctx: "Context") -> Path:
        """The unix socket the server listens on."""

    @abstractmethod
    def admin_argv(self, ctx: "Context") -> list[str]:
        """The client command that reads SQL on stdin as the superuser, over the socket."""

    @abstractmethod
    def account_sql(self, ctx: "Context") -> str:
        """SQL that makes ``DATABASE_USER`` exist with ``DATABASE_PASSWORD`` (hashed) and all rights."""

    @abstractmethod
    def create_sql(self, name: str) -> str:
        """SQL that creates database ``name`` unless it exists."""

    @abstractmethod
    def drop_sql(self, name: str) -> str:
        """SQL that drops database ``name`` if it exists."""

    @abstractmethod
    def configure(self, ctx: "Context") -> None:
        """Write the server's configuration and initialise its data directory."""

    @abstractmethod
    def processes(self, ctx: "Context") -> Iterable[Process]:
        """The server process, in its own tmux window."""


# -- MariaDB ---------------------------------------------------------------------------------
MARIADBD = "/usr/sbin/mariadbd"
MARIADB = "/usr/bin/mariadb"
MARIADB_INSTALL_DB = "/usr/bin/mariadb-install-db"


class _MariaDB(_Server):
    service = "mysql"
    system_user = "mysql"
    default_port = 3306
    scheme = "mysql+pymysql"
    query = "charset=utf8"
    packages = ("mariadb-server", "mariadb-client")
    requirements = ("PyMySQL",)

    def cnf(self, ctx: "Context") -> Path:
        return self.base(ctx) / "my.cnf"

    def socket(self, ctx: "Context") -> Path:
        return self.base(ctx) / "mysqld.sock"

    def admin_user(self) -> str:
        """The superuser the unix socket lets in: root, or the current user's own account."""
        return "root" if os.geteuid() == 0 else _me()

    def configure(self, ctx: "Context") -> None:
        _require_program(MARIADB_INSTALL_DB, "mariadb-server")
        self.prepare_base(ctx)
        ctx.write_file(self.cnf(ctx), self.cnf_text(ctx))
        datadir = self.datadir(ctx)
        if (datadir / "mysql").is_dir():
            ctx.log(f"MariaDB data directory {datadir} is initialised")
            return
        shutil.rmtree(datadir, ignore_errors=True)          # the rest of an interrupted attempt
        owner = [f"--user={self.system_user}"] if self.run_as() else [f"--auth-root-socket-user={_me()}"]
        try:
            ctx.run(MARIADB_INSTALL_DB, f"--defaults-file={self.cnf(ctx)}", "--skip-test-db",
                    "--auth-root-authentication-method=socket", *owner, cwd=self.base(ctx), timeout=300)
        except BaseException:
            shutil.rmtree(datadir, ignore_errors=True)
            raise

    def cnf_text(self, ctx: "Context") -> str:
        base = self.base(ctx)
        server = {
            "datadir": self.datadir(ctx),
            "socket": self.socket(ctx),
            "pid-file": base / "mysqld.pid",
            "port": self.port(ctx),
            "bind-address": self.listen(ctx),
            "skip-name-resolve": None,
            "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_general_ci",
            "sql_mode": "TRADITIONAL",
            "default-storage-engine": "InnoDB",
            "max_connections": 1024,
        }
        if self.run_as():
            server["user"] = self.system_user
        client = {"socket": self.socket(ctx), "port": self.port(ctx), "user": self.admin_user()}
        lines = ["# Written by stackmagic (catalog/database.py) at each configure: edits are lost."]
        for section, options in (("mysqld", server), ("client", client)):
            lines.append(f"[{section}]")
            lines += [key if value is None else f"{key} = {value}" for key, value in options.items()]
        return "\n".join(lines) + "\n"

    def processes(self, ctx: "Context") -> Iterable[Process]:
        # Health is a query as the superuser over the socket: a probe over TCP before
        # DATABASE_USER exists is refused, and every refusal is a warning in the server's log.
        host, port, cnf = self.listen(ctx), self.port(ctx), self.cnf(ctx)
        query = (*self.admin_argv(ctx), "--skip-column-names", "--connect-timeout=2",
                 "--execute=SELECT VERSION()")
        yield Process(self.service, [MARIADBD, f"--defaults-file={cnf}"], cwd=self.base(ctx),
                      health=CommandCheck(tuple(query)), endpoint=f"mysql://{host}:{port}",
                      host=host, port=port, timeout=60)

    def admin_argv(self, ctx: "Context") -> list[str]:
        return [MARIADB, f"--defaults-file={self.cnf(ctx)}", "--protocol=SOCKET", "--batch"]

    def account_sql(self, ctx: "Context") -> str:
        host = "127.0.0.1" if self.listen(ctx) == "127.0.0.1" else "%"
        account = f"'{_user(ctx)}'@'{host}'"
        hashed = _mysql_native_hash(_password(ctx))
        return (f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY PASSWORD '{hashed}';\n"
                f"ALTER USER {account} IDENTIFIED BY PASSWORD '{hashed}';\n"
                f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;\n")

    def create_sql(self, name: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n"

    def drop_sql(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS `{name}`;\n"


# -- PostgreSQL ------------------------------------------------------------------------------
PG_ROOT = Path("/usr/lib/postgresql")


class _PostgreSQL(_Server):
    service = "postgresql"
    system_user = "postgres"
    default_port = 5432
    scheme = "postgresql+psycopg2"
    query = "client_encoding=utf8"
    packages = ("postgresql",)
    requirements = ("psycopg2-binary",)
    max_connections = 200               # devstack's MAX_DB_CONNECTIONS

    def bindir(self, ctx: "Context") -> Path:
        """A link to the newest installed version's programs, made by configure.

        The plan is made before the packages step installs PostgreSQL, so the start command
        cannot name the versioned directory itself.
        """
        return self.base(ctx) / "bin"

    def socket(self, ctx: "Context") -> Path:
        return self.base(ctx) / f".s.PGSQL.{self.port(ctx)}"

    def configure(self, ctx: "Context") -> None:
        programs = _pg_programs()
        base = self.prepare_base(ctx)
        link = self.bindir(ctx)
        if not link.is_symlink() or Path(os.readlink(link)) != programs:
            link.unlink(missing_ok=True)
            link.symlink_to(programs)
        datadir = self.datadir(ctx)
        if not (datadir / "PG_VERSION").exists():
            shutil.rmtree(datadir, ignore_errors=True)      # the rest of an interrupted attempt
            try:
                ctx.run(*self.as_user(), programs / "initdb", "-D", datadir, "-E", "UTF8",
                        "--locale=C", "--auth-local=peer", "--auth-host=scram-sha-256",
                        cwd=base, timeout=300)
            except BaseException:
                shutil.rmtree(datadir, ignore_errors=True)
                raise
        hba = datadir / "pg_hba.conf"
        ctx.write_file(hba, "# Written by stackmagic (catalog/database.py) at each configure.\n"
                            "local all all peer\n"
                            "host all all 127.0.0.1/32 scram-sha-256\n"
                            "host all all ::1/128 scram-sha-256\n"
                            "host all all samehost scram-sha-256\n", mode=0o600)
        if self.run_as():
            shutil.chown(hba, self.system_user, self.system_user)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        host, port, bindir = self.listen(ctx), self.port(ctx), self.bindir(ctx)
        argv = [*self.as_user(), str(bindir / "postgres"), "-D", str(self.datadir(ctx)),
                "-c", f"listen_addresses={host}", "-p", str(port), "-k", str(self.base(ctx)),
                "-c", f"max_connections={self.max_connections}"]
        ready = (str(bindir / "pg_isready"), "-h", host, "-p", str(port), "-t", "2")
        yield Process(self.service, argv, cwd=self.base(ctx), health=CommandCheck(ready),
                      endpoint=f"postgresql://{host}:{port}", host=host, port=port, timeout=60)

    def admin_argv(self, ctx: "Context") -> list[str]:
        return [*self.as_user(), str(self.bindir(ctx) / "psql"), "-h", str(self.base(ctx)),
                "-p", str(self.port(ctx)), "-d", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"]

    def account_sql(self, ctx: "Context") -> str:
        user = _user(ctx)
        verifier = _scram_sha256(_password(ctx))
        return (f"SELECT 'CREATE ROLE \"{user}\"' WHERE NOT EXISTS "
                f"(SELECT FROM pg_roles WHERE rolname = '{user}')\\gexec\n"
                f"ALTER ROLE \"{user}\" WITH SUPERUSER LOGIN PASSWORD '{verifier}';\n")

    def create_sql(self, name: str) -> str:
        return (f"SELECT 'CREATE DATABASE \"{name}\" ENCODING ''UTF8'' TEMPLATE template0' "
                f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n")

    def drop_sql(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS \"{name}\";\n"


_IMPLS: dict[str, _Sqlite | _Server] = {"sqlite": _Sqlite(), "mysql": _MariaDB(), "postgresql": _PostgreSQL()}


def _impl(ctx: "Context") -> _Sqlite | _Server:
    return _IMPLS[backend(ctx)]


# -- settings --------------------------------------------------------------------------------
def _user(ctx: "Context") -> str:
    user = ctx.settings.get("DATABASE_USER") or "root"
    if not _NAME.match(user):
        raise ConfigError(f"DATABASE_USER={user!r}: use only letters, digits and _")
    return user


def _password(ctx: "Context") -> str:
    password = ctx.settings.database_password
    if not password:
        raise ConfigError("DATABASE_PASSWORD is empty; set it, or leave it unset to have one generated")
    return password


# -- password hashes: the servers store these, so the password itself never reaches them ------
def _mysql_native_hash(password: str) -> str:
    """MariaDB's mysql_native_password hash: ``*`` + upper-case hex SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _scram_sha256(password: str, iterations: int = 4096) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier (RFC 5802/7677) for ``password``."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    salt64, stored64, server64 = (base64.b64encode(b).decode() for b in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt64}${stored64}:{server64}"


# -- the machine -----------------------------------------------------------------------------
def _me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _accepting(path: Path) -> bool:
    """Whether a server answers on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _require_program(path: str, package: str) -> None:
    if not Path(path).exists():
        raise StackError(f"{path} is missing: install Debian's {package} (apt-get install -y {package})")


def _require_account(user: str, package: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise StackError(f"there is no system user {user!r}; Debian's {package} makes it: "
                         f"apt-get install -y {package}") from None


def _pg_programs() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``."""
    found = [d / "bin" for d in PG_ROOT.glob("*") if (d / "bin" / "initdb").exists()]
    if not found:
        raise StackError(f"PostgreSQL is not installed (no {PG_ROOT}/<version>/bin/initdb): "
                         "apt-get install -y postgresql")
    return max(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])


