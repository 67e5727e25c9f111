"""Trove, the Database service, as the devstack plugin in Trove's own repository
(``devstack/plugin.sh`` and ``devstack/settings``) sets it up: this recipe answers devstack's
``enable_plugin trove URL [REF]`` (URL and REF become TROVE_REPO / TROVE_BRANCH; the plugin's
settings enable ``trove tr-api tr-tmgr tr-cond``), and the tr-* services enabled without that
line run too, with a warning that devstack would need it. Trove comes from PyPI as ``trove``.

Services (devstack's names; ``trove`` is their group name):

- ``tr-api``: ``trove.cmd.app_wsgi:application``, the WSGI application the plugin serves under
  uwsgi at ``/database``; here under gunicorn like the other APIs, on TROVE_SERVICE_PORT (8779,
  Trove's own ``bind_port``), the endpoint ``http://HOST:PORT/v1.0/$(project_id)s``.
- ``tr-tmgr``: ``trove-taskmanager --config-file $TROVE_CONF``.
- ``tr-cond``: ``trove-conductor --config-file $TROVE_CONF``.

Neither keeps a heartbeat anywhere, so both are healthy when they answer oslo.messaging's ping
over the stack's RabbitMQ on their own topic and host (``rpc_ping_enabled``, which stackmagic
turns on; :mod:`stackmagic.trove_script`).

trove.conf is configure_trove's: logging, the plugin's timeouts, ``controller_address``,
keystone_authtoken, ``[service_credentials]`` as the trove user (through which Trove finds Nova,
Cinder, Neutron, Glance and Swift in the catalog: the plugin names no URL), the database, the
``trove`` control exchange on the stack's RabbitMQ, the task manager, an in-memory cache, no
ports cache, and each datastore's TCP ports. trove-guestagent.conf is written as the plugin
writes it for guests (the bus at TROVE_HOST_GATEWAY, the container images of each datastore),
and the cloud-init file the guests get, under ``$TROVE_CONF_DIR/cloudinit`` (Trove is pointed
there; the plugin uses ``/etc/trove/cloudinit``).

init: ``trove-manage db_sync``, then the datastores of TROVE_DATASTORES (``mysql:8.4
mariadb:11.4 postgresql:18``, narrowed by TROVE_DATASTORE_TYPE / TROVE_DATASTORE_VERSION) as the
plugin registers them: active, the default version of their datastore, their guest image found
by the Glance tag ``trove``, their configuration parameters loaded. accounts:
create_trove_accounts' service user and ``database`` endpoints.

What is not done here, and ``plan`` says so: the guest image (the plugin builds it with
diskimage-builder from Ubuntu packages and quay.io container images: the internet), so database
instances cannot be created without an image tagged ``trove`` in Glance; the management
network, its security group, keypair, volume type and quotas the plugin makes in Neutron, Nova
and Cinder, with the host's port on br-int through which guests' agents reach RabbitMQ (here
the host's interfaces are never touched and RabbitMQ listens on loopback, so an image alone
would not give a working instance); the Keystone token life the plugin raises by
restarting Keystone; the ``trove`` entry the plugin adds to clouds.yaml (it holds the service
password); trove-dashboard.

Refused before anything is built: DATABASE_TYPE=sqlite (Trove's migrations pass there, but the
datastores' configuration parameters do not fit; measured), and TROVE_DATASTORES that are not
``datastore:version`` pairs or that TROVE_DATASTORE_TYPE / _VERSION leave empty.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog.api_service import ApiService, configure_keystoneauth
from stackmagic.catalog.base import Need, Process
from stackmagic.health import CommandCheck
from stackmagic.services import is_service_enabled

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "trove_script.py"
#: devstack/settings of the plugin
DATASTORES = "mysql:8.4 mariadb:11.4 postgresql:18"
IMAGE_TAG = "trove"
TEMPEST_PLUGIN = "2.8.0"
QUAY = "quay.io/openstack.trove"
#: the container images the guest agent runs, per datastore (settings' TROVE_DATABASE_IMAGE_*)
IMAGES = {"mysql": "mysql", "mariadb": "mariadb", "postgresql": "postgres"}
#: configure_trove's TCP ports per datastore
TCP_PORTS = {
    "cassandra": "7000,7001,7199,9042,9160", "couchbase": "8091,8092,4369,11209-11211,21100-21199",
    "couchdb": "5984", "db2": "50000", "mariadb": "3306,4444,4567,4568",
    "mongodb": "2500,27017,27019", "mysql": "3306", "percona": "3306", "postgresql": "5432",
    "pxc": "3306,4444,4567,4568", "redis": "6379,16379", "vertica": "5433,5434,5444,5450,4803",
}
#: settings -> trove.conf [DEFAULT] options the plugin writes only when set (its defaults)
CONDITIONAL = {
    "TROVE_MAX_ACCEPTED_VOLUME_SIZE": ("max_accepted_volume_size", None),
    "TROVE_MAX_INSTANCES_PER_TENANT": ("max_instances_per_tenant", None),
    "TROVE_MAX_VOLUMES_PER_TENANT": ("max_volumes_per_tenant", None),
    "TROVE_AGENT_CALL_LOW_TIMEOUT": ("agent_call_low_timeout", None),
    "TROVE_AGENT_CALL_HIGH_TIMEOUT": ("agent_call_high_timeout", "1200"),
    "TROVE_RESIZE_TIME_OUT": ("resize_time_out", None),
    "TROVE_USAGE_TIMEOUT": ("usage_timeout", "1800"),
    "TROVE_STATE_CHANGE_WAIT_TIME": ("state_change_wait_time", "600"),
}
#: the RPC services: service -> (console script, topic option's default, the key option)
RPC = {"tr-tmgr": ("trove-taskmanager", "taskmanager", "taskmanager_rpc_encr_key"),
       "tr-cond": ("trove-conductor", "trove-conductor", None)}
_DATASTORE = re.compile(r"[a-z][a-z0-9_-]*:[A-Za-z0-9._-]+")


def _datastores_text(values) -> str:
    """TROVE_DATASTORES, or the plugin's default when unset."""
    return values.get("TROVE_DATASTORES") or DATASTORES


