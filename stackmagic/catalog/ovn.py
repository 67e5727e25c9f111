"""OVN from Debian's ``ovn-central`` and ``ovn-host``, started by stackmagic without systemd, as
devstack's lib/neutron_plugins/ovn_agent does (``start_ovn``).

- ``ovn-northd``: devstack's service runs ``ovn-ctl start_northd``, which starts the Northbound
  and Southbound ovsdb-servers and then northd. Here they are three processes, each in its own
  tmux window with its own health check and pid: ``ovn-nb-db``, ``ovn-sb-db`` and ``ovn-northd``
  (after both). So status shows which of them is down, and ``stack`` restores just that one
  instead of all three. The databases listen on ``$OVN_RUNDIR/ovn{nb,sb}_db.sock`` and on
  ``tcp:$SERVICE_LISTEN_ADDRESS:$OVN_NB_PORT`` / ``$OVN_SB_PORT`` (devstack's 6641 / 6642).
- ``ovn-controller``: after ``ovs-vswitchd``, with the local switch's ``external_ids`` as
  devstack's _start_ovs sets them (ovn-remote, ovn-bridge, ovn-encap-type geneve, ovn-encap-ip,
  ovn-bridge-mappings, ovn-cms-options enable-chassis-as-gw).

The bridges: ``$OVS_BRIDGE`` (br-int: ``fail_mode=secure``, in-band control off, as
ovn-controller makes it) and ``$PUBLIC_BRIDGE`` (br-ex), both with the switch's datapath type,
made in init. The data step gives the public network its outside: the provider namespace with
the gateway address, joined to br-ex by a veth pair (:mod:`stackmagic.provider`).

Neutron uses :func:`nb_connection`, :func:`sb_connection` and
:func:`stackmagic.catalog.openvswitch.ovsdb_connection`, and declares ``Need("ovn", ...)``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import provider
from stackmagic.catalog import openvswitch as ovs
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.errors import ConfigError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

NB_PORT = 6641
SB_PORT = 6642
SCHEMAS = Path("/usr/share/ovn")


# -- where things are ----------------------------------------------------------------------------
def rundir(ctx: "Context") -> Path:
    """``OVN_RUNDIR``: the databases' sockets, pid and control files (default /var/run/ovn)."""
    return ctx.settings.path("OVN_RUNDIR", "/var/run/ovn")


def datadir(ctx: "Context") -> Path:
    """``OVN_DATADIR``: the NB and SB database files (default $DATA_DIR/ovn)."""
    return ctx.settings.path("OVN_DATADIR", ctx.settings.data_dir / "ovn")


def _tcp(host: str, port: int) -> str:
    return f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"


def _ptcp(host: str, port: int) -> str:
    """ovsdb-server's listening remote: port first, then the address."""
    return f"ptcp:{port}:[{host}]" if ":" in host else f"ptcp:{port}:{host}"


def nb_connection(ctx: "Context") -> str:
    """The Northbound database for Neutron's ``[ovn] ovn_nb_connection`` (devstack's OVN_NB_REMOTE)."""
    return ctx.settings.get("OVN_NB_REMOTE") or _tcp(ctx.settings.service_host,
                                                     ctx.settings.int("OVN_NB_PORT", NB_PORT))


def sb_connection(ctx: "Context") -> str:
    """The Southbound database for Neutron's ``[ovn] ovn_sb_connection`` and ovn-controller."""
    return ctx.settings.get("OVN_SB_REMOTE") or _tcp(ctx.settings.service_host,
                                                     ctx.settings.int("OVN_SB_PORT", SB_PORT))


def ovsdb_connection(ctx: "Context") -> str:
    """The local Open vSwitch database (Neutron's OVN metadata agent, Nova's os-vif)."""
    return ovs.ovsdb_connection(ctx)


def integration_bridge(ctx: "Context") -> str:
    """devstack's OVS_BRIDGE (br-int): where ovn-controller plugs guests and metadata ports."""
    return ctx.settings.get("OVS_BRIDGE") or "br-int"


def public_bridge(ctx: "Context") -> str:
    """devstack's PUBLIC_BRIDGE (br-ex): the public network's bridge."""
    return ctx.settings.get("PUBLIC_BRIDGE") or "br-ex"


