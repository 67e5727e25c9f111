"""Swift, the Object Storage service, as devstack's lib/swift sets it up.

Services (devstack's names): ``s-proxy`` (swift-proxy-server on SWIFT_DEFAULT_BIND_PORT, 8080;
the ``object-store`` endpoint is ``http://SERVICE_HOST:8080/v1/AUTH_$(project_id)s``),
``s-object``, ``s-container`` and ``s-account`` (the storage servers on OBJECT_PORT_BASE 6613,
CONTAINER_PORT_BASE 6611 and ACCOUNT_PORT_BASE 6612), each ``swift-*-server <conf> -v`` in its
tmux window, its log on the window's output (``-v``; there is no syslog here). The group name
``swift`` enables all four, as in devstack, and ``s-container-sync`` (swift-container-sync, which
devstack always starts; here when enabled, by name or by the group name).

configure (devstack's configure_swift): the sample configs of the source tree's ``etc/``
copied into SWIFT_CONF_DIR and edited: proxy-server.conf with devstack's pipeline (crossdomain,
authtoken and keystoneauth before tempauth, then formpost and staticweb), keystonemiddleware in
``[filter:authtoken]``, ``operator_roles = Member, admin``, the proxy's memcache on the stack's
memcached; ``{object,container,account}-server/1.conf`` on their ports with ``mount_check =
false``; swift.conf with ``swift_hash_path_suffix = SWIFT_HASH`` (generated once and kept like a
password, :mod:`stackmagic.passwords`; never shown), the constraints and the second storage
policy ``silver``. Every file is passed to swift as a path (``swift_dir``): nothing goes to
``/etc/swift``.

init (create_swift_disk, init_swift): the drive and the rings. Where root, loop devices and XFS
(else ext4) are here, the drive is devstack's: a sparse image of SWIFT_LOOPBACK_DISK_SIZE
(``$SWIFT_DATA_DIR/drives/images/swift.img``) with a filesystem, loop-mounted at
``$SWIFT_DATA_DIR/drives/sdb1``; elsewhere that is a plain directory. ``plan`` says which and
why; ``SWIFT_USE_LOOPBACK=True|False`` decides instead of the probe. Then the three rings
(``swift-ring-builder``, part power SWIFT_PARTITION_POWER_SIZE, SWIFT_REPLICAS replicas, seed
42) in SWIFT_CONF_DIR. devstack emulates one storage node per replica, each with its own three
servers on ports 10 apart; here one node holds SWIFT_REPLICAS devices (``sdb1`` ... in zones
1 ...), one server of each kind serving them all: the same copies in fewer processes.

accounts (create_swift_accounts): the swift service user (admin, service), the object-store
service, its public (``/v1/AUTH_$(project_id)s``) and admin endpoints; the ResellerAdmin role
(Keystone's accounts make it too; Nova gets it when Swift is enabled).

Health: s-proxy answers ``/info`` (devstack's wait_for_service), the storage servers their
recon ``/recon/version``. ``unstack`` unmounts and detaches exactly what init recorded
(``$DATA_DIR/stackmagic/swift-disk.json``); ``clean`` also removes the image, the rings and
SWIFT_DATA_DIR. Not run (devstack runs them): the replicators, auditors, updaters, reaper and
expirer (SWIFT_START_ALL_SERVICES), rsync, s3api, Apache.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity, ini
from stackmagic.catalog import loopback, memcached
from stackmagic.catalog.api_service import configure_authtoken
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import HttpCheck
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context

#: The storage servers: service -> (kind, port setting, devstack's port base).
STORAGE = {"s-object": ("object", "OBJECT_PORT_BASE", 6613),
           "s-container": ("container", "CONTAINER_PORT_BASE", 6611),
           "s-account": ("account", "ACCOUNT_PORT_BASE", 6612)}
PROXY_PORT = 8080
#: mkfs refuses an XFS smaller than 300 MiB (xfsprogs 5.19 and later); ext4 needs little
MIN_SIZE = {"xfs": 300 * loopback.MIB, "ext4": 16 * loopback.MIB}
#: devstack's create_disk: bigger inodes, so that Swift's metadata xattrs fit in one
MKFS = {"xfs": ["mkfs.xfs", "-q", "-f", "-i", "size=1024"],
        "ext4": ["mkfs.ext4", "-q", "-F", "-m", "0", "-I", "1024", "-E", "lazy_journal_init=1"]}
MOUNT_OPTIONS = {"xfs": "noatime,nodiratime,logbufs=8", "ext4": "noatime,nodiratime"}
FS_PACKAGES = {"xfs": "xfsprogs", "ext4": "e2fsprogs"}
DEVICE = "sdb"                      # devstack's device name: sdb1, sdb2 ...
#: What each server's shim imports its main() from
SERVERS = {"proxy": "swift.proxy.server", "object": "swift.obj.server",
           "container": "swift.container.server", "account": "swift.account.server",
           "container-sync": "swift.container.sync"}
#: Swift reads its storage policies and constraints from /etc/swift/swift.conf when its modules
#: are imported; the servers' ``swift_dir`` (set_swift_dir) re-reads only the hash. devstack
#: links /etc/swift to its config for that; stackmagic starts each server through this shim,
#: which points Swift at SWIFT_CONF_DIR first, so that stacks side by side keep their own.
SHIM = """\"\"\"Written by stackmagic: run one Swift server (argv[1]) with swift.conf from {conf_dir!r}.\"\"\"
import importlib
import sys