def _narrowed(values) -> list[tuple[str, str]]:
    """TROVE_DATASTORES's ``datastore:version`` pairs that TROVE_DATASTORE_TYPE and
    TROVE_DATASTORE_VERSION (when set) leave, as the plugin narrows them."""
    text = _datastores_text(values)
    kind, version = values.get("TROVE_DATASTORE_TYPE"), values.get("TROVE_DATASTORE_VERSION")
    return [(d, v) for d, v in (item.split(":", 1) for item in text.split() if ":" in item)
            if (not kind or d == kind) and (not version or v == version)]


class Trove(ApiService):
    name = "trove"
    group = "trove"
    services = {
        "tr-api": "Database service API",
        "tr-tmgr": "Database service task manager",
        "tr-cond": "Database service conductor",
    }
    repo = "openstack/trove"
    pypi = "trove"
    devstack_plugin = "trove"
    # devstack/settings enables "trove" too, which its create_trove_accounts looks for; the
    # group name is enabled by any tr-* here (is_service_enabled), so it is not added
    plugin_services = ("tr-api", "tr-tmgr", "tr-cond")
    requirements = ("gunicorn",)
    #: configure_tempest_for_trove installs it; branchless, the newest release when this was
    #: written (it installs into Tempest's venv under the series' constraints)
    tempest_plugins = (f"trove-tempest-plugin=={TEMPEST_PLUGIN}",)
    api, app = "tr-api", "trove.cmd.app_wsgi:application"
    conf_setting, port_setting, default_port = "TROVE_CONF", "TROVE_SERVICE_PORT", 8779
    database, manage, db_sync = "trove", "trove-manage", ("db_sync",)
    service_type, service_description = "database", "Trove Service"
    endpoint_path = "/v1.0/$(project_id)s"
    requires = (Need("database", before="init"), Need("identity", before="accounts"),
                Need("message-bus", before="start"))

    # -- settings -------------------------------------------------------------------------
    @classmethod
    def setting_problems(cls, values, enabled) -> list[tuple[str, str]]:
        """TROVE_DATASTORES (and the plugin's TROVE_DATASTORE_TYPE / _VERSION narrowing it), and
        DATABASE_TYPE while a tr-* service is enabled, checked when the configuration is read."""
        found = []
        if is_service_enabled(enabled, *cls.services) and \
                (values.get("DATABASE_TYPE") or "sqlite") == "sqlite":
            found.append(("DATABASE_TYPE", (
                "Trove cannot run on DATABASE_TYPE=sqlite: the MySQL datastore's configuration "
                "parameters have limits up to 2^64-1 (bulk_insert_buffer_size ...), more than an "
                "SQLite integer holds, and its conductor workers and API write at the same time. "
                "Set DATABASE_TYPE=mysql (MariaDB) or DATABASE_TYPE=postgresql, or disable the "
                "tr-* services.")))
        text = _datastores_text(values)
        if [item for item in text.split() if not _DATASTORE.fullmatch(item)] or not text.split():
            found.append(("TROVE_DATASTORES", (
                f"TROVE_DATASTORES={text!r}: write space-separated datastore:version pairs, "
                f"e.g. TROVE_DATASTORES=\"{DATASTORES}\"")))
        elif not _narrowed(values):
            kind, version = values.get("TROVE_DATASTORE_TYPE"), values.get("TROVE_DATASTORE_VERSION")
            found.append(("TROVE_DATASTORE_TYPE" if kind else "TROVE_DATASTORE_VERSION", (
                f"TROVE_DATASTORE_TYPE={kind or ''} TROVE_DATASTORE_VERSION={version or ''} "
                f"match none of TROVE_DATASTORES={text!r}: name one of its datastore:version "
                "pairs, or unset them")))
        return found

    def datastores(self, ctx: "Context") -> list[tuple[str, str]]:
        """TROVE_DATASTORES as ``(datastore, version)``, narrowed as the plugin narrows them (bad
        values were refused when the configuration was read: see setting_problems)."""
        return _narrowed(ctx.settings)

    def host_gateway(self, ctx: "Context") -> str:
        """TROVE_HOST_GATEWAY: where guests reach the controller's message bus (settings)."""
        s = ctx.settings
        if s.get("TROVE_HOST_GATEWAY"):
            return s.get("TROVE_HOST_GATEWAY")
        if ctx.config.is_service_enabled("neutron"):
            return s.get("PUBLIC_NETWORK_GATEWAY") or "172.24.4.1"
        return s.get("NETWORK_GATEWAY") or "10.0.0.1"

    def wsgi_args(self, ctx: "Context") -> list[str]:
        # trove.cmd.app_wsgi parses sys.argv with oslo.config: name the file
        return ["--config-file", str(self.conf(ctx))]

    def plan_notes(self, ctx: "Context") -> list[str]:
        stores = ", ".join(f"{d} {v}" for d, v in self.datastores(ctx))
        notes = [
            f"trove: datastores {stores} are registered (their image found by the Glance tag "
            f"'{IMAGE_TAG}'), but no guest image is built: the plugin builds it with "
            "diskimage-builder from Ubuntu packages and quay.io container images, which needs the "
            "internet. Database instances cannot be created without an image tagged "
            f"'{IMAGE_TAG}' in Glance (build one with Trove's integration/scripts/trovestack "
            f"build-image where the internet is reachable, then openstack image create --tag "
            f"{IMAGE_TAG} --disk-format qcow2 --file IMAGE NAME)"]
        if ctx.settings.get("TROVE_NON_DEV_IMAGE_URL"):
            notes.append(
                "trove: TROVE_NON_DEV_IMAGE_URL is not downloaded (stackmagic downloads nothing); "
                f"upload that image yourself with openstack image create --tag {IMAGE_TAG}")
        if not ctx.config.is_service_enabled("n-api"):
            notes.append(
                "trove: Nova is not enabled: the API answers and lists datastores, but "
                "listing or creating database instances fails (Trove asks Nova for their servers)")
        if ctx.config.is_service_enabled("neutron"):
            notes.append(
                "trove: the plugin's management network (trove-mgmt), its security group, the "
                "Nova keypair, Cinder volume type and quotas and the host's port on br-int are not "
                "made here: guests would reach the host's message bus through that port, but the "
                "host's interfaces are never touched here and RabbitMQ listens on loopback only, "
                "so guests' agents could not report even with an image")
        else:
            notes.append(
                "trove: Neutron is not enabled, so there is no management network for guests "
                "(the plugin makes trove-mgmt only with Neutron); the API, task manager and "
                "conductor run without it")
        return notes

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        """devstack's configure_trove."""
        super().configure(ctx)      # debug, [database], keystone_authtoken, the tr-api shim
        from stackmagic.catalog import rabbit

        s, conf = ctx.settings, self.conf(ctx)
        shutil.copyfile(self.source_dir(ctx) / "etc" / "trove" / "api-paste.ini",
                        conf.parent / "api-paste.ini")
        d = "DEFAULT"
        ctx.iniset(conf, d, "use_syslog", False)
        for setting, (option, default) in CONDITIONAL.items():
            value = s.get(setting) or default
            if value:
                ctx.iniset(conf, d, option, value)
        ctx.iniset(conf, d, "reboot_time_out", 300)
        ctx.iniset(conf, d, "controller_address", s.service_host)
        configure_keystoneauth(ctx, conf, "service_credentials", "trove")
        rabbit.iniset_rpc_backend(ctx, conf)
        for section, key, value in (
            (d, "control_exchange", "trove"),
            (d, "taskmanager_manager", "trove.taskmanager.manager.Manager"),
            (d, "api_paste_config", conf.parent / "api-paste.ini"),
            (d, "cloudinit_location", conf.parent / "cloudinit"),
            # stackmagic's: the task manager and conductor answer a ping (their health), and
            # stop within seconds (oslo.service waits 60 s by default)
            (d, "rpc_ping_enabled", True),
            (d, "graceful_shutdown_timeout", s.int("SERVICE_GRACEFUL_SHUTDOWN_TIMEOUT", 5)),
            ("cache", "enabled", True),
            ("cache", "backend", "dogpile.cache.memory"),
            ("instance_ports_cache", "caching", False),
        ):
            ctx.iniset(conf, section, key, value)
        if s.get("TROVE_DATASTORE_TYPE"):
            ctx.iniset(conf, d, "default_datastore", s.get("TROVE_DATASTORE_TYPE"))
        for datastore, ports in TCP_PORTS.items():
            ctx.iniset(conf, datastore, "tcp_ports", ports)
        self.configure_guestagent(ctx)
        self.configure_cloudinit(ctx)

    def configure_guestagent(self, ctx: "Context") -> None:
        """trove-guestagent.conf, for the guests, as the plugin writes it."""
        from urllib.parse import urlsplit, urlunsplit

        from stackmagic.catalog import rabbit

        s, conf = ctx.settings, ctx.settings.path("TROVE_GUESTAGENT_CONF")
        conf.unlink(missing_ok=True)            # the plugin recreates it
        d = "DEFAULT"
        bus = urlsplit(rabbit.transport_url(ctx))
        credentials, _, _ = bus.netloc.rpartition("@")
        guest_bus = urlunsplit(bus._replace(netloc=f"{credentials}@{self.host_gateway(ctx)}:"
                                                   f"{bus.port}"))
        ctx.iniset(conf, d, "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        ctx.iniset(conf, d, "use_syslog", False)
        ctx.iniset(conf, d, "state_change_wait_time", s.get("TROVE_STATE_CHANGE_WAIT_TIME") or 600)
        ctx.iniset(conf, d, "command_process_timeout", s.get("TROVE_COMMAND_PROCESS_TIMEOUT") or 60)
        for key, value in (("transport_url", guest_bus), ("control_exchange", "trove"),
                           ("ignore_users", "os_admin"), ("log_dir", "/var/log/trove/"),
                           ("log_file", "trove-guestagent.log"), ("swift_api_insecure", True)):
            ctx.iniset(conf, d, key, value)
        for datastore, image in IMAGES.items():
            upper = datastore.upper()
            ctx.iniset(conf, datastore, "docker_image",
                       s.get(f"TROVE_DATABASE_IMAGE_{upper}") or f"{QUAY}/{image}")
            ctx.iniset(conf, datastore, "backup_docker_image",
                       s.get(f"TROVE_DATABASE_BACKUP_IMAGE_{upper}") or f"{QUAY}/db-backup-{datastore}")

    def configure_cloudinit(self, ctx: "Context") -> None:
        """configure_cloudinit: what cloud-init writes into each guest, a file per datastore."""
        s = ctx.settings
        text = ("#cloud-config\n"
                'manage_etc_hosts: "localhost"\n'
                "write_files:\n"
                "  - path: /etc/trove/controller.conf\n"
                "    content: |\n"
                f"      TROVE_MGMT_GATEWAY={s.get('TROVE_MGMT_GATEWAY') or 'none'}\n"
                f"      CONTROLLER={s.service_host}\n"
                f"      DB_BACKUP_IMAGE={s.get('TROVE_BUILD_BACKUP_IMAGES') or 'True'}\n")
        where = self.conf(ctx).parent / "cloudinit"
        for name in ("common", *IMAGES):
            ctx.write_file(where / f"{name}.cloudinit", text)

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx), ctx.settings.path("TROVE_GUESTAGENT_CONF")]

    def init(self, ctx: "Context") -> None:
        """init_trove_db, then the datastores (the plugin's create_guest_image, without the image)."""
        stores = self.datastores(ctx)
        super().init(ctx)           # the trove database, trove-manage db_sync
        ctx.run(ctx.venv.python, SCRIPT, "datastores", "--conf", self.conf(ctx),
                "--templates", self.source_dir(ctx) / "trove" / "templates",
                *(f"{d}:{v}" for d, v in stores), cwd=self.conf(ctx).parent)

    # -- processes --------------------------------------------------------------------------
    def processes(self, ctx: "Context") -> Iterable[Process]:
        """devstack's start_trove: the API, the task manager, the conductor."""
        yield from super().processes(ctx)             # tr-api under gunicorn
        conf = self.conf(ctx)
        for service, (command, topic, key) in RPC.items():
            if not ctx.config.is_service_enabled(service):
                continue
            ping = [str(ctx.venv.python), str(SCRIPT), "rpc-ping", "--conf", str(conf),
                    "--topic", topic]
            if key:
                ping += ["--key", key]
            yield Process(service, [str(ctx.venv.bin(command)), "--config-file", str(conf)],
                          cwd=conf.parent, health=CommandCheck(tuple(ping), timeout=30),
                          timeout=ctx.settings.int("SERVICE_TIMEOUT", 60) + 60)

    # -- accounts ---------------------------------------------------------------------------
    def accounts(self, ctx: "Context") -> None:
        """create_trove_accounts: the trove service user and the ``database`` endpoints."""
        identity.apply(ctx, identity.service_user(ctx, self.name)
                       + identity.endpoints(ctx, self.name, self.service_type, self.service_description,
                                            ctx.url(self.port(ctx), self.endpoint_path)))

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """configure_tempest_for_trove: Trove is there, and which datastores to test."""
        if not ctx.config.is_service_enabled("tr-api"):
            return []
        stores = self.datastores(ctx)
        return [("service_available", "trove", "true"),
                ("database", "enabled_datastores", ",".join(dict.fromkeys(d for d, _ in stores))),
                ("database", "default_datastore_versions", ",".join(f"{d}:{v}" for d, v in stores)),
                ("database", "remove_swift_account", "false")]
