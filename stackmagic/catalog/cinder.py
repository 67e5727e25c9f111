"""Cinder, the Block Storage service, as devstack's lib/cinder sets it up.

Services (devstack's names): ``c-api`` (``cinder.wsgi.api:application`` under gunicorn on
CINDER_SERVICE_PORT, 8776; the ``block-storage`` endpoint is ``http://SERVICE_HOST:8776/v3``,
devstack's address when it runs the API without Apache), ``c-sch`` (cinder-scheduler),
``c-vol`` (cinder-volume) and ``c-bak`` (cinder-backup), each with cinder.conf.

Where the volumes live is :mod:`stackmagic.catalog.cinder_backends`: devstack's LVM volume
group on a loop-mounted backing file where device-mapper and LIO are here, else Cinder's NFS
driver over an ext4 filesystem in the same kind of backing file, mounted by stackmagic where the
driver and Nova look for the share. ``plan`` says which and why in one line.
``VOLUME_BACKING_FILE_SIZE`` (stackrc's 30G, a sparse file) too small for one 1 GiB volume is
refused before anything is built, with the smallest size that works.

cinder.conf is devstack's configure_cinder: database, the message bus, keystone_authtoken, the
service token, ``[nova]`` and ``[glance]`` credentials, ``enabled_backends`` and
``default_volume_type`` (the first backend), state and lock paths, ``[coordination]
backend_url`` on etcd3 when it is enabled (or CINDER_COORDINATION_URL), the image-volume cache
and the fixed key. stackmagic runs cinder-volume and cinder-backup as root with their privsep
helpers straight from the venv (no sudo, no rootwrap). Like Nova, Cinder refuses
DATABASE_TYPE=sqlite: its API, scheduler and volume service write one database at once.

init: ``cinder-manage db sync`` and the backends' backing files, loop devices and mounts.
accounts: the cinder service user, the block-storage service and endpoints, and cinder's
internal tenant (the service project and user, for the image-volume cache). data: devstack's
create_volume_types, one type per backend with its ``volume_backend_name``.

Health: c-api answers HTTP; c-sch answers the API's get_pools (a call to the scheduler over the
bus); c-vol when the scheduler lists its backend's pool (its driver is set up and reported);
c-bak when the API counts it up. ``unstack`` unmounts and detaches what init made (by the paths
it recorded); ``clean`` also removes the backing files, the database and the state.

Backups (``c-bak``): devstack's default driver is Swift, which stackmagic does not set up for
Cinder yet; backups go to ``$CINDER_STATE_PATH/backups`` through Cinder's POSIX driver
(CINDER_BACKUP_DRIVER=posix).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import cinder_backends as cb
from stackmagic.catalog.api_service import ApiService, configure_authtoken, configure_keystoneauth
from stackmagic.catalog.base import Need, Process
from stackmagic.catalog.ceilometer import emit_notifications
from stackmagic.errors import ConfigError
from stackmagic.health import CommandCheck
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "cinder_script.py"
#: stack.sh's FIXED_KEY: one key for Nova and Cinder (encrypted volumes) on every devstack
FIXED_KEY = "bae3516cc1c0eb18b05440eba8012a4a880a2ee04d584a9c1579445e675b12defdc716ec"
#: devstack's malloc_tuning for cinder-volume and cinder-backup
MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072",
          "MALLOC_TRIM_THRESHOLD_": "262144"}
BACKUP_DRIVERS = {"posix": "cinder.backup.drivers.posix.PosixBackupDriver"}


class Cinder(ApiService):
    name = "cinder"
    group = "cinder"
    services = {
        "c-api": "Block Storage API",
        "c-sch": "Block Storage scheduler",
        "c-vol": "volume service (cinder-volume)",
        "c-bak": "volume backup service (cinder-backup)",
    }
    repo = "openstack/cinder"
    pypi = "cinder"
    requirements = ("gunicorn", "openstacksdk", "python-openstackclient")
    api, app = "c-api", "cinder.wsgi.api:application"
    conf_setting, port_setting, default_port = "CINDER_CONF", "CINDER_SERVICE_PORT", 8776
    database, manage, db_sync = "cinder", "cinder-manage", ("db", "sync")
    service_type, service_description = "block-storage", "Cinder Volume Service"
    endpoint_path = "/v3"
    requires = (Need("database", before="init"), Need("identity", before="accounts"),
                Need("message-bus", before="start"),
                # etcd3 when it is enabled: [coordination] backend_url points at it
                Need("coordination", before="start", optional=True))
    # the services' health is asked of the API as the cinder user, whom accounts makes; and the
    # internal tenant's ids go into cinder.conf there
    own_order = (("accounts", "start"),)

    # -- settings -------------------------------------------------------------------------
    def state_path(self, ctx: "Context") -> Path:
        return cb.state_path(ctx)

    def backends(self, ctx: "Context") -> list[cb.Backend]:
        return cb.backends(ctx)[0]

    def backup_driver(self, ctx: "Context") -> str:
        driver = ctx.settings.get("CINDER_BACKUP_DRIVER") or "posix"
        if driver not in BACKUP_DRIVERS:
            raise ConfigError(f"CINDER_BACKUP_DRIVER={driver} is a driver stackmagic does not set "
                              "up (devstack's swift, ceph, s3_swift); use posix (backups as files "
                              "under $CINDER_STATE_PATH/backups) or disable_service c-bak")
        return driver

    def coordination_url(self, ctx: "Context") -> str | None:
        from stackmagic.catalog import etcd3

        if ctx.settings.get("CINDER_COORDINATION_URL"):
            return ctx.settings.get("CINDER_COORDINATION_URL")
        return etcd3.backend_url(ctx) if ctx.config.is_service_enabled("etcd3") else None

    def wsgi_args(self, ctx: "Context") -> list[str]:
        # cinder.wsgi reads its config files from the command line only
        return ["--config-file", str(self.conf(ctx))]

    def env(self, ctx: "Context") -> dict[str, str]:
        # the venv's programs first (privsep-helper, cinder-rtstool); /sbin for mount.nfs, losetup
        path = f"{ctx.venv.path / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        for system in ("/usr/sbin", "/sbin"):
            if system not in path.split(":"):
                path += f":{system}"
        return {**super().env(ctx), "PATH": path}

    def _check(self, ctx: "Context") -> list[cb.Backend]:
        """What is refused before anything is built; the backends of c-vol (or none)."""
        if ctx.settings.database_type == "sqlite":
            raise ConfigError(
                "Cinder cannot run on DATABASE_TYPE=sqlite: its API, scheduler and volume "
                "service write one database from several processes at once, and SQLite allows "
                "one writer at a time (\"database is locked\"). Set DATABASE_TYPE=mysql (MariaDB) "
                "or DATABASE_TYPE=postgresql, or disable the Cinder services.")
        if ctx.config.is_service_enabled("c-bak"):
            self.backup_driver(ctx)
        if not ctx.config.is_service_enabled("c-vol"):
            return []
        found = self.backends(ctx)
        cb.check_size(ctx, found)
        return found

    def plan_notes(self, ctx: "Context") -> list[str]:
        if not ctx.config.is_service_enabled("c-vol"):
            return []
        size = ctx.settings.get("VOLUME_BACKING_FILE_SIZE") or cb.DEFAULT_SIZE
        try:
            found, why = cb.backends(ctx)
            if cb.size(ctx) < cb.smallest(found):
                return [f"cinder: VOLUME_BACKING_FILE_SIZE={size} cannot hold one 1 GiB volume; "
                        f"stack refuses it (the smallest that works is {cb.smallest(found) // cb.MIB}M)"]
        except ConfigError as err:
            return [f"cinder: {err}"]
        notes = []
        for be in found:
            if be.kind == "lvm":
                what = (f"LVM volume group {cb.volume_group(ctx, be)} on a {size} sparse loop "
                        "file, iSCSI through LIO")
            else:
                what = (f"volumes as files in a {size} sparse ext4 image, loop-mounted where the "
                        "NFS driver and Nova find the share")
            notes.append(f"cinder: {be.kind}:{be.name}, {what}, because {why}")
        return notes

    # -- lifecycle ------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        if ctx.config.is_service_enabled("c-vol") and os.geteuid() == 0:
            return cb.packages(self.backends(ctx))
        return ()

    def install_requirements(self, ctx: "Context") -> list[str]:
        extra = ["etcd3gw"] if (self.coordination_url(ctx) or "").startswith("etcd3") else []
        return [*self.requirements, *extra]

    def configure(self, ctx: "Context") -> None:
        """devstack's configure_cinder (and configure_cinder_backend_<type>, init_os_brick)."""
        found = self._check(ctx)
        super().configure(ctx)      # debug, [database], keystone_authtoken, the WSGI shim
        s, cfg = ctx.settings, ctx.config
        conf, state = self.conf(ctx), self.state_path(ctx)
        src = self.source_dir(ctx) / "etc" / "cinder"
        for name in ("api-paste.ini", "resource_filters.json"):
            if (src / name).exists():
                shutil.copyfile(src / name, conf.parent / name)
        report = s.int("CINDER_SERVICE_REPORT_INTERVAL", 120)
        helper = f"{ctx.venv.bin('privsep-helper')} --config-file {conf}"
        d = "DEFAULT"
        for section, key, value in (
            (d, "target_helper", s.get("CINDER_TARGET_HELPER") or "lioadm"),
            (d, "api_paste_config", conf.parent / "api-paste.ini"),
            # devstack's copy lands where Cinder looks by default (/etc/cinder); ours is named:
            # without it the API ignores every list filter (name=, status= ...)
            (d, "resource_query_filters_file", conf.parent / "resource_filters.json"),
            (d, "osapi_volume_extension", "cinder.api.contrib.standard_extensions"),
            (d, "state_path", state),
            ("oslo_concurrency", "lock_path", state),
            (d, "my_ip", s.host_ip),
            ("key_manager", "backend", "cinder.keymgr.conf_key_mgr.ConfKeyManager"),
            ("key_manager", "fixed_key", s.get("FIXED_KEY") or FIXED_KEY),
            (d, "quota_volumes", s.int("CINDER_QUOTA_VOLUMES", 10)),
            (d, "quota_backups", s.int("CINDER_QUOTA_BACKUPS", 10)),
            (d, "quota_snapshots", s.int("CINDER_QUOTA_SNAPSHOTS", 10)),
            (d, "rpc_response_timeout", 120),
            (d, "report_interval", report),
            (d, "service_down_time", report * 6),
            (d, "graceful_shutdown_timeout", s.int("SERVICE_GRACEFUL_SHUTDOWN_TIMEOUT", 5)),
            ("oslo_policy", "enforce_new_defaults",
             s.bool("CINDER_ENFORCE_NEW_DEFAULTS", True) or s.bool("ENFORCE_NEW_DEFAULTS", False)),
            ("os_brick", "lock_path", s.data_dir / "os_brick"),
            # privsep helpers straight from the venv, as root (no sudo, no rootwrap)
            ("cinder_sys_admin", "helper_command", helper),
            ("privsep_osbrick", "helper_command", helper),
        ):
            ctx.iniset(conf, section, key, value)
        if s.get("CINDER_ALLOWED_DIRECT_URL_SCHEMES"):
            ctx.iniset(conf, d, "allowed_direct_url_schemes", s.get("CINDER_ALLOWED_DIRECT_URL_SCHEMES"))
        if found:
            self._configure_backends(ctx, conf, found)
        if cfg.is_service_enabled("c-bak"):
            ctx.iniset(conf, d, "backup_driver", BACKUP_DRIVERS[self.backup_driver(ctx)])
            ctx.iniset(conf, d, "backup_posix_path", state / "backups")
        from stackmagic.catalog import rabbit

        rabbit.iniset_rpc_backend(ctx, conf)
        emit_notifications(ctx, conf)
        if cfg.is_service_enabled("g-api"):
            port = s.int("GLANCE_SERVICE_PORT", 9292)
            ctx.iniset(conf, d, "glance_api_servers", ctx.url(port))
            configure_authtoken(ctx, conf, "glance", section="glance")    # the location APIs
        configure_keystoneauth(ctx, conf, "nova", "nova")                 # os-assisted-snapshots
        ctx.iniset(conf, "nova", "region_name", s.region_name)
        if self.coordination_url(ctx):
            ctx.iniset(conf, "coordination", "backend_url", self.coordination_url(ctx))
        if s.bool("CINDER_USE_SERVICE_TOKEN", True):
            ctx.iniset(conf, "service_user", "send_service_user_token", True)
            configure_keystoneauth(ctx, conf, "service_user", "cinder")
        for path in (state / "volumes", s.data_dir / "os_brick"):
            path.mkdir(parents=True, exist_ok=True)

    def _configure_backends(self, ctx: "Context", conf: Path, found: list[cb.Backend]) -> None:
        s = ctx.settings
        cache = s.bool("CINDER_IMG_CACHE_ENABLED", True)
        for be in found:
            shares = conf.parent / f"nfs-shares-{be.name}.conf"
            if be.kind == "nfs":
                ctx.write_file(shares, cb.share(ctx, be) + "\n")
            for key, value in cb.conf_options(ctx, be, shares):
                ctx.iniset(conf, be.name, key, value)
            # configure_cinder_image_volume_cache (every backend, as devstack's default)
            ctx.iniset(conf, be.name, "image_volume_cache_enabled", cache)
            for key, setting in (("image_volume_cache_max_size_gb", "CINDER_IMG_CACHE_SIZE_GB"),
                                 ("image_volume_cache_max_count", "CINDER_IMG_CACHE_SIZE_COUNT")):
                if s.get(setting):
                    ctx.iniset(conf, be.name, key, s.get(setting))
        ctx.iniset(conf, "DEFAULT", "enabled_backends", ",".join(b.name for b in found))
        ctx.iniset(conf, "DEFAULT", "default_volume_type", found[0].name)

    def init(self, ctx: "Context") -> None:
        """devstack's init_cinder: the database and its schema, then the backends' storage."""
        found = self._check(ctx)
        super().init(ctx)
        for be in found:
            cb.prepare(ctx, be)
        (self.state_path(ctx) / "volumes").mkdir(parents=True, exist_ok=True)

    # -- processes --------------------------------------------------------------------------
    def processes(self, ctx: "Context") -> Iterable[Process]:
        """devstack's start_cinder: the API, the scheduler, backup, then volume (last, so that
        the scheduler receives its capabilities)."""
        found = self._check(ctx)
        cfg = ctx.config
        yield from super().processes(ctx)             # c-api under gunicorn
        if cfg.is_service_enabled("c-sch"):
            yield self.rpc_service(ctx, "c-sch", "cinder-scheduler", self.check(ctx, "pools"))
        if cfg.is_service_enabled("c-bak"):
            yield self.rpc_service(ctx, "c-bak", "cinder-backup",
                                   self.check(ctx, "service-up", "--binary", "cinder-backup"),
                                   env=MALLOC, needs_root=True)
        if cfg.is_service_enabled("c-vol"):
            host = socket.gethostname()
            backends = [a for be in found for a in ("--backend", f"{host}@{be.name}")]
            yield self.rpc_service(ctx, "c-vol", "cinder-volume", self.check(ctx, "pools", *backends),
                                   env=MALLOC, needs_root=True, after=("c-sch",))

    def check(self, ctx: "Context", command: str, *args: str) -> CommandCheck:
        """``cinder_script.py command``, asking the API as the cinder user of cinder.conf."""
        return CommandCheck((str(ctx.venv.python), str(SCRIPT), command, "--conf", str(self.conf(ctx)),
                             "--url", ctx.url(self.port(ctx), self.endpoint_path), *args), timeout=30)

    def rpc_service(self, ctx: "Context", service: str, binary: str, health: CommandCheck, *,
                    env: dict[str, str] | None = None, needs_root: bool = False,
                    after: tuple[str, ...] = ()) -> Process:
        """A Cinder service on the message bus; its health is asked of the API, so c-api first."""
        argv = [str(ctx.venv.bin(binary)), "--config-file", str(self.conf(ctx))]
        return Process(service, argv, cwd=self.conf(ctx).parent, env={**self.env(ctx), **(env or {})},
                       health=health, after=("c-api", *after), needs_root=needs_root,
                       timeout=ctx.settings.int("SERVICE_TIMEOUT", 60) + 120)

    # -- accounts and data ------------------------------------------------------------------
    def accounts(self, ctx: "Context") -> None:
        """devstack's create_cinder_accounts and configure_cinder_internal_tenant."""
        if not ctx.config.is_service_enabled("c-api"):
            return
        super().accounts(ctx)          # the cinder user, block-storage service and endpoints
        project = ctx.settings.get("SERVICE_PROJECT_NAME") or "service"
        out = ctx.run(ctx.venv.python, SCRIPT, "ids", timeout=300, input=json.dumps(
            {"auth": identity.admin_auth(ctx), "project": project, "user": "cinder"}))
        ids = json.loads(out.strip().splitlines()[-1])
        ctx.iniset(self.conf(ctx), "DEFAULT", "cinder_internal_tenant_project_id", ids["project_id"])
        ctx.iniset(self.conf(ctx), "DEFAULT", "cinder_internal_tenant_user_id", ids["user_id"])

    def volume_types(self, ctx: "Context") -> list[dict]:
        """devstack's create_volume_types: one per backend, and multiattach when enabled."""
        types = [{"name": be.name, "extra_specs": {"volume_backend_name": be.name}}
                 for be in self.backends(ctx)]
        if ctx.settings.bool("ENABLE_VOLUME_MULTIATTACH", False):
            name = ctx.settings.get("VOLUME_TYPE_MULTIATTACH") or "multiattach"
            types.append({"name": name, "extra_specs": {"multiattach": "<is> True"}})
        return types

    def data(self, ctx: "Context") -> None:
        if not ctx.config.is_service_enabled("c-api"):
            return
        ctx.run(ctx.venv.python, SCRIPT, "types", timeout=300, input=json.dumps(
            {"auth": identity.admin_auth(ctx), "types": self.volume_types(ctx)}))

    # -- checks ----------------------------------------------------------------------------
    def verify_checks(self, ctx: "Context") -> list[Listing]:
        if not ctx.config.is_service_enabled("c-api"):
            return []
        return [Listing("volume_services", "block_storage.services", ("binary", "host", "state"),
                        show="{binary}@{host} {state}"),
                Listing("volume_types", "block_storage.types")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """lib/tempest's volume part."""
        s, cfg = ctx.settings, ctx.config
        if not cfg.is_service_enabled("c-api"):
            return []
        found = self.backends(ctx)
        lvm = any(b.kind == "lvm" for b in found)
        feature = "volume-feature-enabled"
        opts = [("volume", "build_timeout", str(s.int("BUILD_TIMEOUT", 196)))]
        for key, setting, default in (
                ("manage_snapshot", "TEMPEST_VOLUME_MANAGE_SNAPSHOT", lvm),
                ("manage_volume", "TEMPEST_VOLUME_MANAGE_VOLUME", lvm),
                ("extend_attached_volume", "TEMPEST_EXTEND_ATTACHED_VOLUME",
                 lvm and (s.get("VIRT_DRIVER") or "libvirt") == "libvirt"),
                ("volume_revert", "TEMPEST_VOLUME_REVERT_TO_SNAPSHOT", lvm),
                ("extend_attached_encrypted_volume", "TEMPEST_EXTEND_ATTACHED_ENCRYPTED_VOLUME", False)):
            opts.append((feature, key, "true" if s.bool(setting, default) else "false"))
        low = s.get("TEMPEST_VOLUME_MIN_MICROVERSION") or "None"
        high = s.get("TEMPEST_VOLUME_MAX_MICROVERSION") or "latest"
        if low != "None":
            opts.append(("volume", "min_microversion", low))
        if high != "None":
            opts.append(("volume", "max_microversion", high))
        if not cfg.is_service_enabled("c-bak"):
            opts.append((feature, "backup", "false"))
        if len(found) > 1:
            opts += [(feature, "multi_backend", "true"),
                     ("volume", "backend_names", ",".join(b.name for b in found))]
        if found and all(b.kind == "nfs" for b in found):
            # what the NFS driver reports; tempest compares it (its default is iSCSI)
            opts.append(("volume", "storage_protocol", s.get("TEMPEST_STORAGE_PROTOCOL") or "nfs"))
        elif s.get("TEMPEST_STORAGE_PROTOCOL"):
            opts.append(("volume", "storage_protocol", s.get("TEMPEST_STORAGE_PROTOCOL")))
        if s.get("TEMPEST_VOLUME_VENDOR"):
            opts.append(("volume", "vendor_name", s.get("TEMPEST_VOLUME_VENDOR")))
        if s.bool("ENABLE_VOLUME_MULTIATTACH", False):
            opts.append(("volume", "volume_type_multiattach",
                         s.get("VOLUME_TYPE_MULTIATTACH") or "multiattach"))
        opts.append((feature, "api_extensions", s.get("VOLUME_API_EXTENSIONS") or "all"))
        if s.bool("CINDER_ENFORCE_NEW_DEFAULTS", True) or s.bool("ENFORCE_NEW_DEFAULTS", False):
            opts.append(("enforce_scope", "cinder", "true"))
        return opts

    # -- unstack and clean -------------------------------------------------------------------
    def unstack(self, ctx: "Context") -> None:
        """Unmount and detach what init made (cinder-volume has stopped); the next stack's init
        mounts them again."""
        undone = cb.release(ctx)
        for line in undone:
            ctx.log(line)
        if undone:
            ctx.state.forget_steps(lambda sid: sid == f"init {self.name}")

    def cleanup(self, ctx: "Context") -> None:
        """devstack's cleanup_cinder and clean_lvm_volume_group: the database, the config, the
        backing files and the state (volumes, backups, locks)."""
        cb.release(ctx)
        super().cleanup(ctx)
        try:
            found = self.backends(ctx)
        except ConfigError:
            found = []
        if cb.Record(ctx).mounts:
            ctx.warn(f"kept {self.state_path(ctx)} and the backing files: something there is "
                     "still mounted (see the warnings above)")
            return
        for path in cb.remove_files(ctx, found):
            ctx.log(f"removed {path}")
        shutil.rmtree(self.state_path(ctx), ignore_errors=True)
