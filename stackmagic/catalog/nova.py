"""Nova, the Compute service, as devstack's lib/nova sets it up (cells v2).

Services (devstack's names): ``n-api`` (``nova.wsgi.osapi_compute:application`` under gunicorn
on NOVA_SERVICE_PORT, 8774; the compute endpoint is ``http://SERVICE_HOST:8774/v2.1``, devstack's
address when it runs the API without Apache), ``n-api-meta`` (``nova.wsgi.metadata:application``
on METADATA_SERVICE_PORT, 8775), ``n-cond``, ``n-sch``, ``n-cpu`` and ``n-novnc``. With
devstack's default ``CELLSV2_SETUP=superconductor``, ``n-cond`` is two windows: ``n-super-cond``
(nova.conf, the API-level conductor) and ``n-cond-cell1`` (nova_cell1.conf, the conductor of the
cell where the computes live, on the cell's own message-bus vhost), and the console proxy is
``n-novnc-cell1``; ``CELLSV2_SETUP=singleconductor`` gives one ``n-cond`` and ``n-novnc`` on
nova.conf. ``placement-client`` (a marker, :class:`PlacementClient`) asks for nova.conf's
``[placement]`` section on a node without ``placement-api``.

Databases: ``nova_api``, ``nova_cell0`` and ``nova_cell1``. **Nova runs on MariaDB
(DATABASE_TYPE=mysql) or PostgreSQL (DATABASE_TYPE=postgresql), not on SQLite**: the API, the
scheduler, the conductors and the metadata API write the same databases at the same time from
separate processes (each of them with several workers), and SQLite allows one writer per file:
the others fail with "database is locked" (measured on these machines: see the shared notes on
OpenStack here). A busy timeout only moves the failure, and one worker per service does not help
when five services share the cell database. A plan with a Nova service and DATABASE_TYPE=sqlite
stops with a clear error before anything is built.

init: the databases, ``nova-manage api_db sync``, ``db sync`` of cell0 and cell1 (side by
side), ``cell_v2 map_cell0``, ``db online_data_migrations``, ``cell_v2 create_cell --name cell1``
(or ``update_cell`` when it exists, so a second ``stack`` passes). No password reaches a command
line: nova-manage reads every URL from a config file (0600), including the cell0 URL, which
map_cell0 derives from ``[database] connection`` of a small file of its own.

noVNC's pages come from Debian's ``novnc`` package (``/usr/share/novnc``, devstack's
NOVNC_FROM_PACKAGE; ``NOVNC_WEB_DIR`` names another copy); nova-novncproxy serves them and the
websocket on NOVA_NOVNCPROXY_PORT (6080), and nova-cpu.conf's ``novncproxy_base_url`` points at
its ``vnc_lite.html``.

Health: the APIs over HTTP; conductors, scheduler and compute by Nova's own record of them (the
service row "up" the way Nova's servicegroup driver decides, reported since this start), read
from the cell database by ``nova_script.py service-up``; the console proxy by its page.

data: devstack's flavors (create_flavors, plus tempest's m1.nano / m1.micro when tempest is
enabled) and, once nova-compute has made its compute node, ``cell_v2 discover_hosts``.

Hypervisor: ``VIRT_DRIVER=libvirt`` (default) takes virt_type and the CPU options from
:mod:`stackmagic.catalog.libvirt`, which provides the ``hypervisor`` that n-cpu starts after;
``VIRT_DRIVER=fake`` uses ``fake.FakeDriverWithoutFakeNodes`` (``fake.FakeDriver`` invents a new
node each start and then refuses to restart) and the no-op quota driver, as hypervisor-fake.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import libvirt, memcached, rabbit
from stackmagic.catalog.api_service import ApiService, configure_keystoneauth
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.catalog.cinder import FIXED_KEY
from stackmagic.catalog.database import Database
from stackmagic.catalog.wsgi import gunicorn, shim
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck, HttpCheck
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "nova_script.py"
API_DB, CELL0_DB, CELL1_DB = "nova_api", "nova_cell0", "nova_cell1"
METADATA_APP = "nova.wsgi.metadata:application"
#: devstack's NOVA_FILTERS: the default filters plus SameHostFilter and DifferentHostFilter
FILTERS = ("ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,"
           "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter")
#: devstack's create_flavors: (name, id, ram MiB, disk GiB, vcpus), each with hw_rng:allowed
FLAVORS = (("cirros256", "c1", 256, 1, 1), ("ds512M", "d1", 512, 5, 1), ("ds1G", "d2", 1024, 10, 1),
           ("ds2G", "d3", 2048, 10, 2), ("ds4G", "d4", 4096, 20, 4),
           ("m1.tiny", "1", 512, 1, 1), ("m1.small", "2", 2048, 20, 1), ("m1.medium", "3", 4096, 40, 2),
           ("m1.large", "4", 8192, 80, 4), ("m1.xlarge", "5", 16384, 160, 8))
#: the services that keep Nova's databases busy from several processes at once
DB_SERVICES = ("n-api", "n-api-meta", "n-cond", "n-sch", "n-novnc")


class Nova(ApiService):
    name = "nova"
    group = "nova"
    services = {
        "n-api": "Compute API",
        "n-api-meta": "Metadata API for instances",
        "n-cond": "Compute conductors (super and cell1, or one with CELLSV2_SETUP=singleconductor)",
        "n-sch": "Compute scheduler",
        "n-cpu": "Compute agent (nova-compute)",
        "n-novnc": "noVNC console proxy",
    }
    repo = "openstack/nova"
    pypi = "nova"
    requirements = ("gunicorn", "openstacksdk", "python-openstackclient")
    api, app = "n-api", "nova.wsgi.osapi_compute:application"
    conf_setting, port_setting, default_port = "NOVA_CONF", "NOVA_SERVICE_PORT", 8774
    ports = {"NOVA_SERVICE_PORT": 8774, "METADATA_SERVICE_PORT": 8775, "NOVA_NOVNCPROXY_PORT": 6080}
    database = None                     # three of them: see init
    manage = "nova-manage"
    service_type, service_description = "compute", "Nova Compute Service"
    endpoint_path = "/v2.1"
    requires = (Need("database", before="init"), Need("identity", before="accounts"),
                # before init: the cell's vhost is made there (devstack's rpc_backend_add_vhost)
                Need("message-bus", before="init"),
                # libvirtd and virtlogd (catalog/libvirt.py), for VIRT_DRIVER=libvirt only: that
                # project is available only then, so with VIRT_DRIVER=fake the need goes unmet
                Need("hypervisor", before="start", services=("n-cpu",), optional=True))
    # nova-compute and the scheduler talk to Placement as the nova user from their first moment
    own_order = (("accounts", "start"),)
    # they keep what Neutron's API offers (its extension list, for extension_sync_interval:
    # 600 s): after a switch of Neutron's layout, a compute left running from the other layout
    # failed its next builds at once (seen in the shared cloud's flow); devstack, which switches
    # only through unstack and stack, restarts them all the same
    restarts_with = ("neutron",)

    # -- settings -------------------------------------------------------------------------
    @staticmethod
    def superconductor(ctx: "Context") -> bool:
        mode = ctx.settings.get("CELLSV2_SETUP") or "superconductor"
        if mode not in ("superconductor", "singleconductor"):
            raise ConfigError(f"CELLSV2_SETUP={mode} is not known; use superconductor (devstack's "
                              "default) or singleconductor")
        return mode == "superconductor"

    @staticmethod
    def virt_driver(ctx: "Context") -> str:
        driver = ctx.settings.get("VIRT_DRIVER") or "libvirt"
        if driver not in ("libvirt", "fake"):
            raise ConfigError(f"VIRT_DRIVER={driver} is not supported here; use libvirt (the "
                              "default: QEMU/KVM guests) or fake (no guests, for small machines)")
        return driver

    def conf_dir(self, ctx: "Context") -> Path:
        return self.conf(ctx).parent

    def cpu_conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("NOVA_CPU_CONF", self.conf_dir(ctx) / "nova-cpu.conf")

    def cell_conf(self, ctx: "Context") -> Path:
        """The cell1 conductor's config (devstack's conductor_conf 1)."""
        return self.conf_dir(ctx) / "nova_cell1.conf"

    def cell0_map_conf(self, ctx: "Context") -> Path:
        """What map_cell0 reads the cell0 URL from (it appends _cell0 to the database's name)."""
        return self.conf_dir(ctx) / "nova-manage-map-cell0.conf"

    def cell0_conf(self, ctx: "Context") -> Path:
        """What ``db sync`` of cell0 reads: [database] is cell0 in either cells layout."""
        return self.conf_dir(ctx) / "nova-manage-cell0.conf"

    def state_path(self, ctx: "Context") -> Path:
        return ctx.settings.path("NOVA_STATE_PATH", ctx.settings.data_dir / "nova")

    def instances_path(self, ctx: "Context") -> Path:
        s = ctx.settings
        return s.path("NOVA_INSTANCES_PATH", s.get("INSTANCES_PATH") or self.state_path(ctx) / "instances")

    def compute_db_conf(self, ctx: "Context") -> Path:
        """The config whose [database] is the cell the computes report to (cell1)."""
        return self.cell_conf(ctx) if self.superconductor(ctx) else self.conf(ctx)

    def config_files(self, ctx: "Context") -> list[Path]:
        files = [self.conf(ctx)]
        if self.superconductor(ctx):
            files.append(self.cell_conf(ctx))
        if ctx.config.is_service_enabled("n-cpu"):
            files.append(self.cpu_conf(ctx))
        return files

    def metadata_port(self, ctx: "Context") -> int:
        return ctx.settings.int("METADATA_SERVICE_PORT", 8775)

    def novnc_port(self, ctx: "Context") -> int:
        return ctx.settings.int("NOVA_NOVNCPROXY_PORT", 6080)

    def novnc_web(self, ctx: "Context") -> Path:
        """noVNC's HTML and JavaScript: Debian's ``novnc`` package (devstack's NOVNC_FROM_PACKAGE)."""
        return ctx.settings.path("NOVNC_WEB_DIR", "/usr/share/novnc")

    def novnc_url(self, ctx: "Context") -> str:
        page = "vnc_lite.html"
        if not (self.novnc_web(ctx) / page).exists() and (self.novnc_web(ctx) / "vnc_auto.html").exists():
            page = "vnc_auto.html"
        return ctx.settings.get("NOVNCPROXY_URL") or ctx.url(self.novnc_port(ctx), f"/{page}")

    def env(self, ctx: "Context") -> dict[str, str]:
        # the venv's programs first (privsep-helper, nova-rootwrap), as devstack's PATH hack
        path = f"{ctx.venv.path / 'bin'}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return {**super().env(ctx), "PATH": path}

    def _check_database(self, ctx: "Context") -> None:
        if ctx.settings.database_type == "sqlite" and ctx.config.is_service_enabled(*DB_SERVICES):
            enabled = [s for s in DB_SERVICES if ctx.config.is_service_enabled(s)]
            raise ConfigError(
                f"Nova ({', '.join(enabled)}) cannot run on DATABASE_TYPE=sqlite: its API, "
                "scheduler and conductors write the same databases from several processes at "
                "once, and SQLite allows one writer at a time (\"database is locked\"). Set "
                "DATABASE_TYPE=mysql (MariaDB) or DATABASE_TYPE=postgresql, or disable the Nova "
                "services.")

    def _check_hypervisor(self, ctx: "Context") -> None:
        """n-cpu's hypervisor need is optional so that VIRT_DRIVER=fake goes without one; with
        VIRT_DRIVER=libvirt and no libvirt here (not root), say so instead of starting an n-cpu
        that cannot work."""
        if not (ctx.config.is_service_enabled("n-cpu") and self.virt_driver(ctx) == "libvirt"):
            return
        if ctx.projects and not any("hypervisor" in p.provides for p in ctx.projects):
            why = libvirt.why_unavailable(ctx) or "no project provides a hypervisor"
            raise ConfigError(f"n-cpu with VIRT_DRIVER=libvirt needs libvirtd: {why} (or "
                              "disable_service n-cpu)")

    def plan_notes(self, ctx: "Context") -> list[str]:
        cfg = ctx.config
        notes = []
        if cfg.is_service_enabled("n-cond", "n-api"):
            notes.append("nova: cells v2 " + (
                "superconductor: n-super-cond on cell0, n-cond-cell1 on cell1 (its own vhost)"
                if self.superconductor(ctx) else "singleconductor: one n-cond on cell1"))
        if cfg.is_service_enabled("n-cpu") and self.virt_driver(ctx) == "fake":
            notes.append("nova: VIRT_DRIVER=fake: n-cpu runs fake.FakeDriverWithoutFakeNodes, no guests")
        return notes

    # -- lifecycle ------------------------------------------------------------------------
    def packages(self, ctx: "Context") -> tuple[str, ...]:
        if ctx.config.is_service_enabled("n-novnc") and os.geteuid() == 0 \
                and not ctx.settings.get("NOVNC_WEB_DIR"):
            return ("novnc",)
        return ()

    def configure(self, ctx: "Context") -> None:
        self._check_database(ctx)
        cfg = ctx.config
        conf = self.conf(ctx)
        super().configure(ctx)      # debug, keystone_authtoken, the WSGI shim
        shim(ctx, "nova_metadata", METADATA_APP)
        src = self.source_dir(ctx) / "etc" / "nova"
        if (src / "api-paste.ini").exists():
            shutil.copyfile(src / "api-paste.ini", self.conf_dir(ctx) / "api-paste.ini")
        if cfg.is_service_enabled("n-novnc"):
            web = self.novnc_web(ctx)
            if not any((web / page).exists() for page in ("vnc_lite.html", "vnc_auto.html")):
                raise StackError(f"n-novnc serves noVNC's pages from {web}, which has none: install "
                                 "Debian's novnc (apt-get install -y novnc; stack does it as root), "
                                 "set NOVNC_WEB_DIR to a noVNC checkout, or disable_service n-novnc")
        self._write_nova_conf(ctx, conf)
        if self.superconductor(ctx):          # cell1's URLs, for its conductor and create_cell
            self._write_cell_conf(ctx)
        self._write_cell0_confs(ctx)
        if cfg.is_service_enabled("n-cpu"):
            self._write_cpu_conf(ctx)
        for path in (self.state_path(ctx) / "keys", self.instances_path(ctx)):
            path.mkdir(parents=True, exist_ok=True)
        if cfg.is_service_enabled("n-cpu") and self.virt_driver(ctx) == "libvirt":
            # qemu runs as libvirt-qemu: libvirt hands it the disk files, not the directories
            blocked = libvirt.unreachable_by_qemu(self.instances_path(ctx))
            if blocked is not None:
                raise ConfigError(f"guests' disks go to {self.instances_path(ctx)}, but QEMU (user "
                                  f"libvirt-qemu) cannot pass through {blocked}: chmod o+x {blocked}, "
                                  "or set DATA_DIR to a directory others can traverse")

    def _write_nova_conf(self, ctx: "Context", conf: Path) -> None:
        """devstack's create_nova_conf (and the hypervisor plugin's configure)."""
        s, cfg = ctx.settings, ctx.config
        listen = s.get("NOVA_SERVICE_LISTEN_ADDRESS") or s.service_listen
        report = s.int("NOVA_SERVICE_REPORT_INTERVAL", 120)
        workers = s.api_workers
        state = self.state_path(ctx)
        d = "DEFAULT"
        for section, key, value in (
            (d, "allow_resize_to_same_host", s.bool("NOVA_ALLOW_MOVE_TO_SAME_HOST", True)),
            ("wsgi", "api_paste_config", self.conf_dir(ctx) / "api-paste.ini"),
            ("filter_scheduler", "enabled_filters", s.get("NOVA_FILTERS") or FILTERS),
            ("scheduler", "workers", workers),
            ("neutron", "default_floating_pool", s.get("PUBLIC_NETWORK_NAME") or "public"),
            (d, "my_ip", s.get("NOVA_MY_IP") or s.host_ip),
            (d, "instance_name_template", f"{s.get('INSTANCE_NAME_PREFIX') or 'instance-'}%08x"),
            (d, "osapi_compute_listen", listen),
            (d, "metadata_listen", listen),
            (d, "shutdown_timeout", s.int("NOVA_SHUTDOWN_TIMEOUT", 0)),
            ("api", "response_validation", "error"),
            ("key_manager", "backend", "nova.keymgr.conf_key_mgr.ConfKeyManager"),
            ("key_manager", "fixed_key", s.get("FIXED_KEY") or FIXED_KEY),     # stack.sh's
            (d, "report_interval", report),
            (d, "service_down_time", report * 6),
            (d, "state_path", state),
            ("oslo_concurrency", "lock_path", state),
            (d, "instances_path", self.instances_path(ctx)),
            ("upgrade_levels", "compute", "auto"),
            ("oslo_messaging_notifications", "driver", "messagingv2"),
            ("oslo_messaging_notifications", "transport_url", rabbit.transport_url(ctx)),
            ("notifications", "notification_format", s.get("NOVA_NOTIFICATION_FORMAT") or "unversioned"),
            (d, "osapi_compute_workers", workers),
            (d, "metadata_workers", workers),
            ("conductor", "workers", workers),
            (d, "graceful_shutdown_timeout", s.int("SERVICE_GRACEFUL_SHUTDOWN_TIMEOUT", 5)),
        ):
            ctx.iniset(conf, section, key, value)
        if ctx.config.is_service_enabled("ceilometer"):     # lib/nova's block for Ceilometer
            for key, value in (("instance_usage_audit", True), ("instance_usage_audit_period", "hour"),
                               ("notify_on_state_change", "vm_and_task_state")):
                ctx.iniset(conf, d, key, value)
        rabbit.iniset_rpc_backend(ctx, conf)
        force_drive = s.get("FORCE_CONFIG_DRIVE") or "False"
        if force_drive != "False":
            ctx.iniset(conf, d, "force_config_drive", force_drive)
        # the control services' databases and cache (n-cpu alone needs neither)
        if cfg.is_service_enabled(*DB_SERVICES):
            cell = CELL0_DB if self.superconductor(ctx) else CELL1_DB
            if self.superconductor(ctx):
                # the computes cannot reach the scheduler over RPC in this layout
                ctx.iniset(conf, "filter_scheduler", "track_instance_changes", False)
            ctx.iniset(conf, "database", "connection", Database.url(ctx, cell))
            ctx.iniset(conf, "api_database", "connection", Database.url(ctx, API_DB))
            cache = memcached.servers(ctx)
            ctx.iniset(conf, "cache", "enabled", bool(cache) and s.bool("NOVA_ENABLE_CACHE", True))
            if cache:
                ctx.iniset(conf, "cache", "backend", s.get("CACHE_BACKEND") or "dogpile.cache.memcached")
                ctx.iniset(conf, "cache", "memcache_servers", cache)
        if cfg.is_service_enabled("n-api"):
            apis = [a for a in (s.get("NOVA_ENABLED_APIS") or "osapi_compute,metadata").split(",")
                    if a and not (a == "metadata" and cfg.is_service_enabled("n-api-meta"))]
            ctx.iniset(conf, d, "enabled_apis", ",".join(apis))
        ctx.iniset(conf, "oslo_policy", "enforce_new_defaults", self.new_defaults(ctx))
        if s.bool("NOVA_USE_SERVICE_TOKEN", True):
            ctx.iniset(conf, "service_user", "send_service_user_token", True)
            configure_keystoneauth(ctx, conf, "service_user", "nova")
        if cfg.is_service_enabled("c-api", "cinder"):
            ctx.iniset(conf, "cinder", "os_region_name", s.region_name)
            configure_keystoneauth(ctx, conf, "cinder", "nova")
        if cfg.is_service_enabled("cinder"):
            # devstack's init_os_brick, and where Cinder's NFS share is mounted for n-cpu
            from stackmagic.catalog import cinder_backends

            for section, key, value in cinder_backends.nova_options(ctx):
                ctx.iniset(conf, section, key, value)
        if self.placement_client(ctx):
            configure_keystoneauth(ctx, conf, "placement", "nova")
        if cfg.is_service_enabled("q-svc", "neutron-api"):
            self._neutron(ctx, conf)
        if not self.superconductor(ctx):
            self._console_proxies(ctx, conf)
        self._hypervisor(ctx, conf)

    def placement_client(self, ctx: "Context") -> bool:
        """stack.sh: Placement access when placement(-api/-client) and n-cpu or n-sch are enabled."""
        cfg = ctx.config
        return (cfg.is_service_enabled("placement-api", "placement-client")
                and cfg.is_service_enabled("n-cpu", "n-sch"))

    def new_defaults(self, ctx: "Context") -> bool:
        s = ctx.settings
        if s.get("NOVA_ENFORCE_SCOPE"):         # devstack's deprecated name
            return s.bool("NOVA_ENFORCE_SCOPE", True)
        return s.bool("NOVA_ENFORCE_NEW_DEFAULTS", True) or s.bool("ENFORCE_NEW_DEFAULTS", False)

    def _neutron(self, ctx: "Context", conf: Path) -> None:
        """lib/neutron's create_nova_conf_neutron: Nova asks Neutron as the nova user."""
        s, cfg = ctx.settings, ctx.config
        configure_keystoneauth(ctx, conf, "neutron", "nova")
        ctx.iniset(conf, "neutron", "region_name", s.region_name)
        if cfg.is_service_enabled("n-api-meta") and cfg.is_service_enabled(
                "q-ovn-agent", "q-ovn-metadata-agent", "q-meta", "neutron-metadata-agent"):
            ctx.iniset(conf, "neutron", "service_metadata_proxy", True)
        ctx.iniset(conf, "DEFAULT", "vif_plugging_is_fatal", s.bool("VIF_PLUGGING_IS_FATAL", True))
        ctx.iniset(conf, "DEFAULT", "vif_plugging_timeout", s.int("VIF_PLUGGING_TIMEOUT", 300))

    def _console_proxies(self, ctx: "Context", conf: Path) -> None:
        """devstack's configure_console_proxies: where the proxy listens."""
        if ctx.config.is_service_enabled("n-novnc") or ctx.settings.bool("NOVA_VNC_ENABLED", False):
            listen = ctx.settings.get("NOVA_SERVICE_LISTEN_ADDRESS") or ctx.settings.service_listen
            ctx.iniset(conf, "vnc", "novncproxy_host", listen)
            ctx.iniset(conf, "vnc", "novncproxy_port", self.novnc_port(ctx))

    def _hypervisor(self, ctx: "Context", conf: Path) -> None:
        """lib/nova_plugins/hypervisor-<VIRT_DRIVER>'s configure_nova_hypervisor."""
        if not ctx.config.is_service_enabled("n-cpu"):
            return
        s = ctx.settings
        if self.virt_driver(ctx) == "fake":
            ctx.iniset(conf, "DEFAULT", "compute_driver", "fake.FakeDriverWithoutFakeNodes")
            ctx.iniset(conf, "quota", "driver", "nova.quota.NoopQuotaDriver")   # no arbitrary limits
            return
        kind, reason = libvirt.virt_type(ctx)
        ctx.log(f"libvirt virt_type {kind}: {reason}")
        ctx.iniset(conf, "libvirt", "virt_type", kind)
        for key, value in libvirt.cpu_options(ctx).items():
            ctx.iniset(conf, "libvirt", key, value)
        ctx.iniset(conf, "DEFAULT", "pointer_model", "ps2mouse")   # no USB tablet: less QEMU CPU
        ctx.iniset(conf, "libvirt", "live_migration_uri",
                   f"qemu+ssh://{s.get('STACK_USER') or 'stack'}@%s/system")
        ctx.iniset(conf, "DEFAULT", "default_ephemeral_format", "ext4")
        ctx.iniset(conf, "DEFAULT", "compute_driver", "libvirt.LibvirtDriver")

    def _write_cell_conf(self, ctx: "Context") -> None:
        """devstack's per-cell conductor config, nova_cell1.conf: cell1's database and vhost."""
        s, cfg = ctx.settings, ctx.config
        conf = self.cell_conf(ctx)
        conf.unlink(missing_ok=True)            # devstack: clean old conductor conf
        ctx.iniset(conf, "database", "connection", Database.url(ctx, CELL1_DB))
        ctx.iniset(conf, "conductor", "workers", s.api_workers)
        ctx.iniset(conf, "DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        rabbit.iniset_rpc_backend(ctx, conf, "DEFAULT", CELL1_DB)      # the cell's own vhost (made in init)
        # the cell conductor asks Placement when it reschedules
        if cfg.is_service_enabled("placement-api", "placement-client"):
            configure_keystoneauth(ctx, conf, "placement", "nova")
        if cfg.is_service_enabled("q-svc", "neutron-api"):
            self._neutron(ctx, conf)
        self._console_proxies(ctx, conf)

    def _write_cell0_confs(self, ctx: "Context") -> None:
        """The files nova-manage reads cell0's URL from, so that no URL (and no password) is
        on its command line: map_cell0 stores [database] connection with "_cell0" appended to
        the database's name (so: .../nova), db sync uses it as it is (.../nova_cell0)."""
        for conf, db in ((self.cell0_map_conf(ctx), "nova"), (self.cell0_conf(ctx), CELL0_DB)):
            conf.unlink(missing_ok=True)
            ctx.iniset(conf, "database", "connection", Database.url(ctx, db))
            ctx.iniset(conf, "api_database", "connection", Database.url(ctx, API_DB))

    def _write_cpu_conf(self, ctx: "Context") -> None:
        """devstack's start_nova_compute: nova-cpu.conf is nova.conf (with its local.conf
        post-config blocks) plus the compute's own settings, without the databases."""
        from stackmagic.steps import apply_merges

        s, cfg = ctx.settings, ctx.config
        conf, cpu = self.conf(ctx), self.cpu_conf(ctx)
        apply_merges(ctx, [m for m in cfg.merges if m.phase == "post-config" and Path(m.file) == conf])
        ctx.write_file(cpu, conf.read_text())
        if self.superconductor(ctx):
            ctx.iniset(cpu, "workarounds", "disable_group_policy_check_upcall", True)
            ctx.iniset(cpu, "filter_scheduler", "track_instance_changes", False)
            rabbit.iniset_rpc_backend(ctx, cpu, "DEFAULT", CELL1_DB)
        from stackmagic import ini

        ini.inidelete(cpu, "database", "connection")
        ini.inidelete(cpu, "api_database", "connection")
        # configure_console_compute
        my_ip = ini.iniget(cpu, "DEFAULT", "my_ip") or s.host_ip
        if cfg.is_service_enabled("n-novnc") or s.bool("NOVA_VNC_ENABLED", False):
            listen = s.get("NOVA_SERVICE_LISTEN_ADDRESS") or s.service_listen
            ctx.iniset(cpu, "vnc", "novncproxy_base_url", self.novnc_url(ctx))
            ctx.iniset(cpu, "vnc", "server_listen", s.get("VNCSERVER_LISTEN") or listen)
            ctx.iniset(cpu, "vnc", "server_proxyclient_address",
                       s.get("VNCSERVER_PROXYCLIENT_ADDRESS") or my_ip)
        else:
            ctx.iniset(cpu, "vnc", "enabled", False)
        ctx.iniset(cpu, "DEFAULT", "reimage_timeout_per_gb", 180)
        if cfg.is_service_enabled("ovsdb-server"):
            # os-vif plugs the guests' ports into br-int through this (devstack's
            # OVSDB_SERVER_LOCAL_HOST:6640)
            from stackmagic.catalog import openvswitch

            ctx.iniset(cpu, "os_vif_ovs", "ovsdb_connection", openvswitch.ovsdb_connection(ctx))
        if self.virt_driver(ctx) == "libvirt":
            if libvirt.virt_type(ctx)[0] == "qemu":       # bug #1939108
                ctx.iniset(cpu, "workarounds", "libvirt_disable_apic", True)
            if s.int("NOVA_LIBVIRT_TB_CACHE_SIZE", 0) > 0:
                ctx.iniset(cpu, "libvirt", "tb_cache_size", s.int("NOVA_LIBVIRT_TB_CACHE_SIZE"))
            # privsep helpers (vif plugging, volume attach, nova's own): straight from the venv,
            # as root, not through sudo + rootwrap
            helper = f"{ctx.venv.bin('privsep-helper')} --config-file {cpu}"
            for section in ("nova_sys_admin", "vif_plug_ovs_privileged",
                            "vif_plug_linux_bridge_privileged", "privsep_osbrick"):
                ctx.iniset(cpu, section, "helper_command", helper)
        if s.get("NOVA_CPU_UUID"):
            ctx.write_file(self.state_path(ctx) / "compute_id", s.get("NOVA_CPU_UUID"))

    def init(self, ctx: "Context") -> None:
        """devstack's init_nova: the databases, their schemas and the cell mappings."""
        from concurrent.futures import ThreadPoolExecutor

        self._check_database(ctx)
        if not ctx.config.is_service_enabled("n-api"):
            return
        conf = self.conf(ctx)
        cell1 = self.cell_conf(ctx) if self.superconductor(ctx) else conf
        for db in (API_DB, CELL0_DB, CELL1_DB):
            Database.create(ctx, db)
        if self.superconductor(ctx):
            rabbit.add_vhost(ctx, CELL1_DB)
        # the three schemas side by side (each a nova-manage of its own, as devstack's async_run)
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(self.nova_manage, ctx, [conf], "api_db", "sync"),
                    pool.submit(self.nova_manage, ctx, [self.cell0_conf(ctx)], "db", "sync", "--local_cell"),
                    pool.submit(self.nova_manage, ctx, [cell1], "db", "sync", "--local_cell")]
            jobs[0].result()
            # map_cell0 writes the cell mapping into nova_api: after api_db sync
            self.nova_manage(ctx, [conf, self.cell0_map_conf(ctx)], "cell_v2", "map_cell0")
            for job in jobs[1:]:
                job.result()
        self.nova_manage(ctx, [conf], "db", "online_data_migrations")
        cells = self.cells(ctx)
        if "cell1" in cells:
            # the URLs of the config (a new password, another port) replace the stored ones
            self.nova_manage(ctx, [conf, cell1], "cell_v2", "update_cell", "--cell_uuid", cells["cell1"])
        else:
            self.nova_manage(ctx, [conf, cell1], "cell_v2", "create_cell", "--name", "cell1")

    def nova_manage(self, ctx: "Context", confs: list[Path], *args: str) -> str:
        """``nova-manage --config-file ... args`` (every URL from the files, none on the line)."""
        files = [a for c in confs for a in ("--config-file", str(c))]
        return ctx.run(ctx.venv.bin("nova-manage"), *files, *args, env=self.env(ctx),
                       cwd=self.conf_dir(ctx), timeout=600)

    def cells(self, ctx: "Context") -> dict[str, str]:
        """Cell name -> uuid, from ``nova-manage cell_v2 list_cells`` (it masks the passwords)."""
        out = self.nova_manage(ctx, [self.conf(ctx)], "cell_v2", "list_cells")
        found = {}
        for line in out.splitlines():
            cols = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cols) >= 2 and re.fullmatch(r"[0-9a-f-]{36}", cols[1]):
                found[cols[0]] = cols[1]
        return found

    # -- processes --------------------------------------------------------------------------
    def processes(self, ctx: "Context") -> Iterable[Process]:
        cfg = ctx.config
        self._check_database(ctx)
        self._check_hypervisor(ctx)
        env = self.env(ctx)
        conf = self.conf(ctx)
        if cfg.is_service_enabled("n-api"):
            yield gunicorn(ctx, "n-api", "nova", self.app, self.port(ctx), env=env,
                           timeout=120)
        if cfg.is_service_enabled("n-api-meta"):
            yield gunicorn(ctx, "n-api-meta", "nova_metadata", METADATA_APP, self.metadata_port(ctx),
                           env=env, timeout=120)
        conductors: list[str] = []
        if cfg.is_service_enabled("n-cond"):
            if self.superconductor(ctx):
                yield self.rpc_service(ctx, "n-super-cond", "nova-conductor", [conf], conf)
                yield self.rpc_service(ctx, "n-cond-cell1", "nova-conductor", [self.cell_conf(ctx)],
                                       self.cell_conf(ctx))
                conductors = ["n-super-cond", "n-cond-cell1"]
            else:
                yield self.rpc_service(ctx, "n-cond", "nova-conductor", [conf], conf)
                conductors = ["n-cond"]
        if cfg.is_service_enabled("n-sch"):
            yield self.rpc_service(ctx, "n-sch", "nova-scheduler", [conf], conf,
                                   after=("placement-api",))
        if cfg.is_service_enabled("n-cpu"):
            # it reports through the cell conductor: that one first
            yield self.rpc_service(ctx, "n-cpu", "nova-compute", [self.cpu_conf(ctx)],
                                   self.compute_db_conf(ctx),
                                   # and the switch its guests' ports go into, when there is one
                                   after=(*conductors, "placement-api", "ovs-vswitchd",
                                          "ovn-controller"), timeout=180)
        if cfg.is_service_enabled("n-novnc"):
            name = "n-novnc-cell1" if self.superconductor(ctx) else "n-novnc"
            proxy_conf = self.cell_conf(ctx) if self.superconductor(ctx) else conf
            s = ctx.settings
            port = self.novnc_port(ctx)
            listen = s.get("NOVA_SERVICE_LISTEN_ADDRESS") or s.service_listen
            argv = [str(ctx.venv.bin("nova-novncproxy")), "--config-file", str(proxy_conf),
                    "--web", str(self.novnc_web(ctx))]
            yield Process(name, argv, cwd=self.conf_dir(ctx), env=env,
                          health=HttpCheck(self.novnc_url(ctx)), endpoint=self.novnc_url(ctx),
                          host=listen, port=port, timeout=90)

    def rpc_service(self, ctx: "Context", service: str, binary: str, confs: list[Path],
                    db_conf: Path, after: tuple[str, ...] = (), timeout: float = 120) -> Process:
        """A Nova service that talks over the message bus; healthy when Nova records it up: its
        record in ``db_conf``'s database, within nova.conf's service_down_time (what the API and
        the scheduler count with; a cell's conductor config does not set it, and the computes
        report only every NOVA_SERVICE_REPORT_INTERVAL, 120 s)."""
        argv = [str(ctx.venv.bin(binary))]
        for c in confs:
            argv += ["--config-file", str(c)]
        log = ctx.settings.logdir / f"{service}.log"
        read = [str(c) for c in dict.fromkeys([self.conf(ctx), db_conf])]   # db_conf's database
        check = CommandCheck((str(ctx.venv.python), str(SCRIPT), "service-up",
                              *(arg for c in read for arg in ("--conf", c)),
                              "--binary", binary, "--log", str(log), "--service", service),
                             timeout=20)
        return Process(service, argv, cwd=self.conf_dir(ctx), env=self.env(ctx), health=check,
                       after=after, timeout=timeout)

    # -- accounts and data ------------------------------------------------------------------
    def accounts(self, ctx: "Context") -> None:
        """devstack's create_nova_accounts."""
        if not ctx.config.is_service_enabled("n-api"):
            return
        project = ctx.settings.get("SERVICE_PROJECT_NAME") or "service"
        base = ctx.url(self.port(ctx))
        ops = identity.service_user(ctx, "nova")
        ops += identity.endpoints(ctx, "nova_legacy", "compute_legacy",
                                  "Nova Compute Service (Legacy 2.0)", f"{base}/v2/$(project_id)s")
        ops += identity.endpoints(ctx, "nova", "compute", self.service_description, f"{base}/v2.1")
        if ctx.config.is_service_enabled("swift", "s-proxy"):
            ops.append({"op": "role", "name": "ResellerAdmin"})
            ops.append({"op": "grant", "role": "ResellerAdmin", "user": "nova", "project": project})
        identity.apply(ctx, ops)

    def flavors(self, ctx: "Context") -> list[dict]:
        out = [{"name": n, "id": i, "ram": r, "disk": d, "vcpus": v,
                "extra_specs": {"hw_rng:allowed": "True"}} for n, i, r, d, v in FLAVORS]
        if ctx.config.is_service_enabled("tempest") and not ctx.settings.get("DEFAULT_INSTANCE_TYPE"):
            # lib/tempest's own: sized for the test image (a small one: 1 GiB of disk)
            for name, fid, ram in (("m1.nano", "42", ctx.settings.int("TEMPEST_FLAVOR_RAM", 192)),
                                   ("m1.micro", "84", ctx.settings.int("TEMPEST_FLAVOR_ALT_RAM", 256))):
                out.append({"name": name, "id": fid, "ram": ram, "disk": 1, "vcpus": 1,
                            "extra_specs": {"hw_rng:allowed": "True"}})
        return out

    def data(self, ctx: "Context") -> None:
        import json

        cfg = ctx.config
        if not cfg.is_service_enabled("n-api"):
            return
        ctx.run(ctx.venv.python, SCRIPT, "flavors", timeout=300,
                input=json.dumps({"auth": identity.admin_auth(ctx), "flavors": self.flavors(ctx)}))
        if cfg.is_service_enabled("n-cpu"):
            # devstack's is_nova_ready + discover_hosts.sh: the compute node exists, then map it
            timeout = ctx.settings.int("NOVA_READY_TIMEOUT", ctx.settings.int("SERVICE_TIMEOUT", 60))
            ctx.run(ctx.venv.python, SCRIPT, "compute-node", "--conf", self.compute_db_conf(ctx),
                    "--timeout", str(max(timeout, 60)), timeout=max(timeout, 60) + 60)
            self.nova_manage(ctx, [self.conf(ctx)], "cell_v2", "discover_hosts", "--verbose")

    # -- checks ----------------------------------------------------------------------------
    def verify_checks(self, ctx: "Context") -> list[Listing]:
        if not ctx.config.is_service_enabled("n-api"):
            return []
        return [Listing("compute_services", "compute.services", ("binary", "host", "state", "status"),
                        show="{binary}@{host} {state}"),
                Listing("hypervisors", "compute.hypervisors", ("name", "state", "status"),
                        show="{name} {state}"),
                Listing("flavors", "compute.flavors")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        s, cfg = ctx.settings, ctx.config
        if not cfg.is_service_enabled("n-api"):
            return []
        ref, alt = self.tempest_flavors(ctx)
        opts = [("compute", "build_timeout", str(s.int("BUILD_TIMEOUT", 196))),
                ("compute", "flavor_ref", ref), ("compute", "flavor_ref_alt", alt)]
        low = s.get("TEMPEST_COMPUTE_MIN_MICROVERSION") or "None"
        high = s.get("TEMPEST_COMPUTE_MAX_MICROVERSION") or "latest"
        if s.get("TEMPEST_COMPUTE_TYPE"):
            opts.append(("compute", "catalog_type", s.get("TEMPEST_COMPUTE_TYPE")))
        if low != "None":
            opts.append(("compute", "min_microversion", low))
        if high != "None":
            opts.append(("compute", "max_microversion", high))
        feature = "compute-feature-enabled"
        for key, setting, default in (("personality", "ENABLE_FILE_INJECTION", False),
                                      ("live_migration", "LIVE_MIGRATION_AVAILABLE", False),
                                      ("block_migration_for_live_migration",
                                       "USE_BLOCK_MIGRATION_FOR_LIVE_MIGRATION", False),
                                      ("live_migrate_back_and_forth", "LIVE_MIGRATE_BACK_AND_FORTH", False),
                                      ("attach_encrypted_volume", "ATTACH_ENCRYPTED_VOLUME_AVAILABLE", True)):
            opts.append((feature, key, _tf(s.bool(setting, default))))
        opts += [(feature, "resize", "true"), (feature, "change_password", "false"),
                 (feature, "hostname_fqdn_sanitization", "true"),
                 (feature, "scheduler_enabled_filters", s.get("NOVA_FILTERS") or FILTERS),
                 (feature, "nova_policy_roles", "admin,manager,member,reader,service")]
        if s.bool("ENABLE_VOLUME_MULTIATTACH", False):
            opts.append((feature, "volume_multiattach", "true"))
        if (cfg.is_service_enabled("n-novnc") or s.bool("NOVA_VNC_ENABLED", False)) \
                and self.virt_driver(ctx) == "libvirt":
            # the fake driver's console points at fakevncconsole.com: the proxy would try to
            # reach it for tempest's console tests, and there is no VNC server behind it anyway
            opts.append((feature, "vnc_console", "true"))
        if self.new_defaults(ctx):
            opts.append(("enforce_scope", "nova", "true"))
        return opts

    def tempest_flavors(self, ctx: "Context") -> tuple[str, str]:
        """lib/tempest: m1.nano / m1.micro, or DEFAULT_INSTANCE_TYPE and a flavor no smaller."""
        wanted = ctx.settings.get("DEFAULT_INSTANCE_TYPE")
        if not wanted:
            return "42", "84"
        known = {name: (fid, ram, disk) for name, fid, ram, disk, _v in FLAVORS}
        if wanted not in known:
            raise ConfigError(f"DEFAULT_INSTANCE_TYPE={wanted} is not one of the flavors stackmagic "
                              f"creates: {', '.join(known)}")
        ref, ram, disk = known[wanted]
        # a different one that a server can be resized to (no less memory, no smaller disk)
        alt = next((fid for fid, r, d in known.values() if fid != ref and r >= ram and d >= disk), ref)
        return ref, alt

    def before_unstack(self, ctx: "Context") -> None:
        """devstack's cleanup_nova at unstack: destroy and undefine this host's instances while
        libvirtd still runs. Their definitions would outlive the stack in libvirtd's own
        directory, and a nova-compute that later finds them beside a new database refuses to
        start ("My hypervisor has existing instances")."""
        if not ctx.config.is_service_enabled("n-cpu") or self.virt_driver(ctx) != "libvirt":
            return
        prefix = ctx.settings.get("INSTANCE_NAME_PREFIX") or "instance-"
        for name in libvirt.remove_domains(ctx, prefix):
            ctx.log(f"removed the guest {name} from libvirt (destroyed and undefined)")

    def cleanup(self, ctx: "Context") -> None:
        for db in (API_DB, CELL0_DB, CELL1_DB):
            Database.drop(ctx, db)
        shutil.rmtree(self.conf_dir(ctx), ignore_errors=True)
        shutil.rmtree(ctx.conf_dir("nova_metadata"), ignore_errors=True)
        shutil.rmtree(self.state_path(ctx), ignore_errors=True)


class PlacementClient(Project):
    """devstack's ``placement-client``: no process, a marker that this node's nova-compute and
    scheduler must be told where Placement is (nova.conf's ``[placement]``, written by Nova)."""

    name = "placement-client"
    services = {"placement-client": "marks a node whose Nova must be told where Placement is"}


# -- helpers ---------------------------------------------------------------------------------
def _tf(value: bool) -> str:
    return "true" if value else "false"
