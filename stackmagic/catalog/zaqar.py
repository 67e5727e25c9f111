"""Zaqar, the Messaging service (its devstack plugin, ``enable_plugin zaqar URL``).

devstack runs Zaqar only through the plugin in Zaqar's own repository (``devstack/plugin.sh``);
this recipe stands in for it (``devstack_plugin``): the ``enable_plugin`` line enables what the
plugin's settings enable, ``zaqar-wsgi`` and ``zaqar-websocket``, and its URL and ref become
``ZAQAR_REPO`` / ``ZAQAR_BRANCH``.

- ``zaqar-wsgi``: the v2 REST API, served under gunicorn like the other APIs on
  ``ZAQAR_SERVICE_PORT`` (8888; the plugin puts it under Apache at ``/messaging``). Zaqar's own
  WSGI module finds ``zaqar.conf`` only in ``~/.zaqar``, ``~``, ``/etc/zaqar`` or ``/etc``, so the
  application is built from Zaqar's bootstrap with ``$ZAQAR_CONF`` named (a small module written
  next to it).
- ``zaqar-websocket``: ``zaqar-server --config-file $ZAQAR_CONF``, whose transport is the
  websocket one, on ``ZAQAR_WEBSOCKET_PORT`` (9000) at ``SERVICE_LISTEN_ADDRESS``.

configure writes zaqar.conf as configure_zaqar: Keystone tokens (keystone_authtoken), the
trustee (the zaqar user), ``unreliable`` and ``admin_mode``, the notifier pipeline, the
websocket transport's address, a signing key for pre-signed URLs (``ZAQAR_SIGNED_URL_SECRET_KEY``,
generated once and kept with the passwords; the plugin writes a fixed string), and the two stores; accounts are create_zaqar_accounts': the
zaqar service user, ``messaging`` and ``messaging-websocket`` endpoints. tempest.conf gets
``[service_available] zaqar = True`` (the option zaqar-tempest-plugin reads), and Tempest's venv
gets zaqar-tempest-plugin, as the plugin's install_zaqartempest.

The stores. The plugin's default ``ZAQAR_BACKEND=mongodb`` cannot run here: Debian 12 packages
no MongoDB (``apt-cache policy mongodb-server mongodb``: no candidate), and the plugin fetches it
from MongoDB's own apt repository, which a machine without internet cannot reach. Of the
plugin's other choices, ``redis`` runs from Debian (``redis-server``; :mod:`.redis` starts it on
loopback), with the management store (queues' metadata, flavors, pools) in SQLAlchemy on the
stack's database, as the plugin does for redis. So ``ZAQAR_BACKEND`` defaults to ``redis`` here,
``plan`` says so, and another value is refused before anything runs. Pooling is off: with one
message store a pool catalog only adds a lookup per queue (the plugin turns on a virtual pool).

History: the seed post's note on MongoDB's ``smallfiles`` (small data files for MMAPv1, back when
Ceilometer and Zaqar kept their data in MongoDB) no longer applies: MMAPv1 and the option left
MongoDB in 4.2, Ceilometer stopped using MongoDB, and Zaqar here keeps its messages in Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import redis
from stackmagic.catalog.api_service import ApiService
from stackmagic.catalog.base import Need, Process
from stackmagic.health import PortCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

WEBSOCKET_PORT = 9000
BACKEND = "redis"
#: The plugin's other ZAQAR_BACKEND values, and why this recipe does not offer them.
REFUSED = {
    "mongodb": "Debian 12 packages no MongoDB (the plugin installs it from MongoDB's own apt "
               "repository, which needs the internet)",
    "swift": "this recipe does not yet wire Zaqar to Swift",
}
APP_MODULE = "zaqar_application"
#: zaqar-tempest-plugin's release (branchless, like every tempest plugin; the newest when this
#: was written: its 135 tests passed against this recipe)
TEMPEST_PLUGIN = "4.3.0"


class Zaqar(ApiService):
    name = "zaqar"
    group = "zaqar"
    services = {"zaqar-wsgi": "Messaging API (WSGI)", "zaqar-websocket": "Messaging websocket server"}
    devstack_plugin = "zaqar"
    plugin_services = ("zaqar-websocket", "zaqar-wsgi")
    repo = "openstack/zaqar"
    pypi = "zaqar"
    requirements = ("gunicorn", "redis")
    tempest_plugins = (f"zaqar-tempest-plugin=={TEMPEST_PLUGIN}",)     # install_zaqartempest
    api, app = "zaqar-wsgi", f"{APP_MODULE}:application"
    conf_setting, port_setting, default_port = "ZAQAR_CONF", "ZAQAR_SERVICE_PORT", 8888
    ports = {"ZAQAR_SERVICE_PORT": 8888, "ZAQAR_WEBSOCKET_PORT": WEBSOCKET_PORT}
    database = "zaqar"
    database_section, database_key = "drivers:management_store:sqlalchemy", "uri"
    manage, db_sync = "zaqar-sql-db-manage", ("upgrade", "head")
    service_type, service_description = "messaging", "Zaqar Service"
    requires = (*ApiService.requires, Need("redis", before="start"))

    # -- what this machine runs ---------------------------------------------------------------
    @classmethod
    def setting_problems(cls, values, enabled) -> list[tuple[str, str]]:
        """ZAQAR_BACKEND (``redis`` unless set): another value cannot run here."""
        chosen = values.get("ZAQAR_BACKEND") or BACKEND
        if chosen == BACKEND:
            return []
        why = REFUSED.get(chosen, "Zaqar's plugin knows mongodb, redis and swift")
        return [("ZAQAR_BACKEND", f"ZAQAR_BACKEND={chosen} cannot run here: {why}. Remove the setting "
                                  f"(or set ZAQAR_BACKEND={BACKEND}): messages then go to Redis from "
                                  "Debian's redis-server, queues' metadata to the stack's database")]

    def plan_notes(self, ctx: "Context") -> list[str]:
        renamed = ctx.config.renamed.get("zaqar-server")
        said = [f"zaqar: the seed post's zaqar-server runs as {' and '.join(renamed)} (the plugin's "
                "names for its two servers since 2015)"] if renamed else []
        return [*said, f"zaqar: messages in Redis (Debian's redis-server, started here on "
                f"{redis.url(ctx)}), queues' metadata in SQLAlchemy on the stack's "
                f"{ctx.settings.database_type} database, because the plugin's default "
                f"store, MongoDB, has no Debian 12 package (ZAQAR_BACKEND={BACKEND})"]

    def websocket_port(self, ctx: "Context") -> int:
        return ctx.settings.int("ZAQAR_WEBSOCKET_PORT", WEBSOCKET_PORT)

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        """devstack's configure_zaqar, with the redis store."""
        super().configure(ctx)
        conf, s = self.conf(ctx), ctx.settings
        listen = s.get("SERVICE_LISTEN_ADDRESS") or s.service_host
        for section, option, value in (
            ("DEFAULT", "unreliable", True), ("DEFAULT", "admin_mode", True),
            ("DEFAULT", "pooling", False),
            ("signed_url", "secret_key", s["ZAQAR_SIGNED_URL_SECRET_KEY"]),
            ("storage", "message_pipeline", "zaqar.notification.notifier"),
            ("drivers", "transport", "websocket"),
            ("drivers:transport:websocket", "bind", listen),
            ("drivers:transport:websocket", "port", self.websocket_port(ctx)),
            ("drivers", "management_store", "sqlalchemy"),
            ("drivers", "message_store", BACKEND),
            ("drivers:message_store:redis", "uri", redis.url(ctx)),
            ("trustee", "auth_type", "password"), ("trustee", "auth_url", identity.auth_url(ctx)),
            ("trustee", "username", "zaqar"), ("trustee", "password", s.service_password),
            ("trustee", "user_domain_id", "default"),
        ):
            ctx.iniset(conf, section, option, value)
        if ctx.config.is_service_enabled("key"):
            ctx.iniset(conf, "DEFAULT", "auth_strategy", "keystone")
        ctx.write_file(ctx.conf_dir(self.name) / f"{APP_MODULE}.py", application_module(conf))

    def processes(self, ctx: "Context") -> Iterable[Process]:
        yield from super().processes(ctx)
        if ctx.config.is_service_enabled("zaqar-websocket"):
            s, port = ctx.settings, self.websocket_port(ctx)
            conf = self.conf(ctx)
            yield Process("zaqar-websocket", [str(ctx.venv.bin("zaqar-server")), "--config-file", str(conf)],
                          cwd=conf.parent, health=PortCheck(s.service_host, port),
                          endpoint=f"ws://{s.service_host}:{port}",
                          host=s.get("SERVICE_LISTEN_ADDRESS") or s.service_host, port=port,
                          timeout=60)

    def accounts(self, ctx: "Context") -> None:
        """create_zaqar_accounts: the service user, ``messaging`` and ``messaging-websocket``."""
        url = ctx.url(self.websocket_port(ctx))
        identity.apply(ctx, identity.service_user(ctx, self.name)
                       + identity.endpoints(ctx, self.name, self.service_type, self.service_description,
                                            ctx.url(self.port(ctx)))
                       + identity.endpoints(ctx, "zaqar-websocket", "messaging-websocket",
                                            "Zaqar Websocket Service", url))

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        return [("service_available", "zaqar", "true")]


def application_module(conf: Path) -> str:
    """The module gunicorn serves: Zaqar's bootstrap with the WSGI transport, reading ``conf``
    (the steps of ``zaqar.transport.wsgi.app``, which cannot be told where its config is)."""
    return (
        f'"""Written by stackmagic: Zaqar\'s WSGI application, configured by {conf}."""\n'
        "from oslo_config import cfg\n"
        "from oslo_log import log\n\n"
        "from zaqar import bootstrap\n\n"
        "log.register_options(cfg.CONF)\n"
        f"cfg.CONF(project='zaqar', prog='zaqar-queues', args=[], default_config_files=[{str(conf)!r}])\n"
        "log.setup(cfg.CONF, 'zaqar')\n"
        "_boot = bootstrap.Bootstrap(cfg.CONF)\n"
        "cfg.CONF.set_override('transport', 'wsgi', group='drivers')\n"
        "application = _boot.transport.app\n"
    )
