"""Gnocchi, the metric store Ceilometer publishes to (the ceilometer plugin's install_gnocchi,
configure_gnocchi and the Gnocchi part of start_ceilometer).

devstack runs Gnocchi only through the ceilometer plugin, when ``CEILOMETER_BACKENDS`` names
``gnocchi`` (its default): the plugin's settings enable ``gnocchi-api`` and ``gnocchi-metricd``
and pip-installs ``gnocchi[redis,<DATABASE_TYPE>,keystone]`` from PyPI (not a git checkout).
So here Gnocchi comes with Ceilometer (``when_needed``: Ceilometer's need of a ``metric``
store brings it), from the release pinned in the constraints, and only while
``CEILOMETER_BACKENDS`` names it (``available``).

- ``gnocchi-api``: ``gnocchi.rest.wsgi:application`` under gunicorn like the other APIs, on
  ``GNOCCHI_SERVICE_PORT`` (8041, Gnocchi's own port; the plugin puts it under Apache at
  ``/metric``). Keystone checks its tokens (``[api] auth_mode = keystone``).
- ``gnocchi-metricd``: ``gnocchi-metricd --config-file $GNOCCHI_CONF``, which aggregates the
  measures the API received. Healthy when one of its workers of this host is a live member of
  its tooz group in Redis (``ceilometer_script.py members``).

Where the data goes: the indexer (resources, metrics, archive policies) in the stack's
database (MariaDB or PostgreSQL; Gnocchi's indexer knows no SQLite, so a SQLite stack is
refused with what to set); the incoming and the aggregated measures as files under
``$DATA_DIR/gnocchi`` (``[storage]`` and ``[incoming] driver = file``; the plugin keeps both in
Redis, which would hold every aggregate in memory, and whose data here does not outlive a
restart); the coordination of metricd's workers in Redis (:mod:`.redis`, the plugin's
``coordination_url``): group membership, which is made anew at each start.
``GNOCCHI_METRICD_PROCESSING_DELAY`` (5 s, the plugin's) is how often metricd looks for new
measures.

init: ``gnocchi-upgrade`` (the indexer's tables and the storage's sacks; the plugin runs it in
configure_gnocchi). accounts: the ``gnocchi`` service user (the ``service`` role, as the
plugin's ``create_service_user gnocchi``), the ``gnocchi`` service of type ``metric`` and its
endpoints; they are made once the API runs, and Ceilometer's ``ceilometer-upgrade`` waits for
them (``provides = {"metric": "accounts"}``).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import redis
from stackmagic.catalog.api_service import ApiService
from stackmagic.catalog.base import Need, Process
from stackmagic.catalog.wsgi import gunicorn
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

PORT = 8041
SCRIPT = Path(__file__).parent.parent / "ceilometer_script.py"
#: metricd's tooz group (gnocchi.cli.metricd.MetricProcessor.GROUP_ID)
METRICD_GROUP = "gnocchi-processing"


def backends(ctx: "Context") -> list[str]:
    """The ceilometer plugin's CEILOMETER_BACKENDS (with CEILOMETER_BACKEND added), ``gnocchi``
    when both are empty."""
    return backends_of(ctx.settings)


def backends_of(values) -> list[str]:
    """:func:`backends` from anything with ``get(name)`` (the settings, or the values the
    configuration is checked with)."""
    names = [b.strip() for b in (values.get("CEILOMETER_BACKENDS") or "").split(",") if b.strip()]
    single = (values.get("CEILOMETER_BACKEND") or "").strip()
    if single and single not in names:
        names.append(single)
    return names or ["gnocchi"]


class Gnocchi(ApiService):
    name = "gnocchi"
    services = {"gnocchi-api": "Metric storage API (Gnocchi)",
                "gnocchi-metricd": "Metric processing daemon (Gnocchi)"}
    requirements = ("gunicorn", "gnocchi[mysql,keystone,redis]")     # the plugin's pip install
    api, app = "gnocchi-api", "gnocchi.rest.wsgi:application"
    conf_setting, port_setting, default_port = "GNOCCHI_CONF", "GNOCCHI_SERVICE_PORT", PORT
    database, database_section, database_key = "gnocchi", "indexer", "url"
    manage, db_sync = "gnocchi-upgrade", ()
    service_type, service_description = "metric", "OpenStack Metric Service"
    provides = {"metric": "accounts"}
    when_needed = True                  # Ceilometer's Need("metric") brings it
    requires = (*ApiService.requires, Need("redis", before="start"))
    own_order = (("start", "accounts"),)    # the metric endpoint exists once the API answers

    def available(self, ctx: "Context") -> bool:
        return "gnocchi" in backends(ctx)

    def _check(self, ctx: "Context") -> None:
        if ctx.settings.database_type == "sqlite":
            raise ConfigError(
                "Gnocchi (Ceilometer's metric store) cannot run on DATABASE_TYPE=sqlite: its "
                "indexer supports only MySQL/MariaDB and PostgreSQL. Enable mysql (or postgresql) "
                "in the localrc, or set CEILOMETER_BACKENDS=none to run Ceilometer without a store.")

    def plan_notes(self, ctx: "Context") -> list[str]:
        try:
            self._check(ctx)
        except ConfigError as err:
            return [f"gnocchi: {err}"]
        unnamed = [s for s in self.services if self.runs(ctx, s) and not ctx.config.is_service_enabled(s)]
        notes = [f"gnocchi: {' and '.join(unnamed)} run with Ceilometer though the localrc does not "
                 "name them, as the ceilometer plugin's settings enable them (disable_service to "
                 "keep one off)"] if unnamed else []
        return notes + [f"gnocchi: measures (incoming and aggregated) in files under "
                        f"{self.data_dir(ctx)}, metricd's coordination in Redis ({redis.url(ctx)}), "
                        f"its index in the stack's {ctx.settings.database_type} database"]

    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "gnocchi"

    def wsgi_args(self, ctx: "Context") -> list[str]:
        # gnocchi.rest.wsgi parses sys.argv with oslo.config: name the file
        return ["--config-file", str(self.conf(ctx))]

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        """configure_gnocchi, with the aggregates in files."""
        self._check(ctx)
        super().configure(ctx)
        conf, s = self.conf(ctx), ctx.settings
        self.data_dir(ctx).mkdir(parents=True, exist_ok=True)
        for section, key, value in (
            ("storage", "driver", "file"),
            ("storage", "file_basepath", self.data_dir(ctx)),
            # incoming measures beside them (Gnocchi's default: the storage driver), not in
            # Redis as the plugin: the sacks' layout that gnocchi-upgrade writes must outlive a
            # restart of Redis, which keeps no snapshot here
            ("incoming", "driver", "file"),
            ("DEFAULT", "coordination_url", redis.url(ctx)),
            ("metricd", "metric_processing_delay", s.int("GNOCCHI_METRICD_PROCESSING_DELAY", 5)),
            ("api", "auth_mode", "keystone"),
            ("api", "paste_config", self.paste_ini(ctx)),
            # Gnocchi logs its parsed configuration, passwords included, at INFO and DEBUG when
            # the app loads: keep its own log at WARNING whatever ENABLE_DEBUG_LOG_LEVEL says
            ("DEFAULT", "debug", False), ("DEFAULT", "verbose", False),
        ):
            ctx.iniset(conf, section, key, value)
        self._paste(ctx)

    def paste_ini(self, ctx: "Context") -> Path:
        return self.conf(ctx).parent / "api-paste.ini"

    def _paste(self, ctx: "Context") -> None:
        """Gnocchi's api-paste.ini, its filters told where gnocchi.conf is: keystonemiddleware
        and the healthcheck load their options themselves (``oslo_config_project = gnocchi``)
        from the default places only (``/etc/gnocchi`` ...), unless ``oslo_config_file`` names it."""
        found = sorted(Path(ctx.venv.python).parent.parent.glob(
            "lib/python*/site-packages/gnocchi/rest/api-paste.ini"))
        if not found:
            raise StackError("gnocchi's api-paste.ini is not in the venv: is gnocchi installed?")
        target = self.paste_ini(ctx)
        ctx.write_file(target, found[0].read_text())
        for section in ("filter:keystone_authtoken", "app:healthcheck"):
            ctx.iniset(target, section, "oslo_config_file", self.conf(ctx), raw=True)

    def runs(self, ctx: "Context", service: str) -> bool:
        """Whether ``service`` runs: enabled by name (the plugin's settings name both), or not
        named at all while Ceilometer brought Gnocchi (ceilometer-* enabled without the plugin
        line, as the seed post does); ``disable_service`` keeps it off."""
        cfg = ctx.config
        return cfg.is_service_enabled(service) or service not in cfg.disabled

    def enabled_services(self, ctx: "Context") -> list[str]:
        return [s for s in self.services if self.runs(ctx, s)]

    def processes(self, ctx: "Context") -> Iterable[Process]:
        self._check(ctx)
        if self.runs(ctx, self.api):
            yield gunicorn(ctx, self.api, self.name, self.app, self.port(ctx), env=self.env(ctx),
                           health_path=self.health_path)
        if self.runs(ctx, "gnocchi-metricd"):
            conf = self.conf(ctx)
            health = CommandCheck((str(ctx.venv.python), str(SCRIPT), "members",
                                   "--redis-cli", redis.CLI, "--port", str(redis.port(ctx)),
                                   "--group", METRICD_GROUP, "--host", socket.gethostname()),
                                  timeout=20)
            yield Process("gnocchi-metricd", [str(ctx.venv.bin("gnocchi-metricd")), "--config-file",
                                              str(conf)],
                          cwd=conf.parent, health=health, timeout=90)

    def accounts(self, ctx: "Context") -> None:
        """The plugin's ceilometer_create_accounts, its Gnocchi part."""
        identity.apply(ctx, identity.service_user(ctx, self.name, "service")
                       + identity.endpoints(ctx, self.name, self.service_type, self.service_description,
                                            ctx.url(self.port(ctx))))

    def cleanup(self, ctx: "Context") -> None:
        super().cleanup(ctx)
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)
