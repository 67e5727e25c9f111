"""Ceilometer, the Telemetry service, as the devstack plugin in Ceilometer's own repository
(``devstack/plugin.sh`` and ``devstack/settings``) sets it up: this recipe answers
``enable_plugin ceilometer URL [REF]`` (URL and REF become CEILOMETER_REPO / CEILOMETER_BRANCH;
the plugin's settings enable ceilometer-acompute, ceilometer-acentral,
ceilometer-anotification, and gnocchi-api and gnocchi-metricd for its default backend), and the
ceilometer-* services enabled without that line run too (with a warning that devstack would
need it). ``ceilometer`` is their group name (the plugin's ``is_ceilometer_enabled``:
any ``ceilometer-*``). The seed post's ``ceilometer-collector`` and ``ceilometer-api`` are gone
from Ceilometer since Queens (see :mod:`.names`): enabling them warns and runs nothing.

Services (devstack's names), each in its own window, from the stack's venv:

- ``ceilometer-acentral``: ``ceilometer-polling --polling-namespaces central``, the pollsters that
  ask the services' APIs (image.size through Glance's API ...).
- ``ceilometer-anotification``: ``ceilometer-agent-notification``, which turns the services'
  notifications (on RabbitMQ's ``notifications`` topic) and the polling agents' samples into
  samples and events, and publishes them through the pipelines.
- ``ceilometer-acompute``: ``ceilometer-polling --polling-namespaces compute``, the pollsters
  that ask this host's libvirtd about Nova's instances (Ceilometer's defaults: the libvirt
  inspector at ``qemu:///system``, the instances found in libvirt's domain metadata). It runs
  only where that means something: n-cpu enabled with VIRT_DRIVER=libvirt (then libvirtd of
  :mod:`.libvirt` runs here, as root, and the agent with it); otherwise ``plan`` says it is left
  out and why.
- ``ceilometer-aipmi`` (off in the plugin too) is refused: it reads the host's BMC through
  ipmitool and root's rootwrap.

ceilometer.conf is configure_ceilometer's: the message bus, the notification topics
(CEILOMETER_NOTIFICATION_TOPICS), ``[compute] fetch_extra_metadata``, coordination in Redis
(:mod:`.redis`; CEILOMETER_COORDINATION_URL, the plugin's ``redis://localhost:6379``, names
this stack's Redis here) with API_WORKERS notification workers, the cache (memcached, when the
stack runs it), ``[service_credentials]`` as the ceilometer user. Beside it, as the plugin
copies them: ``polling.yaml`` from ``etc/ceilometer/polling_all.yaml`` with every interval set
to CEILOMETER_PIPELINE_INTERVAL when given (300 s otherwise), and the pipeline files from
``ceilometer/pipeline/data``, whose publisher lines are replaced by the backends' (Gnocchi:
``gnocchi://?archive_policy=$GNOCCHI_ARCHIVE_POLICY&filter_project=service``);
CEILOMETER_EVENT_ALARM=True adds ``notifier://?topic=alarm.all`` to the event pipeline.
``[polling] heartbeat_socket_dir`` (under ``$DATA_DIR/ceilometer``) is stackmagic's: the
polling agents answer there, which is their health check.

Backends (CEILOMETER_BACKENDS, a comma list; CEILOMETER_BACKEND is added to it; ``gnocchi``
when both are empty): ``gnocchi`` runs (:mod:`.gnocchi`, brought by Ceilometer's need of a
``metric`` store); ``none`` runs the agents with the pipeline files as Ceilometer ships them,
as the plugin does (their ``gnocchi://`` publisher then has nothing to reach); ``sg-core`` is
refused: it is a Go program (infrawatch/sg-core) that neither Debian nor PyPI packages.

Order, as start_ceilometer: Gnocchi's API and metricd run and its ``metric`` endpoint exists,
the ceilometer user exists, then ``ceilometer-upgrade`` (Gnocchi's resource types for
Ceilometer; init here), then the agents start.

Health: the polling agents when their heartbeat socket answers; the notification agent when
RabbitMQ counts a consumer on ``notifications.info``, asked over AMQP (``ceilometer_script.py``).

Notifications: with Ceilometer enabled the emitting projects send them (devstack's
``if is_service_enabled ceilometer`` blocks in lib/glance, lib/cinder, lib/neutron, lib/nova):
:func:`emit_notifications` is what their modules call.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity, ini
from stackmagic.catalog import memcached, rabbit, redis
from stackmagic.catalog.api_service import configure_keystoneauth
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.catalog.gnocchi import Gnocchi, backends, backends_of
from stackmagic.errors import ConfigError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "ceilometer_script.py"
#: the plugin's backends and what each publishes to (sg-core: refused, see REFUSED)
PUBLISHERS = {"gnocchi": "gnocchi://?archive_policy={policy}&filter_project=service"}
REFUSED = {
    "sg-core": "sg-core (infrawatch/sg-core, the Prometheus-facing backend) is a Go program that "
               "neither Debian 12 nor PyPI packages (the plugin's CI runs it from a container image)",
}
#: where the notification agent listens (CEILOMETER_NOTIFICATION_TOPICS' first topic, .info)
NOTIFICATION_QUEUE = "{topic}.info"
POLLING = {"ceilometer-acentral": "central", "ceilometer-acompute": "compute"}


def emit_notifications(ctx: "Context", conf: Path) -> None:
    """The ``if is_service_enabled ceilometer`` block of devstack's lib/glance, lib/cinder,
    lib/neutron and lib/nova, shared: with Ceilometer enabled, ``conf``'s service sends its
    notifications (``[oslo_messaging_notifications] driver = messagingv2``) to this stack's
    message bus, where the notification agent hears them; without it, nothing is sent and the
    two options go again (a stack that had Ceilometer before stops sending)."""
    section = "oslo_messaging_notifications"
    if ctx.config.is_service_enabled("ceilometer"):
        ctx.iniset(conf, section, "driver", "messagingv2")
        ctx.iniset(conf, section, "transport_url", rabbit.transport_url(ctx))
    elif conf.exists():
        for key in ("driver", "transport_url"):
            ini.inidelete(conf, section, key)


def _interval(ctx: "Context") -> int | None:
    """CEILOMETER_PIPELINE_INTERVAL's seconds, None when unset (a bad value was refused when the
    configuration was read: see setting_problems)."""
    value = (ctx.settings.get("CEILOMETER_PIPELINE_INTERVAL") or "").strip()
    return int(value) if value else None


def _interval_problem(values) -> str | None:
    value = (values.get("CEILOMETER_PIPELINE_INTERVAL") or "").strip()
    if value and (not value.isdigit() or int(value) < 1):
        return (f"CEILOMETER_PIPELINE_INTERVAL={value!r}: give the seconds between two polls as a "
                "whole number (at least 1), or leave it unset for 300")
    return None


def _backends_problem(values) -> str | None:
    """What is wrong with CEILOMETER_BACKENDS (and CEILOMETER_BACKEND), with what to set."""
    chosen = backends_of(values)
    for name in chosen:
        if name in REFUSED or (name not in PUBLISHERS and name != "none"):
            why = REFUSED.get(name, "the ceilometer plugin knows gnocchi, sg-core and none")
            return (f"CEILOMETER_BACKENDS names {name!r}, which cannot run here: {why}. Set "
                    "CEILOMETER_BACKENDS=gnocchi (the plugin's default: Gnocchi stores the measures) "
                    "or CEILOMETER_BACKENDS=none.")
    if "none" in chosen and len(chosen) > 1:
        return (f"CEILOMETER_BACKENDS={','.join(chosen)}: 'none' cannot go with another backend; "
                "name one of them")
    return None


class Ceilometer(Project):
    name = "ceilometer"
    group = "ceilometer"
    services = {
        "ceilometer-acentral": "Telemetry central polling agent",
        "ceilometer-anotification": "Telemetry notification agent",
        "ceilometer-acompute": "Telemetry compute polling agent (libvirt)",
        "ceilometer-aipmi": "Telemetry IPMI polling agent",
    }
    repo = "openstack/ceilometer"
    pypi = "ceilometer"
    devstack_plugin = "ceilometer"
    # devstack/settings of the plugin: its agents, and Gnocchi for its default backend
    plugin_services = ("ceilometer-acompute", "ceilometer-acentral", "ceilometer-anotification",
                       "gnocchi-api", "gnocchi-metricd")
    requirements = ("redis",)           # tooz's redis driver (the coordination)
    requires = (Need("identity", before="accounts"), Need("message-bus", before="start"),
                Need("redis", before="start"),
                # Gnocchi, while CEILOMETER_BACKENDS names it: ceilometer-upgrade talks to it
                Need("metric", before="init", optional=True))
    # ceilometer-upgrade (init) authenticates as the ceilometer user
    own_order = (("accounts", "init"),)

    # -- settings -----------------------------------------------------------------------------
    def conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("CEILOMETER_CONF")

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx)]

    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "ceilometer"

    @classmethod
    def setting_problems(cls, values, enabled) -> list[tuple[str, str]]:
        """CEILOMETER_BACKENDS and CEILOMETER_PIPELINE_INTERVAL, checked when the configuration
        is read."""
        found = [("CEILOMETER_BACKENDS", _backends_problem(values)),
                 ("CEILOMETER_PIPELINE_INTERVAL", _interval_problem(values))]
        return [(name, problem) for name, problem in found if problem]

    def backends(self, ctx: "Context") -> list[str]:
        """CEILOMETER_BACKENDS (one this recipe cannot run was refused when the configuration
        was read: see setting_problems)."""
        return backends(ctx)

    def enabled_services(self, ctx: "Context") -> list[str]:
        """The enabled agents that run here (the compute agent only beside n-cpu on libvirt)."""
        return [s for s in super().enabled_services(ctx)
                if s != "ceilometer-acompute" or not self.compute_agent(ctx)]

    def compute_agent(self, ctx: "Context") -> str | None:
        """Why ceilometer-acompute does not run here (None: it runs)."""
        cfg = ctx.config
        if not cfg.is_service_enabled("ceilometer-acompute"):
            return None
        driver = ctx.settings.get("VIRT_DRIVER") or "libvirt"
        if not cfg.is_service_enabled("n-cpu") or driver != "libvirt":
            return ("it polls the instances of this host's nova-compute through libvirt, and "
                    + ("n-cpu is not enabled" if not cfg.is_service_enabled("n-cpu")
                       else f"VIRT_DRIVER={driver}, not libvirt"))
        return None

    def _check(self, ctx: "Context") -> list[str]:
        """What is refused before anything is built; the backends."""
        if ctx.config.is_service_enabled("ceilometer-aipmi"):
            raise ConfigError("ceilometer-aipmi is not offered by stackmagic: it reads the host's "
                              "BMC through ipmitool, as root through rootwrap; disable_service "
                              "ceilometer-aipmi (the plugin leaves it off too)")
        return self.backends(ctx)

    def plan_notes(self, ctx: "Context") -> list[str]:
        try:
            chosen = self._check(ctx)
        except ConfigError as err:
            return [f"ceilometer: {err}"]
        interval = _interval(ctx)
        notes = [f"ceilometer: publishes to {', '.join(chosen)} (CEILOMETER_BACKENDS), polls every "
                 f"{interval or 300} s ({'CEILOMETER_PIPELINE_INTERVAL' if interval else 'polling.yaml default'})"
                 + ("; 'none': the pipelines keep the gnocchi:// publisher Ceilometer ships, which "
                    "reaches nothing, as under devstack" if chosen == ["none"] else "")]
        why = self.compute_agent(ctx)
        if why:
            notes.append(f"ceilometer: ceilometer-acompute is enabled but not started: {why}")
        return notes

    # -- lifecycle ----------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        """configure_ceilometer."""
        chosen = self._check(ctx)
        conf, s = self.conf(ctx), ctx.settings
        confdir = conf.parent
        confdir.mkdir(parents=True, exist_ok=True)
        self.data_dir(ctx).mkdir(parents=True, exist_ok=True)
        rabbit.iniset_rpc_backend(ctx, conf)
        coordination = s.get("CEILOMETER_COORDINATION_URL") or redis.url(ctx)
        for section, key, value in (
            ("oslo_messaging_notifications", "topics", self.topics(ctx)),
            ("DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True)),
            ("compute", "fetch_extra_metadata", s.bool("CEILOMETER_COMPUTE_FETCH_EXTRA_METADATA", True)),
            ("coordination", "backend_url", coordination),
            ("notification", "workers", s.api_workers),
            ("polling", "heartbeat_socket_dir", self.data_dir(ctx)),
            ("polling", "cfg_file", confdir / "polling.yaml"),
            ("DEFAULT", "pipeline_cfg_file", confdir / "pipeline.yaml"),
            ("DEFAULT", "event_pipeline_cfg_file", confdir / "event_pipeline.yaml"),
        ):
            ctx.iniset(conf, section, key, value)
        cache = memcached.servers(ctx)
        # the plugin's CEILOMETER_ENABLE_CACHE; devstack always runs memcached, a stack here may not
        ctx.iniset(conf, "cache", "enabled", bool(cache) and s.bool("CEILOMETER_ENABLE_CACHE", True))
        if cache:
            ctx.iniset(conf, "cache", "backend", s.get("CACHE_BACKEND") or "dogpile.cache.memcached")
            ctx.iniset(conf, "cache", "memcache_servers", cache)
        configure_keystoneauth(ctx, conf, "service_credentials", "ceilometer")
        self._definitions(ctx, confdir, chosen)

    def topics(self, ctx: "Context") -> str:
        return ctx.settings.get("CEILOMETER_NOTIFICATION_TOPICS") or "notifications"

    def _definitions(self, ctx: "Context", confdir: Path, chosen: list[str]) -> None:
        """polling.yaml and the pipelines, copied from the source tree and edited as the plugin."""
        src, s = self.source_dir(ctx), ctx.settings
        polling = (src / "etc" / "ceilometer" / "polling_all.yaml").read_text()
        interval = _interval(ctx)
        if interval:
            polling = re.sub(r"interval:.*", f"interval: {interval}", polling)
        ctx.write_file(confdir / "polling.yaml", polling)
        policy = (s.get("GNOCCHI_ARCHIVE_POLICY_TEMPEST") or s.get("GNOCCHI_ARCHIVE_POLICY")
                  or "ceilometer-low")
        publishers = [PUBLISHERS[b].format(policy=policy) for b in chosen if b in PUBLISHERS]
        for path in sorted((src / "ceilometer" / "pipeline" / "data").glob("*.yaml")):
            text = path.read_text()
            if path.name in ("pipeline.yaml", "event_pipeline.yaml") and publishers:
                # the plugin's `head -n -1` and echo: the shipped publisher goes, the backends' come
                lines = text.rstrip("\n").split("\n")[:-1]
                text = "\n".join(lines + [f"          - {p}" for p in publishers]) + "\n"
            if path.name == "event_pipeline.yaml" and s.bool("CEILOMETER_EVENT_ALARM", False):
                text = re.sub(r"^( *)publishers:\n", r"\1publishers:\n\1    - notifier://?topic=alarm.all\n",
                              text, count=1, flags=re.M)
            ctx.write_file(confdir / path.name, text)

    def init(self, ctx: "Context") -> None:
        """start_ceilometer's ``ceilometer-upgrade``: Gnocchi's resource types for Ceilometer."""
        if "gnocchi" not in self._check(ctx) or not Gnocchi().runs(ctx, "gnocchi-api"):
            return
        ctx.run(ctx.venv.bin("ceilometer-upgrade"), "--config-file", self.conf(ctx), "--retry", "10",
                cwd=self.conf(ctx).parent, timeout=300)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        self._check(ctx)
        conf, cfg = self.conf(ctx), ctx.config
        for service, namespace in POLLING.items():
            if not cfg.is_service_enabled(service) or (service == "ceilometer-acompute"
                                                       and self.compute_agent(ctx)):
                continue
            socket = self.data_dir(ctx) / f"ceilometer-{namespace}.socket"
            yield Process(service, [str(ctx.venv.bin("ceilometer-polling")), "--polling-namespaces",
                                    namespace, "--config-file", str(conf)], cwd=conf.parent,
                          health=CommandCheck((str(ctx.venv.python), str(SCRIPT), "heartbeat",
                                               "--socket", str(socket))), timeout=90,
                          after=("libvirtd",) if namespace == "compute" else ())
        if cfg.is_service_enabled("ceilometer-anotification"):
            queue = NOTIFICATION_QUEUE.format(topic=self.topics(ctx).split(",")[0].strip())
            health = CommandCheck((str(ctx.venv.python), str(SCRIPT), "consumers", "--conf",
                                   str(conf), "--queue", queue), timeout=20)
            yield Process("ceilometer-anotification",
                          [str(ctx.venv.bin("ceilometer-agent-notification")), "--config-file", str(conf)],
                          cwd=conf.parent, health=health, timeout=120)

    def accounts(self, ctx: "Context") -> None:
        """ceilometer_create_accounts: the ceilometer user (admin); ResellerAdmin with Swift."""
        project = ctx.settings.get("SERVICE_PROJECT_NAME") or "service"
        ops = identity.service_user(ctx, self.name, "service", "admin")
        if ctx.config.is_service_enabled("swift"):
            # Ceilometer reads Swift's account stats as ResellerAdmin
            ops.append({"op": "grant", "role": "ResellerAdmin", "user": self.name, "project": project})
        identity.apply(ctx, ops)

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """The plugin's test-config: telemetry-tempest-plugin's alarm settings."""
        s = ctx.settings
        return [("telemetry", key, s.get(setting) or default) for key, setting, default in (
            ("alarm_granularity", "CEILOMETER_ALARM_GRANULARITY", "60"),
            ("alarm_threshold", "CEILOMETER_ALARM_THRESHOLD", "10000000"),
            ("alarm_metric_name", "CEILOMETER_ALARM_METRIC_NAME", "cpu"),
            ("alarm_aggregation_method", "CEILOMETER_ALARM_AGGREGATION_METHOD", "rate:mean"))]

    def cleanup(self, ctx: "Context") -> None:
        """cleanup_ceilometer: its config directory; and the heartbeat sockets."""
        shutil.rmtree(self.conf(ctx).parent, ignore_errors=True)
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)
