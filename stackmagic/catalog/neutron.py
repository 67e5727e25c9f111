"""Neutron, the Networking service, in devstack's default layout: ML2 with the OVN mechanism
driver (devstack's lib/neutron, lib/neutron_plugins/ml2 and lib/neutron_plugins/ovn_agent).

Services and what runs for them (each its own tmux window):

- ``q-svc``: the API (``neutron.wsgi.api:application`` under gunicorn, one worker: the OVN
  driver keeps its database connections per worker), and, as devstack's
  ``start_neutron_service_and_check`` does, ``neutron-rpc-server``,
  ``neutron-periodic-workers`` and ``neutron-ovn-maintenance-worker``.
- ``q-ovn-agent``: ``neutron-ovn-agent`` with its ``metadata`` extension: for every network
  with a port on this chassis it makes an ``ovnmeta-<network>`` namespace with haproxy on
  169.254.169.254 that forwards to Nova's metadata API (``n-api-meta``). Runs as root.

configure: neutron.conf, ``plugins/ml2/ml2_conf.ini`` (``Q_PLUGIN_CONF_FILE``) and
``plugins/ml2/ovn_agent.ini``; init: ``neutron-db-manage upgrade head``; accounts: the neutron
user and the ``network`` endpoints; data: devstack's initial networks (:mod:`stackmagic.networks`):
``public`` with FLOATING_RANGE on the ``public`` physical network (br-ex), ``private`` in the
demo project from the default subnet pools, ``router1`` between them, and default security group
rules that let ping and SSH in. The provider side (the gateway address devstack puts on br-ex in
the host) lives in stackmagic's provider namespace (:mod:`stackmagic.provider`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.api_service import ApiService, configure_keystoneauth
from stackmagic.catalog.base import Need, Process
from stackmagic.catalog.ceilometer import emit_notifications
from stackmagic.catalog.wsgi import gunicorn
from stackmagic.config.layout import NEW_NAMES
from stackmagic.errors import ConfigError
from stackmagic.health import CommandCheck
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "neutron_script.py"
#: neutron-server's processes beside the API (devstack's enable_neutron_server_services)
SERVER_WORKERS = ("neutron-rpc-server", "neutron-periodic-workers", "neutron-ovn-maintenance-worker")
#: the agent layout's services (config.layout sets the OVN ones aside when one is enabled)
AGENT_SERVICES = ("q-agt", "q-dhcp", "q-l3", "q-meta")
#: agent service -> (its program, its own config file under plugins/ or the conf dir, agent_type)
AGENT_PROGRAMS = {"q-agt": ("neutron-openvswitch-agent", None, "Open vSwitch agent"),
                  "q-dhcp": ("neutron-dhcp-agent", "dhcp_agent.ini", "DHCP agent"),
                  "q-l3": ("neutron-l3-agent", "l3_agent.ini", "L3 agent"),
                  "q-meta": ("neutron-metadata-agent", "metadata_agent.ini", "Metadata agent")}
#: the namespaces the agent layout makes (dnsmasq, the routers' haproxy and radvd run in them)
AGENT_NAMESPACES = ("qdhcp-", "qrouter-")
#: the privsep contexts of neutron.privileged, each with its own config section
PRIVSEP_SECTIONS = ("privsep", "privsep_dhcp_release", "privsep_ovs_vsctl", "privsep_namespace",
                    "privsep_conntrack", "privsep_link")


def privsep_helpers(ctx: "Context", conf: Path, *configs: Path) -> None:
    """In ``conf``, every privsep context's helper_command: the venv's privsep-helper, started
    directly (the agents run as root here: no sudo, no rootwrap), reading ``configs``."""
    command = " ".join([str(ctx.venv.bin("privsep-helper")), *(f"--config-file {c}" for c in configs)])
    for section in PRIVSEP_SECTIONS:
        ctx.iniset(conf, section, "helper_command", command)


def end_leftovers(ctx: "Context", prefixes: tuple[str, ...]) -> list[str]:
    """After the agents stopped: end what they started that outlives them, by the pid files
    they wrote under our state path — OVN's metadata proxies (``external/pids/<network>.pid``,
    whose ``ovnmeta-<network>`` namespaces go too), the L3 agent's haproxy and radvd
    (``<router>.pid``, ``<router>.pid.radvd``) and the DHCP agent's dnsmasq
    (``dhcp/<network>/pid``). haproxy, radvd and dnsmasq daemonize: stopping an agent leaves
    them running, and the L3 agent respawns radvd while it lives. A pid is ended only while
    its command line still names our state path (not a later process given the same pid).
    Then the namespaces whose names start with ``prefixes`` go with whatever still runs in
    them; their names are returned."""
    import os
    import signal
    import subprocess

    from stackmagic import provider
    from stackmagic.process_info import alive

    state = ctx.settings.data_dir / "neutron"
    pidfiles = [*sorted((state / "external" / "pids").glob("*.pid*")), *sorted(state.glob("dhcp/*/pid"))]
    for pidfile in pidfiles:
        try:
            pid = int(pidfile.read_text().strip())
            ours = str(state) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            ours = False
        if ours and alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        pidfile.unlink(missing_ok=True)
        namespace = f"ovnmeta-{pidfile.stem}"
        if pidfile.suffix == ".pid" and Path("/run/netns", namespace).exists():
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
            ctx.log(f"removed namespace {namespace}")
    return [ns for prefix in prefixes for ns in provider.remove_namespaces(ctx, prefix)]


def take_over_switch(ctx: "Context", layout: str) -> bool:
    """Before ``layout`` ("ovn" or "openvswitch") sets up the switch: when the other layout
    set it up last, remove what it left in namespaces (its processes were stopped before this
    stack began) — the agents' qdhcp-/qrouter- namespaces with their dnsmasq, haproxy and
    radvd, or OVN's ovnmeta- namespaces and metadata ports — while their ports are still on
    its bridges (that is how they are known as this stack's), then its bridges
    (:func:`~stackmagic.catalog.openvswitch.claim_bridges`). True when the layout changed."""
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.catalog.ovn import neutron_bridges

    before = ovs.bridges_owner(ctx)
    if before and before != layout:
        gone = end_leftovers(ctx, AGENT_NAMESPACES if before == "openvswitch" else ("ovnmeta-",))
        if gone:
            ctx.log(f"removed what the {before} layout left: {', '.join(gone)}")
    return ovs.claim_bridges(ctx, layout, neutron_bridges(ctx), before)


class Neutron(ApiService):
    name = "neutron"
    group = "neutron"
    services = {"q-svc": "Networking API server (neutron-server)",
                "q-ovn-agent": "Neutron OVN agent (metadata)",
                "q-agt": "Open vSwitch L2 agent (the agent layout)",
                "q-dhcp": "DHCP agent: dnsmasq in qdhcp-* namespaces",
                "q-l3": "L3 agent: routers, SNAT and floating IPs in qrouter-* namespaces",
                "q-meta": "metadata agent: the guests' metadata, proxied to Nova"}
    repo, pypi = "openstack/neutron", "neutron"
    requirements = ("gunicorn", "openstacksdk")
    system_packages = ("haproxy", "iproute2", "iptables")   # iptables: the checksum fix in ovnmeta-*
    api, app, health_path = "q-svc", "neutron.wsgi.api:application", "/"
    conf_setting, port_setting, default_port = "NEUTRON_CONF", "Q_PORT", 9696
    database, manage = "neutron", "neutron-db-manage"
    scope_setting = "NEUTRON_ENFORCE_SCOPE"
    service_type, service_description = "network", "Neutron Service"
    requires = (Need("database", before="init"), Need("identity", before="accounts"),
                Need("message-bus", before="start"), Need("vswitch", before="init"),
                # the OVN layout's (the agent layout sets OVN aside and makes its own outside)
                Need("ovn", before="start", optional=True),
                Need("provider-network", before="data", optional=True))

    def packages(self, ctx: "Context") -> tuple[str, ...]:
        """devstack's files/debs/neutron-agent and neutron-l3 for the agent layout: dnsmasq
        (and dhcp_release), radvd (IPv6 router advertisements), arping, conntrack."""
        if ctx.config.layout != "openvswitch":
            return self.system_packages
        return (*self.system_packages, "dnsmasq-base", "dnsmasq-utils", "radvd", "iputils-arping",
                "conntrack")

    # -- where things are ----------------------------------------------------------------
    def plugin_conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("Q_PLUGIN_CONF_FILE")

    def agent_conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("OVN_AGENT_CONF", self.conf(ctx).parent / "plugins" / "ml2" / "ovn_agent.ini")

    def state_path(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "neutron"

    def config_files(self, ctx: "Context") -> list[Path]:
        if self.agents(ctx):
            inis = [self.agent_ini(ctx, a) for a in AGENT_SERVICES[1:]
                    if ctx.config.is_service_enabled(a)]
            return [self.conf(ctx), self.plugin_conf(ctx), *inis]
        return [self.conf(ctx), self.plugin_conf(ctx), self.agent_conf(ctx)]

    def env(self, ctx: "Context") -> dict[str, str]:
        # neutron.server reads OS_NEUTRON_CONFIG_DIR / OS_NEUTRON_CONFIG_FILES (';'-separated,
        # relative to the dir) when the WSGI app loads: neutron.conf and the ML2 plugin's file
        return {"OS_NEUTRON_CONFIG_DIR": str(self.conf(ctx).parent),
                "OS_NEUTRON_CONFIG_FILES": f"{self.conf(ctx).name};{self.plugin_conf(ctx)}"}

    @staticmethod
    def layout(ctx: "Context") -> str:
        """"ovn" (devstack's default) or "openvswitch" (the agents), as the config decided
        (:mod:`stackmagic.config.layout`); the OVN layout needs its services."""
        layout = ctx.config.layout
        if layout == "ovn" and ctx.config.is_service_enabled("q-svc") and not ctx.config.is_service_enabled(
                "ovn-northd", "ovn-controller"):
            raise ConfigError("Neutron's default layout (ML2/OVN) needs ovn-northd and ovn-controller, "
                              "which are disabled: enable them again, or choose the agent layout "
                              "with enable_service q-agt q-dhcp q-l3 q-meta")
        return layout

    def agents(self, ctx: "Context") -> bool:
        return self.layout(ctx) == "openvswitch"

    def plan_notes(self, ctx: "Context") -> list[str]:
        if not ctx.config.is_service_enabled("q-svc"):
            return []
        renamed = [f"{new} runs as {q[0]}" for new, q in ctx.config.renamed.items() if new in NEW_NAMES]
        notes = [f"neutron: {', '.join(renamed)} (devstack's lib/neutron names for the same "
                 "services)"] if renamed else []
        if not self.agents(ctx):
            return [*notes, "neutron: ML2/OVN (devstack's default): OVN's own DHCP, routers and "
                    "floating IPs in ovn-northd's logical routers; metadata through q-ovn-agent's haproxy"]
        aside = sorted(ctx.config.set_aside)
        why = (", ".join(s for s in AGENT_SERVICES if ctx.config.is_service_enabled(s))
               if any(ctx.config.is_service_enabled(s) for s in AGENT_SERVICES) else "Q_AGENT=openvswitch")
        notes += [f"neutron: ML2/Open vSwitch with agents, because the localrc enables {why}"
                 + (f"; {', '.join(aside)} not started (the OVN layout's)" if aside else ""),
                 "neutron: the q- names are from Neutron's first name, Quantum: q-svc the server, "
                 "q-agt the Open vSwitch L2 agent, q-dhcp dnsmasq per network, q-l3 routers and "
                 "floating IPs in namespaces, q-meta the metadata proxy; `neutron` is the group of them all"]
        if self.use_veth(ctx):
            notes.append("neutron: DHCP and router ports are veth pairs (ovs_use_veth), since the "
                         "userspace datapath cannot serve its own ports moved into namespaces")
        return notes

    @staticmethod
    def use_veth(ctx: "Context") -> bool:
        """devstack's Q_OVS_USE_VETH; on the userspace datapath it must be on."""
        from stackmagic.catalog import openvswitch as ovs

        return ctx.settings.bool("Q_OVS_USE_VETH", ovs.datapath(ctx)[0] == "netdev")

    # -- configure ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        from stackmagic.catalog import ovn, rabbit

        self.layout(ctx)
        super().configure(ctx)
        s, conf = ctx.settings, self.conf(ctx)
        state = self.state_path(ctx)
        (state / "lock").mkdir(parents=True, exist_ok=True)
        src = self.source_dir(ctx)
        paste = src / "etc" / "neutron" / "api-paste.ini"
        if paste.exists():
            shutil.copy(paste, conf.parent / "api-paste.ini")
        d = "DEFAULT"
        for key, value in (
            ("core_plugin", "ml2"), ("service_plugins", self.service_plugins(ctx)),
            ("auth_strategy", "keystone"), ("state_path", state),
            ("bind_host", s.get("Q_LISTEN_ADDRESS") or s.service_listen),
            ("bind_port", self.port(ctx)), ("api_paste_config", conf.parent / "api-paste.ini"),
            ("api_workers", 1), ("rpc_workers", 1), ("rpc_state_report_workers", 0),
            ("notify_nova_on_port_status_changes", s.bool("Q_NOTIFY_NOVA_PORT_STATUS_CHANGES", True)),
            ("notify_nova_on_port_data_changes", s.bool("Q_NOTIFY_NOVA_PORT_DATA_CHANGES", True)),
            ("dhcp_agent_notification", ctx.config.is_service_enabled("q-dhcp")),
            ("allow_overlapping_ips", s.bool("Q_ALLOW_OVERLAPPING_IP", True)),
            ("transport_url", rabbit.transport_url(ctx)),
        ):
            ctx.iniset(conf, d, key, value)
        ctx.iniset(conf, "oslo_concurrency", "lock_path", state / "lock")
        emit_notifications(ctx, conf)
        ctx.iniset(conf, "ovs", "igmp_snooping_enable", s.bool("OVN_IGMP_SNOOPING_ENABLE", False))
        ctx.iniset(conf, "oslo_policy", "enforce_new_defaults",
                   s.bool("NEUTRON_ENFORCE_NEW_DEFAULTS", True))
        for section, user in (("nova", "nova"), ("placement", "placement")):
            configure_keystoneauth(ctx, conf, section, user)
        if s.get("VIRT_DRIVER") == "fake":
            for quota in ("network", "subnet", "port", "security_group", "security_group_rule"):
                ctx.iniset(conf, "quotas", f"quota_{quota}", -1)
        self._privsep(ctx, conf)
        self._ml2(ctx, ovn)
        if self.agents(ctx):
            self._agent_layout(ctx)
        else:
            self._agent(ctx, ovn)

    def service_plugins(self, ctx: "Context") -> str:
        default = "router" if self.agents(ctx) else "ovn-router"
        plugins = [ctx.settings.get("ML2_L3_PLUGIN", default) or ""]
        extra = ctx.settings.get("Q_SERVICE_PLUGIN_CLASSES") or ""
        return ",".join(p for p in [*plugins, *extra.split(",")] if p.strip())

    def _privsep(self, ctx: "Context", conf: Path) -> None:
        """Root helpers: every agent runs as root here, so privsep's daemons start directly
        (no sudo, no rootwrap) and commands need no root helper."""
        privsep_helpers(ctx, conf, conf, *([] if self.agents(ctx) else [self.agent_conf(ctx)]))
        ctx.iniset(conf, "agent", "root_helper", "")

    def _ml2(self, ctx: "Context", ovn) -> None:
        s, ml2 = ctx.settings, self.plugin_conf(ctx)
        physnet = s.get("PUBLIC_PHYSICAL_NETWORK") or "public"
        phys = [p for p in dict.fromkeys([s.get("PHYSICAL_NETWORK") or "public", physnet]) if p]
        ext_drivers = s.get("Q_ML2_PLUGIN_EXT_DRIVERS") or "port_security"
        common = (("ml2", "extension_drivers", ext_drivers),
                  ("ml2", "overlay_ip_version", s.get("TUNNEL_IP_VERSION") or "4"),
                  ("ml2_type_flat", "flat_networks", ",".join(phys)),
                  ("ml2_type_vlan", "network_vlan_ranges", ",".join(phys)),
                  ("securitygroup", "enable_security_group", s.bool("Q_USE_SECGROUP", True)))
        for section, key, value in common:
            ctx.iniset(ml2, section, key, value)
        if self.agents(ctx):
            self._ml2_openvswitch(ctx, ml2, physnet)
            return
        for section, key, value in (
            ("ml2", "type_drivers", s.get("Q_ML2_PLUGIN_TYPE_DRIVERS") or "local,flat,vlan,geneve"),
            ("ml2", "tenant_network_types", s.get("Q_ML2_TENANT_NETWORK_TYPE") or "geneve"),
            ("ml2", "mechanism_drivers", s.get("Q_ML2_PLUGIN_MECHANISM_DRIVERS") or "ovn"),
            ("ml2_type_geneve", "vni_ranges", "1:65536"),
            ("ml2_type_geneve", "max_header_size", s.int("OVN_GENEVE_OVERHEAD", 38)),
            ("ovn", "ovn_nb_connection", ovn.nb_connection(ctx)),
            ("ovn", "ovn_sb_connection", ovn.sb_connection(ctx)),
            ("ovn", "neutron_sync_mode", s.get("OVN_NEUTRON_SYNC_MODE") or "log"),
            ("ovn", "ovn_l3_scheduler", s.get("OVN_L3_SCHEDULER") or "leastloaded"),
            ("ovn", "ovn_metadata_enabled", ctx.config.is_service_enabled("q-ovn-agent")),
        ):
            ctx.iniset(ml2, section, key, value)

    def _ml2_openvswitch(self, ctx: "Context", ml2: Path, physnet: str) -> None:
        """lib/neutron_plugins/ml2 and openvswitch_agent: ML2 with the openvswitch mechanism
        driver, VXLAN tenant networks, the agent's bridges on the switch's datapath, the native
        Open vSwitch firewall (conntrack: the userspace datapath has its own)."""
        from stackmagic.catalog import openvswitch as ovs
        from stackmagic.catalog.ovn import integration_bridge, public_bridge

        s = ctx.settings
        tunnel = s.get("Q_ML2_TENANT_NETWORK_TYPE") or "vxlan"
        mappings = s.get("OVS_BRIDGE_MAPPINGS") or f"{physnet}:{public_bridge(ctx)}"
        for section, key, value in (
            ("ml2", "type_drivers", s.get("Q_ML2_PLUGIN_TYPE_DRIVERS") or "local,flat,vlan,gre,vxlan"),
            ("ml2", "tenant_network_types", tunnel),
            ("ml2", "mechanism_drivers", s.get("Q_ML2_PLUGIN_MECHANISM_DRIVERS") or "openvswitch"),
            ("ml2_type_vxlan", "vni_ranges", s.get("Q_ML2_PLUGIN_VXLAN_TYPE_OPTIONS_VNI") or "1:1000"),
            ("ml2_type_gre", "tunnel_id_ranges", "1:1000"),
            ("securitygroup", "firewall_driver",
             "openvswitch" if s.bool("Q_USE_SECGROUP", True) else "noop"),
            ("ovs", "integration_bridge", integration_bridge(ctx)),
            ("ovs", "tunnel_bridge", s.get("OVS_TUNNEL_BRIDGE") or "br-tun"),
            ("ovs", "local_ip", s.get("TUNNEL_ENDPOINT_IP") or s.host_ip),
            ("ovs", "bridge_mappings", mappings),
            ("ovs", "datapath_type", ovs.datapath(ctx)[0]),
            ("ovs", "ovsdb_connection", ovs.ovsdb_connection(ctx)),
            ("ovs", "of_listen_address", s.service_host),
            ("agent", "tunnel_types", s.get("Q_TUNNEL_TYPES") or tunnel),
            ("agent", "root_helper", ""),
        ):
            ctx.iniset(ml2, section, key, value)

    def agent_ini(self, ctx: "Context", service: str) -> Path:
        """The agent's own config file (q-agt's is the ML2 plugin's file, as devstack)."""
        name = AGENT_PROGRAMS[service][1]
        return self.conf(ctx).parent / name if name else self.plugin_conf(ctx)

    def _agent_layout(self, ctx: "Context") -> None:
        """devstack's _configure_neutron_dhcp_agent / _l3_agent / _metadata_agent. dnsmasq
        answers from its own leases only (no dnsmasq_local_resolv: nothing is forwarded off
        the machine); every port the DHCP and L3 agents plug is a veth pair on the userspace
        datapath (:meth:`use_veth`)."""
        from stackmagic.catalog import openvswitch as ovs
        from stackmagic.catalog.ovn import integration_bridge

        s, conf = ctx.settings, self.conf(ctx)
        ctx.iniset(conf, "ovs", "ovsdb_connection", ovs.ovsdb_connection(ctx))
        ctx.iniset(conf, "ovs", "integration_bridge", integration_bridge(ctx))
        common = (("DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True)),
                  ("agent", "root_helper", ""))
        plugged = (("DEFAULT", "interface_driver", "openvswitch"),
                   ("DEFAULT", "ovs_use_veth", self.use_veth(ctx)),
                   ("ovs", "integration_bridge", integration_bridge(ctx)),
                   ("ovs", "ovsdb_connection", ovs.ovsdb_connection(ctx)))
        own = {
            "q-dhcp": (*plugged, ("DEFAULT", "dnsmasq_local_resolv", False),
                       ("DEFAULT", "enable_isolated_metadata",
                        s.bool("ENABLE_ISOLATED_METADATA", False)
                        and not ctx.config.is_service_enabled("q-l3"))),
            "q-l3": plugged,
            "q-meta": (("DEFAULT", "nova_metadata_host", s.get("Q_META_DATA_IP") or s.service_host),
                       ("DEFAULT", "nova_metadata_port", s.int("METADATA_SERVICE_PORT", 8775)),
                       ("DEFAULT", "metadata_workers", 1)),
        }
        for service, options in own.items():
            if not ctx.config.is_service_enabled(service):
                continue
            ini = self.agent_ini(ctx, service)
            for section, key, value in (*common, *options):
                ctx.iniset(ini, section, key, value)
            privsep_helpers(ctx, ini, conf, ini)

    def _agent(self, ctx: "Context", ovn) -> None:
        s, agent = ctx.settings, self.agent_conf(ctx)
        for section, key, value in (
            ("DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True)),
            ("DEFAULT", "nova_metadata_host", s.get("OVN_META_DATA_HOST") or s.service_host),
            ("DEFAULT", "nova_metadata_port", s.int("METADATA_SERVICE_PORT", 8775)),
            ("DEFAULT", "metadata_workers", 1),
            ("DEFAULT", "state_path", self.state_path(ctx)),
            ("agent", "extensions", s.get("OVN_AGENT_EXTENSIONS") or "metadata"),
            ("agent", "root_helper", ""),
            ("ovs", "ovsdb_connection", ovn.ovsdb_connection(ctx)),
            ("ovn", "ovn_sb_connection", ovn.sb_connection(ctx)),
            ("ovn", "ovn_nb_connection", ovn.nb_connection(ctx)),
        ):
            ctx.iniset(agent, section, key, value)
        privsep_helpers(ctx, agent, agent)

    # -- init, processes --------------------------------------------------------------------
    def init(self, ctx: "Context") -> None:
        from stackmagic.catalog.database import Database

        marker = self.state_path(ctx) / "layout"
        before = marker.read_text().strip() if marker.exists() else None
        if before and before != self.layout(ctx):
            # networks of one layout do not carry over (geneve segments, OVN's own ports and
            # routers): Neutron starts anew, as devstack's stack.sh always makes its database
            ctx.log(f"Neutron's layout changed from {before} to {self.layout(ctx)}: its database "
                    "starts anew (the networks are made again)")
            Database.drop(ctx, self.database)
        Database.create(ctx, self.database)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.layout(ctx) + "\n")
        ctx.run(ctx.venv.bin(self.manage), "--config-file", self.conf(ctx), "--config-file",
                self.plugin_conf(ctx), "upgrade", "head", cwd=self.conf(ctx).parent)
        if self.agents(ctx):
            # devstack's _neutron_ovs_base_configure_l3_agent: the public bridge (the L2 agent
            # makes br-int and br-tun itself), on the switch's datapath
            from stackmagic.catalog import openvswitch as ovs
            from stackmagic.catalog.ovn import public_bridge

            take_over_switch(ctx, "openvswitch")
            ovs.add_bridge(ctx, public_bridge(ctx))
            ovs.vsctl(ctx, "--no-wait", "br-set-external-id", public_bridge(ctx), "bridge-id",
                      public_bridge(ctx))

    def processes(self, ctx: "Context") -> Iterable[Process]:
        s = ctx.settings
        conf_args = ["--config-file", str(self.conf(ctx)), "--config-file", str(self.plugin_conf(ctx))]
        cwd = ctx.conf_dir(self.name)
        if ctx.config.is_service_enabled("q-svc"):
            tmp = self.state_path(ctx) / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            # the OVN driver spreads OVSDB events over the API workers by a hash ring sized by
            # the worker count, which it reads from uWSGI or mod_wsgi, else ASGI_WORKERS; under
            # gunicorn it finds none ("The Neutron API workers count is zero") and drops every
            # event: no port ever goes ACTIVE. Its election files go to TMPDIR.
            server_env = {**self.env(ctx), "ASGI_WORKERS": "1", "TMPDIR": str(tmp)}
            yield gunicorn(ctx, self.api, self.name, self.app, self.port(ctx), env=server_env,
                           health_path=self.health_path, workers=1)
            workers = SERVER_WORKERS if not self.agents(ctx) else SERVER_WORKERS[:2]
            for worker in workers:
                # they stop slowly on SIGTERM (shared notes: >10 s): SIGKILL follows after 5 s
                yield Process(worker, [str(ctx.venv.bin(worker)), *conf_args], cwd=cwd,
                              env=server_env, after=(self.api,), stop_timeout=5.0)
        if self.agents(ctx):
            yield from self._agent_processes(ctx, cwd)
        if ctx.config.is_service_enabled("q-ovn-agent"):
            from stackmagic.catalog import ovn

            yield Process("q-ovn-agent", [str(ctx.venv.bin("neutron-ovn-agent")),
                                          "--config-file", str(self.agent_conf(ctx))],
                          cwd=cwd, needs_root=True, after=("ovn-controller",), stop_timeout=5.0,
                          health=self.agent_check(ctx, ovn), timeout=s.int("SERVICE_TIMEOUT", 90))

    def _agent_processes(self, ctx: "Context", cwd: Path) -> Iterable[Process]:
        """The agents, as root (no rootwrap, privsep helpers started directly); each healthy
        when Neutron counts it alive (its report since this start, in the agents table)."""
        s = ctx.settings
        for service in AGENT_SERVICES:
            if not ctx.config.is_service_enabled(service):
                continue
            program, _, agent_type = AGENT_PROGRAMS[service]
            ini = self.agent_ini(ctx, service)
            argv = [str(ctx.venv.bin(program)), "--config-file", str(self.conf(ctx))]
            if ini != self.conf(ctx):
                argv += ["--config-file", str(ini)]
            after = ("ovs-vswitchd", "neutron-rpc-server") if service == "q-agt" else \
                    ("q-agt", "neutron-rpc-server")
            check = CommandCheck((str(ctx.venv.python), str(SCRIPT), "agent-alive",
                                  "--conf", str(self.conf(ctx)), "--type", agent_type,
                                  "--log", str(s.logdir / f"{service}.log"), "--service", service),
                                 timeout=20)
            yield Process(service, argv, cwd=cwd, needs_root=True, after=after, stop_timeout=5.0,
                          health=check, timeout=s.int("SERVICE_TIMEOUT", 90))

    def agent_check(self, ctx: "Context", ovn) -> CommandCheck:
        """The agent has registered its chassis in OVN's southbound database (where Neutron
        reads its liveness from) and its process runs."""
        sbctl = shutil.which("ovn-sbctl") or "/usr/bin/ovn-sbctl"
        return CommandCheck(("sh", "-c", f"{sbctl} --db={ovn.sb_connection(ctx)} --timeout=5 --bare "
                             "--columns=external_ids list Chassis_Private "
                             "| grep -q neutron:ovn-neutron-agent-id"))

    def data(self, ctx: "Context") -> None:
        from stackmagic import networks

        if self.agents(ctx):
            # the outside of the public network (the OVN layout's data step makes it there)
            from stackmagic import provider

            provider.ensure(ctx)
        if ctx.settings.bool("NEUTRON_CREATE_INITIAL_NETWORKS", True):
            networks.create_initial(ctx)

    def unstack(self, ctx: "Context") -> None:
        from stackmagic import provider

        for ns in end_leftovers(ctx, AGENT_NAMESPACES):
            ctx.log(f"removed namespace {ns}")
        if ctx.config.layout == "openvswitch":     # no layout check: unstack must always run
            provider.remove(ctx)
            ctx.state.forget_steps(lambda sid: sid == f"data {self.name}")

    def verify_checks(self, ctx: "Context") -> list[Listing]:
        return [Listing("networks", "network.networks", ("name", "status"), show="{name} ({status})"),
                Listing("agents", "network.agents", ("agent_type", "is_alive", "host"),
                        show="{agent_type} on {host} (alive: {is_alive})")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """devstack's configure_tempest for the network: the public network and router, the
        private range, the extensions this Neutron has, and how guests are reached (floating
        IPs, as the cirros user)."""
        from stackmagic.catalog.tempest import service_get

        s = ctx.settings
        opts = [("network", "project_networks_reachable", "false"),
                ("network", "project_network_cidr", s.get("FIXED_RANGE") or
                 s.get("IPV4_ADDRS_SAFE_TO_USE") or "10.0.0.0/22"),
                ("network", "default_network", s.get("FIXED_RANGE") or
                 s.get("IPV4_ADDRS_SAFE_TO_USE") or "10.0.0.0/22"),
                ("network-feature-enabled", "ipv6", "true" if (s.get("IP_VERSION") or "4+6").endswith("6")
                 else "false"),
                ("network-feature-enabled", "ipv6_subnet_attributes", "true"),
                ("network-feature-enabled", "port_security", "true"),
                ("validation", "run_validation", "true" if s.bool("TEMPEST_RUN_VALIDATION", True) else "false"),
                ("validation", "connect_method", s.get("TEMPEST_SSH_CONNECT_METHOD") or "floating"),
                ("validation", "ip_version_for_ssh", "4"),
                ("validation", "network_for_ssh", s.get("PRIVATE_NETWORK_NAME") or "private"),
                *super().tempest_options(ctx)]
        extensions = service_get(ctx, "network", "/v2.0/extensions", "q-svc").get("extensions", [])
        opts.append(("network-feature-enabled", "api_extensions",
                     ",".join(sorted(e["alias"] for e in extensions))))
        if s.bool("NEUTRON_CREATE_INITIAL_NETWORKS", True):
            name = s.get("PUBLIC_NETWORK_NAME") or "public"
            found = service_get(ctx, "network", f"/v2.0/networks?name={name}", "q-svc").get("networks", [])
            if found:
                opts += [("network", "public_network_id", found[0]["id"]),
                         ("network", "floating_network_name", name)]
        return opts

    def cleanup(self, ctx: "Context") -> None:
        super().cleanup(ctx)
        shutil.rmtree(self.state_path(ctx), ignore_errors=True)