from swift.common import utils

utils.set_swift_dir({conf_dir!r})
from swift.common import constraints, storage_policy  # noqa: E402

constraints.reload_constraints()
storage_policy.reload_storage_policies()
module = {servers!r}[sys.argv.pop(1)]
sys.exit(importlib.import_module(module).main())
"""
RING_SEED = "42"                    # devstack's: the same ring on every node


@dataclass(frozen=True)
class Drive:
    """Where the objects live: ``fs`` (xfs, ext4) on a loop-mounted image, or None for a plain
    directory; ``why`` the probe's (or the setting's) reason."""

    fs: str | None
    why: str


def discoverable(apis: str, disabled: list[str]) -> str:
    """lib/tempest's remove_disabled_extensions: the comma-separated ``apis`` without ``disabled``."""
    return ",".join(a for a in (x.strip() for x in apis.split(",")) if a and a not in disabled)


class Swift(Project):
    name = "swift"
    group = "swift"
    services = {
        "s-proxy": "Object Storage proxy server",
        "s-object": "Object Storage object server",
        "s-container": "Object Storage container server",
        "s-account": "Object Storage account server",
        "s-container-sync": "Object Storage container sync daemon",
    }
    repo = "openstack/swift"
    pypi = "swift"
    # setup_develop $SWIFT_DIR keystone: the [keystone] extra is keystonemiddleware
    requirements = ("keystonemiddleware", "openstacksdk")
    # without Keystone the proxy runs with tempauth alone (devstack's pipeline without it)
    requires = (Need("identity", before="accounts", optional=True),
                Need("cache", before="start", optional=True))
    ports = {"SWIFT_DEFAULT_BIND_PORT": PROXY_PORT,
             **{setting: port for _, setting, port in STORAGE.values()}}

    # -- settings -------------------------------------------------------------------------
    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.path("SWIFT_DATA_DIR", ctx.settings.data_dir / "swift")

    def conf_dir(self, ctx: "Context") -> Path:
        return ctx.settings.path("SWIFT_CONF_DIR", ctx.conf_dir("swift"))

    def config_files(self, ctx: "Context") -> list[Path]:
        conf = self.conf_dir(ctx)
        return [conf / "proxy-server.conf", conf / "swift.conf",
                *(conf / f"{kind}-server" / "1.conf" for kind, _, _ in STORAGE.values())]

    def proxy_port(self, ctx: "Context") -> int:
        return ctx.settings.int("SWIFT_DEFAULT_BIND_PORT", PROXY_PORT)

    def port(self, ctx: "Context", service: str) -> int:
        _, setting, default = STORAGE[service]
        return ctx.settings.int(setting, default)

    def replicas(self, ctx: "Context") -> int:
        return _whole(ctx, "SWIFT_REPLICAS", 1, least=1, most=None,
                      hint="devstack's default is 1; each replica is one more device in the rings")

    def part_power(self, ctx: "Context") -> int:
        return _whole(ctx, "SWIFT_PARTITION_POWER_SIZE", 9, least=1, most=32,
                      hint="devstack's default is 9 (512 partitions)")

    def disk_size_text(self, ctx: "Context") -> str:
        """SWIFT_LOOPBACK_DISK_SIZE, or devstack's default: 6G with tempest, 2G with Glance, 1G."""
        cfg = ctx.config
        default = "6G" if cfg.is_service_enabled("tempest") else "2G" if cfg.is_service_enabled("g-api") else "1G"
        return (ctx.settings.get("SWIFT_LOOPBACK_DISK_SIZE") or "").strip() or default

    def disk_size(self, ctx: "Context") -> int:
        return loopback.parse_size(self.disk_size_text(ctx), "SWIFT_LOOPBACK_DISK_SIZE", "1G")

    def max_file_size(self, ctx: "Context") -> int:
        cfg = ctx.config
        default = (5368709122 if cfg.is_service_enabled("tempest") else
                   1073741824 if cfg.is_service_enabled("g-api") else 536870912)
        return _whole(ctx, "SWIFT_MAX_FILE_SIZE", default, least=1, most=None,
                      hint="devstack's default is 536870912 (512M)")

    def drive(self, ctx: "Context") -> Drive:
        """The probe's choice, or SWIFT_USE_LOOPBACK's."""
        fs, why = loopback.probe(("xfs", "ext4"))
        wanted = ctx.settings.bool("SWIFT_USE_LOOPBACK", None)  # type: ignore[arg-type]
        if wanted is False:
            return Drive(None, "SWIFT_USE_LOOPBACK=False")
        if wanted and fs is None:
            raise ConfigError(f"SWIFT_USE_LOOPBACK=True, but a loop-mounted image cannot work "
                              f"here: {why}. Leave it unset (a plain directory is used) or set "
                              "it to False")
        return Drive(fs, why)

    def _check(self, ctx: "Context") -> Drive:
        """Everything refused before anything is built; the drive it will be."""
        self.replicas(ctx)
        self.part_power(ctx)
        self.max_file_size(ctx)
        for name in ("SWIFT_DEFAULT_BIND_PORT", *(s for _, s, _ in STORAGE.values())):
            port = ctx.settings.int(name, self.ports[name])
            if not 1 <= port <= 65535:
                raise ConfigError(f"{name}={port} is out of range; a port is a whole number from 1 to 65535")
        size = self.disk_size(ctx)
        drive = self.drive(ctx)
        if drive.fs is not None and size < MIN_SIZE[drive.fs]:
            least = MIN_SIZE[drive.fs] // loopback.MIB
            raise ConfigError(
                f"SWIFT_LOOPBACK_DISK_SIZE={self.disk_size_text(ctx)} is too small for the {drive.fs} "
                f"filesystem of Swift's drive: the smallest that works is {least}M (devstack's "
                "default is 1G, 2G with Glance, 6G with tempest; the image is sparse)")
        return drive

    # -- where things are -------------------------------------------------------------------
    def image(self, ctx: "Context") -> Path:
        """devstack's SWIFT_DISK_IMAGE."""
        return self.data_dir(ctx) / "drives" / "images" / "swift.img"

    def mount_point(self, ctx: "Context") -> Path:
        return self.data_dir(ctx) / "drives" / f"{DEVICE}1"

    def devices(self, ctx: "Context") -> Path:
        """The storage servers' ``devices``: node 1's directory, a link into the drive."""
        return self.data_dir(ctx) / "1"

    def device_names(self, ctx: "Context") -> list[str]:
        return [f"{DEVICE}{n}" for n in range(1, self.replicas(ctx) + 1)]

    def shim(self, ctx: "Context") -> Path:
        return self.conf_dir(ctx) / "swift_server.py"

    def server_argv(self, ctx: "Context", kind: str, conf: Path) -> list[str]:
        """``swift-<kind>-server <conf> -v``, through the shim (see :data:`SHIM`)."""
        return [str(ctx.venv.python), str(self.shim(ctx)), kind, str(conf), "-v"]

    def record(self, ctx: "Context") -> loopback.Record:
        return loopback.Record(ctx.stack_dir / "swift-disk.json")

    def plan_notes(self, ctx: "Context") -> list[str]:
        try:
            drive = self._check(ctx)
            rings = (f"rings of 2^{self.part_power(ctx)} partitions, {self.replicas(ctx)} "
                     f"replica(s) on {self.replicas(ctx)} device(s)")
        except ConfigError as err:
            return [f"swift: {err}"]
        if drive.fs is None:
            return [f"swift: objects in a plain directory, {self.mount_point(ctx)} ({rings}), "
                    f"because {drive.why}"]
        return [f"swift: a {self.disk_size_text(ctx)} sparse {drive.fs} image loop-mounted at "
                f"{self.mount_point(ctx)} ({rings}), because {drive.why}"]

    # -- lifecycle ------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        drive = self._check(ctx)
        return (FS_PACKAGES[drive.fs],) if drive.fs else ()

    def configure(self, ctx: "Context") -> None:
        """devstack's configure_swift."""
        self._check(ctx)
        s = ctx.settings
        conf, data = self.conf_dir(ctx), self.data_dir(ctx)
        if not s.get("SWIFT_HASH"):
            raise StackError("SWIFT_HASH is not set: run `stackmagic stack` (it generates and "
                             "keeps one), or set it in the localrc")
        src = self.source_dir(ctx) / "etc"
        for sample, name in (("proxy-server.conf-sample", "proxy-server.conf"),
                             ("internal-client.conf-sample", "internal-client.conf"),
                             ("container-sync-realms.conf-sample", "container-sync-realms.conf"),
                             ("swift.conf-sample", "swift.conf"),
                             *((f"{k}-server.conf-sample", f"{k}-server/1.conf") for k, _, _ in STORAGE.values())):
            ctx.write_file(conf / name, (src / sample).read_text(), mode=0o600)
        listen = s.get("SWIFT_SERVICE_LISTEN_ADDRESS") or s.get("SERVICE_LISTEN_ADDRESS") or s.service_host
        user = getpass.getuser()          # the services run as this account (devstack's STACK_USER)
        ctx.write_file(self.shim(ctx), SHIM.format(conf_dir=str(conf), servers=SERVERS))
        set_ = lambda path, section, key, value: ctx.iniset(  # noqa: E731
            path, section, key, (plain_value if path.name == "swift.conf" else paste_value)(value),
            raw=True)
        proxy_url = f"http://{s.service_host}:{self.proxy_port(ctx)}"
        set_(conf / "container-sync-realms.conf", "realm1", "key", "realm1key")
        set_(conf / "container-sync-realms.conf", "realm1", "cluster_name1", f"{proxy_url}/v1/")
        self._configure_proxy(ctx, conf / "proxy-server.conf", listen, user, set_)
        # the internal client container-sync reads through: its rings and memcache are ours
        set_(conf / "internal-client.conf", "DEFAULT", "swift_dir", conf)
        if memcached.servers(ctx):
            set_(conf / "internal-client.conf", "filter:cache", "memcache_servers", memcached.servers(ctx))

        swift_conf = conf / "swift.conf"
        set_(swift_conf, "swift-hash", "swift_hash_path_suffix", s.get("SWIFT_HASH"))
        set_(swift_conf, "swift-constraints", "max_header_size", s.int("SWIFT_MAX_HEADER_SIZE", 16384))
        set_(swift_conf, "swift-constraints", "max_file_size", self.max_file_size(ctx))
        set_(swift_conf, "storage-policy:1", "name", "silver")

        for service, (kind, _, _) in STORAGE.items():
            node = conf / f"{kind}-server" / "1.conf"
            for section, key, value in (
                    ("DEFAULT", "user", user), ("DEFAULT", "bind_ip", listen),
                    ("DEFAULT", "bind_port", self.port(ctx, service)), ("DEFAULT", "swift_dir", conf),
                    ("DEFAULT", "devices", self.devices(ctx)), ("DEFAULT", "log_facility", "LOG_LOCAL0"),
                    ("DEFAULT", "workers", s.api_workers), ("DEFAULT", "disable_fallocate", True),
                    ("DEFAULT", "mount_check", False),
                    (f"{kind}-replicator", "rsync_module", f"{{replication_ip}}::{kind}{{replication_port}}"),
                    ("filter:recon", "recon_cache_path", data / "cache")):
                set_(node, section, key, value)
            if kind == "container":
                set_(node, "container-sync", "internal_client_conf_path", conf / "internal-client.conf")
        for sub in ("cache", "run", "logs"):
            (data / sub).mkdir(parents=True, exist_ok=True)

    def _configure_proxy(self, ctx: "Context", proxy: Path, listen: str, user: str, set_) -> None:
        s, cfg = ctx.settings, ctx.config
        keystone = cfg.is_service_enabled("key")
        for section, key, value in (
                ("DEFAULT", "user", user), ("DEFAULT", "swift_dir", self.conf_dir(ctx)),
                ("DEFAULT", "workers", 1), ("DEFAULT", "log_level", "DEBUG"),
                ("DEFAULT", "bind_ip", listen), ("DEFAULT", "bind_port", self.proxy_port(ctx)),
                # devstack: small slow machines, so longer timeouts
                ("app:proxy-server", "node_timeout", 120), ("app:proxy-server", "conn_timeout", 20),
                ("app:proxy-server", "account_autocreate", True),
                ("app:proxy-server", "allow_account_management", True),
                ("filter:versioned_writes", "allow_versioned_writes", True),
                ("filter:proxy-logging", "reveal_sensitive_prefix", s.int("SWIFT_LOG_TOKEN_LENGTH", 12)),
                ("filter:crossdomain", "use", "egg:swift#crossdomain"),
                ("filter:tempauth", "reseller_prefix", "TEMPAUTH"),
                ("filter:domain_remap", "reseller_prefixes", "AUTH, TEMPAUTH")):
            set_(proxy, section, key, value)
        if s.bool("SWIFT_ENABLE_TEMPURLS", False):
            set_(proxy, "filter:tempurl", "allowed_digests", "sha1 sha256 sha512")
        cache = memcached.servers(ctx)
        if cache:
            set_(proxy, "filter:cache", "memcache_servers", cache)
        if keystone:
            set_(proxy, "filter:authtoken", "log_name", "swift")
            set_(proxy, "filter:authtoken", "paste.filter_factory", "keystonemiddleware.auth_token:filter_factory")
            configure_authtoken(ctx, proxy, "swift", section="filter:authtoken", raw=paste_value)
            set_(proxy, "filter:authtoken", "delay_auth_decision", 1)
            set_(proxy, "filter:authtoken", "cache", "swift.cache")
            set_(proxy, "filter:authtoken", "include_service_catalog", False)
            set_(proxy, "filter:keystoneauth", "use", "egg:swift#keystoneauth")
            set_(proxy, "filter:keystoneauth", "operator_roles", "Member, admin")
        pipeline = ini.iniget(proxy, "pipeline:main", "pipeline") or ""
        set_(proxy, "pipeline:main", "pipeline", self.pipeline(ctx, pipeline))

    def pipeline(self, ctx: "Context", sample: str) -> str:
        """devstack's edit of the sample's pipeline: its middleware around tempauth, and
        SWIFT_EXTRAS_MIDDLEWARE_LAST before the proxy."""
        s = ctx.settings
        words = (s.get("SWIFT_EXTRAS_MIDDLEWARE_NO_AUTH", "crossdomain") or "").split()
        if ctx.config.is_service_enabled("key"):
            words += ["authtoken", "keystoneauth"]
        words += ["tempauth", *(s.get("SWIFT_EXTRAS_MIDDLEWARE", "formpost staticweb") or "").split()]
        last = (s.get("SWIFT_EXTRAS_MIDDLEWARE_LAST") or "").split()
        out: list[str] = []
        for word in sample.split():
            out += words if word == "tempauth" else [*last, word] if word == "proxy-server" else [word]
        return " ".join(out)

    def init(self, ctx: "Context") -> None:
        """devstack's init_swift (create_swift_disk, then the rings)."""
        drive = self._check(ctx)
        self.make_drive(ctx, drive)
        self.make_rings(ctx)

    def make_drive(self, ctx: "Context", drive: Drive) -> None:
        mount = self.mount_point(ctx)
        if drive.fs is not None:
            record = self.record(ctx)
            image = loopback.make_file(ctx, self.image(ctx), self.disk_size(ctx),
                                       "SWIFT_LOOPBACK_DISK_SIZE", MKFS[drive.fs])
            device = loopback.attach(ctx, record, image)
            loopback.mount(ctx, record, mount, "-t", drive.fs, "-o", MOUNT_OPTIONS[drive.fs], device)
            ctx.log(f"swift's drive: {image} ({drive.fs}) on {device}, mounted at {mount}")
        else:
            mount.mkdir(parents=True, exist_ok=True)
            _check_xattrs(mount)
            ctx.log(f"swift's drive: the plain directory {mount} ({drive.why})")
        node = mount / "1"
        for name in self.device_names(ctx):
            (node / name).mkdir(parents=True, exist_ok=True)
        link = self.devices(ctx)
        if not (link.is_symlink() and os.readlink(link) == str(node)):
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.exists():
                raise StackError(f"{link} is a directory, not the link to {node} stackmagic makes; "
                                 "move it away (stackmagic clean removes SWIFT_DATA_DIR)")
            link.symlink_to(node)

    def make_rings(self, ctx: "Context") -> None:
        """The account, container and object rings: one node, a device per replica (each in its
        own zone), rebalanced with devstack's seed; object-1 for the silver policy."""
        conf, host = self.conf_dir(ctx), ctx.settings.get("SWIFT_SERVICE_LOCAL_HOST") or ctx.settings.service_host
        builder = ctx.venv.bin("swift-ring-builder")
        power, replicas = self.part_power(ctx), self.replicas(ctx)
        for pattern in ("*.builder", "*.ring.gz", "backups/*.builder", "backups/*.ring.gz"):
            for old in conf.glob(pattern):
                old.unlink()
        ports = {service: self.port(ctx, service) for service in STORAGE}
        names = self.device_names(ctx)

        def build(service: str) -> None:
            kind = STORAGE[service][0]
            path = conf / f"{kind}.builder"
            add = [word for zone, name in enumerate(names, start=1)       # z1-host:port/sdb1 1 ...
                   for word in (f"z{zone}-{host}:{ports[service]}/{name}", "1")]
            ctx.run(builder, path, "create", power, replicas, 1, cwd=conf, timeout=120)
            ctx.run(builder, path, "add", *add, cwd=conf, timeout=120)
            out = ctx.run(builder, path, "rebalance", RING_SEED, cwd=conf, timeout=300, check=False)
            if not (conf / f"{kind}.ring.gz").is_file():     # exit 1 is a warning (balance)
                raise StackError(f"swift-ring-builder made no {kind} ring: {out.strip()[-300:]}")

        with ThreadPoolExecutor(len(STORAGE)) as pool:      # the three rings side by side
            for done in [pool.submit(build, service) for service in STORAGE]:
                done.result()
        shutil.copyfile(conf / "object.ring.gz", conf / "object-1.ring.gz")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        """devstack's start_swift with one replica: the storage servers, then the proxy."""
        self._check(ctx)
        s, cfg, conf = ctx.settings, ctx.config, self.conf_dir(ctx)
        listen = s.get("SWIFT_SERVICE_LISTEN_ADDRESS") or s.get("SERVICE_LISTEN_ADDRESS") or s.service_host
        host = s.service_host
        for service, (kind, _, _) in STORAGE.items():
            if cfg.is_service_enabled(service):
                port = self.port(ctx, service)
                yield Process(service, self.server_argv(ctx, kind, conf / f"{kind}-server" / "1.conf"),
                              cwd=self.data_dir(ctx), health=HttpCheck(f"http://{host}:{port}/recon/version"),
                              endpoint=f"http://{host}:{port}", host=listen, port=port)
        if cfg.is_service_enabled("s-proxy"):
            port = self.proxy_port(ctx)
            yield Process("s-proxy", self.server_argv(ctx, "proxy", conf / "proxy-server.conf"),
                          cwd=self.data_dir(ctx), health=HttpCheck(f"http://{host}:{port}/info"),
                          endpoint=f"http://{host}:{port}", host=listen, port=port,
                          after=tuple(x for x in STORAGE if cfg.is_service_enabled(x)),
                          timeout=s.int("SERVICE_TIMEOUT", 60) + 30)
        if cfg.is_service_enabled("s-container-sync"):
            # devstack starts it with the other daemons; here it runs when enabled by name. It
            # has no port: healthy while it runs
            yield Process("s-container-sync",
                          self.server_argv(ctx, "container-sync", conf / "container-server" / "1.conf"),
                          cwd=self.data_dir(ctx),
                          after=tuple(x for x in ("s-container", "s-proxy") if cfg.is_service_enabled(x)))

    def accounts(self, ctx: "Context") -> None:
        """devstack's create_swift_accounts (without the functional tests' users)."""
        if not (ctx.config.is_service_enabled("s-proxy") and ctx.config.is_service_enabled("key")):
            return
        base, region = ctx.url(self.proxy_port(ctx)), ctx.settings.region_name
        ops = [{"op": "role", "name": "ResellerAdmin"}, *identity.service_user(ctx, "swift"),
               {"op": "service", "name": "swift", "type": "object-store", "description": "Swift Service"},
               {"op": "endpoint", "service": "swift", "interface": "public",
                "url": f"{base}/v1/AUTH_$(project_id)s", "region": region},
               {"op": "endpoint", "service": "swift", "interface": "admin", "url": base, "region": region}]
        identity.apply(ctx, ops)

    # -- checks ----------------------------------------------------------------------------
    def verify_checks(self, ctx: "Context") -> list[Listing]:
        if not ctx.config.is_service_enabled("s-proxy"):
            return []
        return [Listing("containers", "object_store.containers", ("name", "count", "bytes"),
                        show="{name} ({count} objects, {bytes} bytes)")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """lib/tempest's object storage part (service_available is tempest's own).

        ``discoverable_apis`` is OBJECT_STORAGE_API_EXTENSIONS, else ``all``; with extensions to
        leave out (DISABLE_OBJECT_STORAGE_API_EXTENSIONS, and ``container_sync`` when
        swift-container-sync does not run: devstack always runs it), it is what the running
        proxy's ``/info`` lists without them, as lib/tempest asks the endpoint. Tempest decides
        whether to run a middleware's tests from this list alone (its ``container_sync`` flag
        does not stop the container-sync middleware test, which would wait ten minutes for a
        sync no daemon makes)."""
        cfg, s = ctx.config, ctx.settings
        if not cfg.is_service_enabled("s-proxy"):
            return []
        syncing = cfg.is_service_enabled("s-container-sync")
        disabled = (s.get("DISABLE_OBJECT_STORAGE_API_EXTENSIONS") or "").replace(",", " ").split()
        apis = s.get("OBJECT_STORAGE_API_EXTENSIONS") or "all"
        if disabled or not syncing:
            if apis == "all":
                apis = ",".join(self.capabilities(ctx))
            apis = discoverable(apis, [*disabled, *([] if syncing else ["container_sync"])])
        return [("object-storage-feature-enabled", "discoverable_apis", apis),
                ("object-storage-feature-enabled", "container_sync", "true" if syncing else "false")]

    def capabilities(self, ctx: "Context") -> list[str]:
        """What the running proxy's ``/info`` says it has (its middleware), ``swift`` left out."""
        from stackmagic.catalog.tempest import json_get

        info = json_get(ctx.url(self.proxy_port(ctx), "/info"), "s-proxy",
                        purpose=": Swift's proxy lists its capabilities there, and tempest.conf "
                                "names the ones Tempest may test")
        return sorted(k for k in info if k != "swift")

    # -- unstack and clean -------------------------------------------------------------------
    def unstack(self, ctx: "Context") -> None:
        """Unmount and detach what init recorded (the servers have stopped); the next stack's
        init mounts it again."""
        undone = loopback.release(ctx, self.record(ctx))
        for line in undone:
            ctx.log(line)
        if undone:
            ctx.state.forget_steps(lambda sid: sid == f"init {self.name}")

    def cleanup(self, ctx: "Context") -> None:
        """devstack's cleanup_swift: the rings, the drive and its image, SWIFT_DATA_DIR, the config."""
        loopback.release(ctx, self.record(ctx))
        if self.record(ctx).mounts:
            ctx.warn(f"kept {self.data_dir(ctx)}: something there is still mounted (see above)")
            return
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)
        shutil.rmtree(self.conf_dir(ctx), ignore_errors=True)