def physical_network(ctx: "Context") -> str:
    """devstack's PHYSICAL_NETWORK (``public``): the provider network name br-ex serves."""
    return ctx.settings.get("PHYSICAL_NETWORK") or "public"


def bridge_mappings(ctx: "Context") -> str:
    """devstack's OVN_BRIDGE_MAPPINGS (``$PHYSICAL_NETWORK:$PUBLIC_BRIDGE``)."""
    return (ctx.settings.get("OVN_BRIDGE_MAPPINGS")
            or f"{physical_network(ctx)}:{public_bridge(ctx)}")


def neutron_bridges(ctx: "Context") -> list[str]:
    """Every bridge one of Neutron's layouts sets up: br-int, the agents' br-tun, and the
    public bridges of either layout's mappings."""
    mapped = ",".join(filter(None, (bridge_mappings(ctx), ctx.settings.get("OVS_BRIDGE_MAPPINGS"))))
    publics = [m.partition(":")[2].strip() for m in mapped.split(",")]
    tunnel = ctx.settings.get("OVS_TUNNEL_BRIDGE") or "br-tun"
    return list(dict.fromkeys(b for b in (integration_bridge(ctx), tunnel, public_bridge(ctx), *publics) if b))


def env(ctx: "Context") -> dict[str, str]:
    return {**ovs.env(ctx), "OVN_RUNDIR": str(rundir(ctx)), "OVN_DBDIR": str(datadir(ctx)),
            "OVN_LOGDIR": str(ctx.settings.logdir)}


def nbctl_argv(ctx: "Context", *args: str) -> list[str]:
    return [ovs.tool("ovn-nbctl"), f"--db=unix:{rundir(ctx) / 'ovnnb_db.sock'}", "--timeout=20", *args]


def sbctl_argv(ctx: "Context", *args: str) -> list[str]:
    return [ovs.tool("ovn-sbctl"), f"--db=unix:{rundir(ctx) / 'ovnsb_db.sock'}", "--timeout=20", *args]


_DBS = {"nb": ("ovn-nb-db", "ovnnb_db", "ovn-nb.ovsschema", "OVN_NB_PORT", NB_PORT),
        "sb": ("ovn-sb-db", "ovnsb_db", "ovn-sb.ovsschema", "OVN_SB_PORT", SB_PORT)}
_SCHEMA_NAMES = {"nb": ("OVN_Northbound", "NB_Global"), "sb": ("OVN_Southbound", "SB_Global")}
INACTIVITY_PROBE_MS = 60000         # devstack's: a busy neutron-server is not dropped after 5 s


def _set_connection(ctx: "Context", key: str) -> None:
    """devstack's ``ovn-nbctl set-connection ptcp:6641:$SERVICE_LISTEN_ADDRESS -- set connection .
    inactivity_probe=60000`` (and the same for the SB): the TCP listener is a Connection row the
    server reads (``--remote=db:...``). Through the running server, or written into the file
    while none holds it; the global row it hangs on is made when missing (as set-connection
    does), so an ovn-controller never meets a Southbound database without SB_Global."""
    _, base, _, setting, default = _DBS[key]
    schema, table = _SCHEMA_NAMES[key]
    target = _ptcp(ctx.settings.service_listen, ctx.settings.int(setting, default))
    sock = rundir(ctx) / f"{base}.sock"
    ctl = nbctl_argv if key == "nb" else sbctl_argv
    answers = sock.exists() and subprocess.run(
        [ovs.tool("ovsdb-client"), "--timeout=3", "list-dbs", f"unix:{sock}"],
        capture_output=True, stdin=subprocess.DEVNULL).returncode == 0
    if answers:
        ctx.run(*ctl(ctx, "set-connection", target, "--", "set", "connection", ".",
                     f"inactivity_probe={INACTIVITY_PROBE_MS}"), env=env(ctx))
        return
    path = datadir(ctx) / f"{base}.db"
    found = json.loads(ctx.run(ovs.tool("ovsdb-tool"), "query", path, json.dumps(
        [schema, {"op": "select", "table": table, "where": [], "columns": ["_uuid"]}]), quiet=True))
    connection = {"op": "insert", "table": "Connection", "uuid-name": "listener",
                  "row": {"target": target, "inactivity_probe": INACTIVITY_PROBE_MS}}
    refer = {"connections": ["named-uuid", "listener"]}
    if found[0]["rows"]:
        glob = {"op": "update", "table": table, "where": [], "row": refer}
    else:
        glob = {"op": "insert", "table": table, "row": refer}
    ctx.run(ovs.tool("ovsdb-tool"), "transact", path, json.dumps([schema, connection, glob]))