def paste_value(value: object) -> str:
    """``value`` as Swift's readers of its server configs (its paste loader, ``readconf``) must
    find it: they interpolate only a value holding ``%(``, and then every ``%`` needs doubling."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text.replace("%", "%%") if "%(" in text else text


def plain_value(value: object) -> str:
    """``value`` for swift.conf, which Swift reads with configparser's own interpolation
    (``%`` doubled, always)."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text.replace("%", "%%")


def _whole(ctx: "Context", name: str, default: int, *, least: int, most: int | None, hint: str) -> int:
    """A whole-number setting within [least, most], refused with what to write otherwise."""
    text = (ctx.settings.get(name) or "").strip()
    if not text:
        return default
    bounds = f"from {least} to {most}" if most is not None else f"{least} or more"
    if not re.fullmatch(r"[+-]?\d+", text) or not (least <= int(text) and (most is None or int(text) <= most)):
        raise ConfigError(f"{name}={text!r} is not a whole number {bounds}; {hint}")
    return int(text)


def _check_xattrs(directory: Path) -> None:
    """Swift keeps each object's metadata in user xattrs: refuse a filesystem without them."""
    probe = directory / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.swift.probe", b"x" * 1024)
    except OSError as err:
        raise StackError(f"{directory} is on a filesystem without user xattrs ({err.strerror}), "
                         "where Swift keeps object metadata: put SWIFT_DATA_DIR on ext4 or XFS, or "
                         "run stack as root for a loop-mounted image") from None
    finally:
        probe.unlink(missing_ok=True)