class OVN(Project):
    name = "ovn"
    services = {"ovn-northd": "OVN central: northd with its Northbound and Southbound databases",
                "ovn-controller": "OVN local controller"}
    system_packages = ("ovn-central", "ovn-host", "iproute2", "iputils-ping")   # ping: provider checks
    provides = {"ovn": "start", "provider-network": "data"}
    requires = (Need("vswitch", before="init"),)      # its init configures the local switch
    ports = {"OVN_NB_PORT": NB_PORT, "OVN_SB_PORT": SB_PORT}

    def plan_notes(self, ctx: "Context") -> list[str]:
        """Where the public network's gateway lives (not on the host), and how to get there."""
        if "ovn-controller" not in self.enabled_services(ctx):
            return []
        try:
            addresses = provider.gateways(ctx)
        except ConfigError as err:          # the stack refuses it with the same words
            return [f"public network gateway: {err}"]
        return [f"public network gateway {', '.join(addresses)} in network namespace "
                f"{provider.namespace(ctx)} on {public_bridge(ctx)}, not on the host; run commands "
                "there with: stackmagic provider -- COMMAND"]

    def init(self, ctx: "Context") -> None:
        """The NB and SB database files (kept until clean), the switch's external_ids for
        ovn-controller and the bridges (devstack's _start_ovs and create_public_bridge)."""
        datadir(ctx).mkdir(parents=True, exist_ok=True)
        rundir(ctx).mkdir(parents=True, exist_ok=True)
        enabled = self.enabled_services(ctx)
        # coming back from the agent layout: its namespaces and bridges go, and the Northbound and Southbound
        # databases of the OVN layout before it (their networks were Neutron's, whose database
        # started anew when the layout changed; ovsdb-server is not running them now)
        from stackmagic.catalog.neutron import take_over_switch

        switched = "ovn-controller" in enabled and take_over_switch(ctx, "ovn")
        if "ovn-northd" in enabled:
            for key, (_, base, schema, _, _) in _DBS.items():
                path = datadir(ctx) / f"{base}.db"
                if switched and path.exists():
                    path.unlink()
                    ctx.log(f"removed {path}: the OVN layout starts anew")
                if not path.exists():
                    ctx.run(ovs.tool("ovsdb-tool"), "create", path, SCHEMAS / schema)
                _set_connection(ctx, key)
        if "ovn-controller" in enabled:
            ovs.refuse_another_switch(ctx)
            kind = ovs.datapath(ctx)[0]
            ids = {"ovn-remote": sb_connection(ctx), "ovn-bridge": integration_bridge(ctx),
                   "ovn-encap-type": ctx.settings.get("OVN_ENCAP_TYPE") or "geneve",
                   "ovn-encap-ip": ctx.settings.get("TUNNEL_ENDPOINT_IP") or ctx.settings.host_ip,
                   "ovn-bridge-mappings": bridge_mappings(ctx),
                   "ovn-bridge-datapath-type": kind}
            if ctx.settings.bool("ENABLE_CHASSIS_AS_GW", True):
                ids["ovn-cms-options"] = "enable-chassis-as-gw"
            ovs.vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".",
                      *(f'external_ids:{k}="{v}"' for k, v in ids.items()))
            ovs.add_bridge(ctx, integration_bridge(ctx), "fail_mode=secure",
                           "other_config:disable-in-band=true")
            for mapping in bridge_mappings(ctx).split(","):
                bridge = mapping.partition(":")[2].strip()
                if bridge:
                    ovs.add_bridge(ctx, bridge)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        enabled = self.enabled_services(ctx)
        run = rundir(ctx)
        environ = env(ctx)
        logs = ["-vconsole:info", "-vsyslog:off"]
        appctl = ("env", f"OVN_RUNDIR={run}", ovs.tool("ovn-appctl"), "--timeout=3", "-t")
        listen = ctx.settings.service_listen
        if "ovn-northd" in enabled:
            for key, (service, base, _, setting, default) in _DBS.items():
                port = ctx.settings.int(setting, default)
                sock = run / f"{base}.sock"
                yield Process(
                    service,
                    ovs.in_rundir(run, [
                        ovs.tool("ovsdb-server"), str(datadir(ctx) / f"{base}.db"),
                        f"--remote=punix:{sock}", f"--remote=db:{_SCHEMA_NAMES[key][0]},"
                        f"{_SCHEMA_NAMES[key][1]},connections",
                        f"--pidfile={run}/{base}.pid", f"--unixctl={run}/{base}.ctl", "--no-chdir",
                        *logs]),
                    cwd=datadir(ctx), env=environ, needs_root=True, host=listen, port=port,
                    # healthy when it answers where Neutron and ovn-controller connect
                    health=CommandCheck((ovs.tool("ovsdb-client"), "--timeout=3", "list-dbs",
                                         _tcp(ctx.settings.service_host, port))),
                    endpoint=_tcp(ctx.settings.service_host, port), timeout=30)
            yield Process(
                "ovn-northd",
                ovs.in_rundir(run, [
                    ovs.tool("ovn-northd"), f"--ovnnb-db=unix:{run}/ovnnb_db.sock",
                    f"--ovnsb-db=unix:{run}/ovnsb_db.sock", f"--pidfile={run}/ovn-northd.pid",
                    "--no-chdir", *logs]),
                cwd=datadir(ctx), env=environ, needs_root=True, after=("ovn-nb-db", "ovn-sb-db"),
                # active, and the SB_Global row is there (init writes it with the listener; an
                # ovn-controller 23.03 that meets a Southbound database without it dies: SIGSEGV)
                health=CommandCheck(("sh", "-c", " ".join([*appctl, "ovn-northd", "status"])
                                     + " | grep -q 'Status: active' && "
                                     + " ".join(sbctl_argv(ctx, "get", "SB_Global", ".", "nb_cfg"))
                                     + " >/dev/null")),
                timeout=30)
        if "ovn-controller" in enabled:
            check = " ".join([*appctl, "ovn-controller", "connection-status"])
            yield Process(
                "ovn-controller",
                ovs.in_rundir(run, [ovs.tool("ovn-controller"), f"unix:{ovs.db_socket(ctx)}",
                                    f"--pidfile={run}/ovn-controller.pid", "--no-chdir", *logs]),
                cwd=datadir(ctx), env=environ, needs_root=True,
                # (those of them this stack runs): the switch, and northd's Southbound content
                after=("ovs-vswitchd", "ovn-sb-db", "ovn-northd"),
                # healthy once connected to the Southbound database
                health=CommandCheck(("sh", "-c", f"{check} | grep -qx connected")), timeout=60)

    def data(self, ctx: "Context") -> None:
        """The outside of the public network: the provider namespace on br-ex."""
        if "ovn-controller" in self.enabled_services(ctx):
            provider.ensure(ctx)

    def unstack(self, ctx: "Context") -> None:
        """Remove the provider namespace and its veth, and the namespaces Neutron's metadata
        agent left (``ovnmeta-*``); the next stack makes the provider side again."""
        provider.remove(ctx)
        provider.remove_namespaces(ctx, "ovnmeta-")
        ctx.state.forget_steps(lambda sid: sid == f"data {self.name}")
        for pattern in ("*.sock", "*.pid", "*.ctl"):
            for path in rundir(ctx).glob(pattern):
                if path.name.startswith(("ovnnb_db", "ovnsb_db", "ovn-northd", "ovn-controller")):
                    path.unlink(missing_ok=True)

    def cleanup(self, ctx: "Context") -> None:
        """Remove the NB and SB databases (devstack's cleanup_ovn)."""
        self.unstack(ctx)
        provider.forget(ctx)
        shutil.rmtree(datadir(ctx), ignore_errors=True)
