"""Open vSwitch (devstack's ``ovsdb-server`` and ``ovs-vswitchd``) from Debian's
``openvswitch-switch``, started by stackmagic without systemd, as devstack's
lib/neutron_plugins/ovn_agent (``_start_ovs``) runs them when it builds OVS from source.

- ``ovsdb-server`` serves ``$OVS_DATADIR/conf.db`` (made with ``ovsdb-tool create``) on the unix
  socket ``$OVS_RUNDIR/db.sock`` and on ``tcp:127.0.0.1:$OVSDB_SERVER_PORT`` (devstack's 6640,
  what Neutron's OVN metadata agent and os-vif use: :func:`ovsdb_connection`).
- ``ovs-vswitchd`` starts after it (``Process.after``).

``OVS_RUNDIR`` defaults to ``/var/run/openvswitch``, the path a plain ``ovs-vsctl`` (as libvirt
runs it) looks in; every path is a setting so a test stack can run beside it.

The datapath: the kernel's openvswitch module when the kernel has it (``system``), else OVS's
userspace datapath (``netdev``), decided by :func:`datapath` (``OVS_DATAPATH_TYPE`` overrides).
With ``netdev``, ``other_config:userspace-tso-enable=true`` is written into the Open_vSwitch table
before ovs-vswitchd starts (it is read only at start): without it TCP to guests breaks (see
shared/notes/guests-and-networks-on-these-machines.md). The bridges are made by their users
(OVN: br-int and br-ex) with :func:`add_bridge`.

The database keeps its bridges across ``unstack`` (ovs-vswitchd makes their devices again when it
starts); ``unstack`` removes the devices the userspace datapath left behind; ``clean`` removes
the database.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

OVSDB_PORT = 6640
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DATAPATHS = ("system", "netdev")


# -- where things are ----------------------------------------------------------------------------
def rundir(ctx: "Context") -> Path:
    """``OVS_RUNDIR``: sockets, pid files and control sockets (default /var/run/openvswitch)."""
    return ctx.settings.path("OVS_RUNDIR", "/var/run/openvswitch")


def datadir(ctx: "Context") -> Path:
    """``OVS_DATADIR``: the database and the system id (default $DATA_DIR/ovs, as devstack)."""
    return ctx.settings.path("OVS_DATADIR", ctx.settings.data_dir / "ovs")


def db_file(ctx: "Context") -> Path:
    return datadir(ctx) / "conf.db"


def db_socket(ctx: "Context") -> Path:
    return rundir(ctx) / "db.sock"


def local_host(ctx: "Context") -> str:
    """devstack's OVSDB_SERVER_LOCAL_HOST (SERVICE_LOCAL_HOST, loopback)."""
    return ctx.settings.get("SERVICE_LOCAL_HOST") or "127.0.0.1"


def ovsdb_port(ctx: "Context") -> int:
    return ctx.settings.int("OVSDB_SERVER_PORT", OVSDB_PORT)


def ovsdb_connection(ctx: "Context") -> str:
    """The local OVS database as ovsdbapp and os-vif want it (devstack: tcp:127.0.0.1:6640)."""
    host = local_host(ctx)
    if ":" in host:
        host = f"[{host}]"
    return f"tcp:{host}:{ovsdb_port(ctx)}"


def env(ctx: "Context") -> dict[str, str]:
    """What the OVS tools need to find this switch (OVS_RUNDIR and its friends)."""
    return {"OVS_RUNDIR": str(rundir(ctx)), "OVS_DBDIR": str(datadir(ctx)),
            "OVS_LOGDIR": str(ctx.settings.logdir)}


def tool(name: str) -> str:
    return shutil.which(name) or f"/usr/{'sbin' if name in ('ovs-vswitchd', 'ovsdb-server') else 'bin'}/{name}"


def in_rundir(rundir: Path, argv: list[str]) -> list[str]:
    """``argv`` run once ``rundir`` exists: a run directory under /run is gone after a reboot,
    and the daemons do not make it (a restored service must find it)."""
    return ["/bin/sh", "-c", 'mkdir -p -- "$0" && exec "$@"', str(rundir), *argv]


def vsctl_argv(ctx: "Context", *args: str) -> list[str]:
    """``ovs-vsctl`` on our database (``--no-wait`` is up to the caller)."""
    return [tool("ovs-vsctl"), f"--db=unix:{db_socket(ctx)}", "--timeout=20", *args]


def vsctl(ctx: "Context", *args: str) -> str:
    """Run ``ovs-vsctl`` on our database in the step's log; its output."""
    return ctx.run(*vsctl_argv(ctx, *args), env=env(ctx)).strip()


def system_id(ctx: "Context") -> str:
    """devstack's OVN_UUID: the setting, else the one kept in ``$OVS_DATADIR/system-id.conf``
    (devstack keeps it in /etc/openvswitch; ours goes with the stack's data)."""
    given = ctx.settings.get("OVN_UUID")
    path = datadir(ctx) / "system-id.conf"
    if given:
        return given
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    new = str(uuid.uuid4())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new + "\n")
    return new


def hostname() -> str:
    """The chassis hostname (devstack: ``$(hostname)``): Neutron binds ports to this host."""
    return socket.gethostname()


# -- the datapath --------------------------------------------------------------------------------
def kernel_datapath() -> tuple[bool, str]:
    """Whether the kernel's openvswitch datapath is usable: its generic netlink family
    ``ovs_datapath`` exists (module loaded or built in), or ``modprobe -n`` could load it."""
    if _genl_family_exists("ovs_datapath"):
        return True, "the kernel's openvswitch datapath is present"
    modprobe = shutil.which("modprobe")
    if modprobe:
        try:
            proc = subprocess.run([modprobe, "-n", "-q", "openvswitch"], capture_output=True,
                                  text=True, timeout=10, stdin=subprocess.DEVNULL)
            if proc.returncode == 0:
                return True, "the kernel module openvswitch can be loaded"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return False, "no openvswitch kernel module here, none loaded or loadable"


def _genl_family_exists(name: str) -> bool:
    """Ask the kernel (generic netlink CTRL_CMD_GETFAMILY) whether family ``name`` exists."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)    # NETLINK_GENERIC
    except OSError:
        return False
    with sock:
        sock.settimeout(2)
        attr_data = name.encode() + b"\0"
        attr = struct.pack("HH", 4 + len(attr_data), 2) + attr_data    # CTRL_ATTR_FAMILY_NAME
        attr += b"\0" * (-len(attr) % 4)
        payload = struct.pack("BBH", 3, 1, 0) + attr                   # CTRL_CMD_GETFAMILY, v1
        msg = struct.pack("IHHII", 16 + len(payload), 0x10, 1, 1, 0) + payload   # GENL_ID_CTRL
        try:
            sock.send(msg)
            reply = sock.recv(65536)
        except OSError:
            return False
    if len(reply) < 16:
        return False
    _, kind = struct.unpack("IH", reply[:6])
    if kind == 2:                                                      # NLMSG_ERROR
        (error,) = struct.unpack("i", reply[16:20])
        return error == 0
    return kind == 0x10


def datapath(ctx: "Context") -> tuple[str, str]:
    """(``system`` or ``netdev``, why). ``OVS_DATAPATH_TYPE`` decides when set."""
    asked = (ctx.settings.get("OVS_DATAPATH_TYPE") or "").strip()
    if asked:
        if asked not in DATAPATHS:
            raise ConfigError(f"OVS_DATAPATH_TYPE={asked} is not supported; use one of: "
                              f"{', '.join(DATAPATHS)} (or leave it unset to let stackmagic probe)")
        if asked == "system":
            ok, why = kernel_datapath()
            if not ok:
                raise ConfigError(f"OVS_DATAPATH_TYPE=system, but {why}; unset OVS_DATAPATH_TYPE "
                                  "or set it to netdev (the userspace datapath)")
        return asked, f"OVS_DATAPATH_TYPE={asked} is set"
    ok, why = kernel_datapath()
    if ok:
        return "system", why
    return "netdev", f"{why}: the userspace datapath, with userspace TSO so TCP to guests works"


def userspace(ctx: "Context") -> bool:
    return datapath(ctx)[0] == "netdev"


# -- bridges --------------------------------------------------------------------------------------
def add_bridge(ctx: "Context", name: str, *settings: str) -> None:
    """``ovs-vsctl --may-exist add-br`` with the datapath type (devstack's
    ovn_base_setup_bridge), plus ``settings`` (``fail_mode=secure`` ...); idempotent. A name
    that is a device of the host other than a bridge of Open vSwitch is refused."""
    if Path(f"/sys/class/net/{name}").exists() and name not in bridges_in_db(ctx):
        raise ConfigError(f"the bridge name {name} is a network device of this host already; "
                          "choose another (OVS_BRIDGE, PUBLIC_BRIDGE or OVN_BRIDGE_MAPPINGS)")
    kind = datapath(ctx)[0]
    vsctl(ctx, "--no-wait", "--may-exist", "add-br", name,
          "--", "set", "Bridge", name, f"datapath_type={kind}", *settings,
          "--", "br-set-external-id", name, "bridge-id", name)


#: the Open_vSwitch row's external_ids key naming who set the bridges up last
OWNER_KEY = "stackmagic-bridges"


def bridges_owner(ctx: "Context") -> str:
    """Who set the bridges up last (:func:`claim_bridges`), "" when nobody said."""
    return vsctl(ctx, "--if-exists", "get", "Open_vSwitch", ".", f"external_ids:{OWNER_KEY}").strip('"')


def claim_bridges(ctx: "Context", owner: str, bridges: Iterable[str], before: str | None = None) -> bool:
    """The bridges are about to be set up for ``owner`` (a Neutron layout: "ovn" or
    "openvswitch"). When the other one set them up last, they go first, each with its ports,
    flows, controller, fail mode and protocols (the L2 agent limits br-int to OpenFlow 1.0-1.3,
    which ovn-controller cannot speak; OVN's patch ports beside the agent's would loop br-int
    and br-ex): the layout makes them anew. Who set them up is kept in the switch's own
    database (``before``: what :func:`bridges_owner` said, when the caller has read it already);
    True when bridges were removed."""
    if before is None:
        before = bridges_owner(ctx)
    changed = bool(before) and before != owner
    if changed:
        present = set(vsctl(ctx, "list-br").split())
        removed = [bridge for bridge in dict.fromkeys(bridges) if bridge in present]
        for bridge in removed:
            vsctl(ctx, "--no-wait", "del-br", bridge)
        ctx.log(f"the switch was set up for {before}; removed its bridges "
                f"{', '.join(removed) or '(none left)'} for {owner} to make anew")
    vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", f'external_ids:{OWNER_KEY}="{owner}"')
    return changed


def bridges_in_db(ctx: "Context") -> list[str]:
    """The bridge names in our database file (read from the file: the server may be stopped)."""
    return _names_in_db(ctx, "Bridge")


def interfaces_in_db(ctx: "Context") -> list[str]:
    """The interface names in our database file."""
    return _names_in_db(ctx, "Interface")


def _names_in_db(ctx: "Context", table: str) -> list[str]:
    path = db_file(ctx)
    if not path.exists():
        return []
    query = ["Open_vSwitch", {"op": "select", "table": table, "where": [], "columns": ["name"]}]
    # ovsdb-tool query is read-only: it works while ovsdb-server has the file open
    proc = subprocess.run([tool("ovsdb-tool"), "query", str(path), json.dumps(query)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        return []
    return [r["name"] for r in json.loads(proc.stdout)[0].get("rows", [])]


def remove_datapath_devices(ctx: "Context", names: Iterable[str]) -> list[str]:
    """Delete the tap devices the userspace datapath left for bridges ``names`` (they outlive
    ovs-vswitchd), and its ``ovs-netdev`` when no ovs-vswitchd runs here any more. Only tun
    devices are touched, so a device of that name that OVS did not make stays."""
    gone = []
    names = list(names)
    if not _any_vswitchd():
        names.append("ovs-netdev")
        # the kernel's datapath (and its bridge devices) outlives ovs-vswitchd too
        dpctl = shutil.which("ovs-dpctl")
        if dpctl and Path("/sys/class/net/ovs-system").exists() and _kind_or_none(ctx) == "system":
            subprocess.run([dpctl, "del-dp", "system@ovs-system"], capture_output=True, timeout=20)
            gone.append("ovs-system")
    for name in names:
        if Path(f"/sys/class/net/{name}/tun_flags").exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=20)
            gone.append(name)
    return gone


def _kind_or_none(ctx: "Context") -> str | None:
    try:
        return datapath(ctx)[0]
    except ConfigError:
        return None


def vswitchd_pids() -> list[int]:
    """Every ovs-vswitchd running on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "ovs-vswitchd":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _any_vswitchd() -> bool:
    return bool(vswitchd_pids())


def refuse_another_switch(ctx: "Context") -> None:
    """Two ovs-vswitchd cannot share one network namespace: the second cannot open the datapath
    device (``ovs-netdev`` of the userspace datapath, ``ovs-system`` of the kernel's) and makes
    no bridge. Say so before starting ours beside another."""
    try:
        ours = int((rundir(ctx) / "ovs-vswitchd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ours = None
    others = [pid for pid in vswitchd_pids() if pid != ours]
    if others:
        raise StackError(
            f"another Open vSwitch runs on this machine (ovs-vswitchd pid {others[0]}), not the one "
            f"of this stack (OVS_RUNDIR={rundir(ctx)}); two cannot share the host's datapath "
            "device, so this one would make no bridge. Stop the other one (its stack's unstack), "
            "then run stack again")


# -- the database --------------------------------------------------------------------------------
def _transact_offline(ctx: "Context", ops: list[dict], quiet: bool = False) -> list | None:
    """An ``ovsdb-tool transact`` on the database file (only while no server holds it); the
    results, or None when the file is missing or held."""
    path = db_file(ctx)
    if not path.exists():
        return None
    proc = subprocess.run([tool("ovsdb-tool"), "transact", str(path),
                           json.dumps(["Open_vSwitch", *ops])],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        if not quiet:
            raise StackError(f"ovsdb-tool transact on {path} failed: {proc.stderr.strip()[:300]}")
        return None
    results = json.loads(proc.stdout)
    errors = [r for r in results if isinstance(r, dict) and "error" in r]
    if errors:
        raise StackError(f"ovsdb-tool transact on {path}: {errors[0]}")
    return results


def server_answers(ctx: "Context") -> bool:
    """Whether our ovsdb-server answers on its socket now."""
    if not db_socket(ctx).exists():
        return False
    proc = subprocess.run([tool("ovsdb-client"), "--timeout=3", "list-dbs", f"unix:{db_socket(ctx)}"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return proc.returncode == 0


def set_open_vswitch(ctx: "Context", other_config: dict[str, str], external_ids: dict[str, str],
                     drop_other_config: Iterable[str] = (), **columns: str) -> None:
    """Set keys of the Open_vSwitch row: through the running server, or in the file while no
    server holds it (so a value ovs-vswitchd reads at start is there before it starts)."""
    if server_answers(ctx):
        args = ["--no-wait", "set", "Open_vSwitch", "."]
        args += [f"other_config:{k}={v}" for k, v in other_config.items()]
        args += [f'external_ids:{k}="{v}"' for k, v in external_ids.items()]
        args += [f'{k}="{v}"' for k, v in columns.items()]
        drops = [a for k in drop_other_config
                 for a in ("--", "remove", "Open_vSwitch", ".", "other_config", k)]
        vsctl(ctx, "--no-wait", "init", "--", *args[1:], *drops)
        return
    rows = _transact_offline(ctx, [{"op": "select", "table": "Open_vSwitch", "where": []}])
    current = rows[0]["rows"] if rows else []
    if not current:
        row = {"other_config": ["map", sorted(other_config.items())],
               "external_ids": ["map", sorted(external_ids.items())], **columns}
        _transact_offline(ctx, [{"op": "insert", "table": "Open_vSwitch", "row": row}])
        ctx.log(f"wrote the Open_vSwitch row into {db_file(ctx)}: other_config {other_config}, "
                f"external_ids {external_ids}")
        return
    old = current[0]

    def merged(column: str, new: dict[str, str], drop: Iterable[str] = ()) -> list:
        have = dict(old.get(column, ["map", []])[1])
        have.update(new)
        for key in drop:
            have.pop(key, None)
        return ["map", sorted(have.items())]

    row = {"other_config": merged("other_config", other_config, drop_other_config),
           "external_ids": merged("external_ids", external_ids), **columns}
    _transact_offline(ctx, [{"op": "update", "table": "Open_vSwitch", "where": [], "row": row}])
    ctx.log(f"updated the Open_vSwitch row in {db_file(ctx)}: other_config {other_config}, "
            f"external_ids {external_ids}")


class OpenVSwitch(Project):
    name = "ovs"
    services = {"ovsdb-server": "Open vSwitch database server",
                "ovs-vswitchd": "Open vSwitch switch daemon"}
    system_packages = ("openvswitch-switch", "iproute2")
    provides = {"vswitch": "start"}
    ports = {"OVSDB_SERVER_PORT": OVSDB_PORT}

    def available(self, ctx: "Context") -> bool:
        return os.geteuid() == 0

    def plan_notes(self, ctx: "Context") -> list[str]:
        """What plan says about this switch: its datapath and why."""
        try:
            kind, why = datapath(ctx)
        except ConfigError as err:          # the stack refuses it with the same words
            return [f"Open vSwitch datapath: {err}"]
        return [f"Open vSwitch datapath: {kind} ({why})"]

    def init(self, ctx: "Context") -> None:
        """The database (devstack's init_ovn makes it anew; ours is kept until clean), and the
        Open_vSwitch row: system id and hostname as devstack's _start_ovs sets them, and with
        the userspace datapath userspace TSO, before ovs-vswitchd reads it at start."""
        refuse_another_switch(ctx)
        datadir(ctx).mkdir(parents=True, exist_ok=True)
        rundir(ctx).mkdir(parents=True, exist_ok=True)
        if not db_file(ctx).exists():
            ctx.run(tool("ovsdb-tool"), "create", db_file(ctx), SCHEMA)
        elif not server_answers(ctx):
            needs = subprocess.run([tool("ovsdb-tool"), "needs-conversion", str(db_file(ctx)), str(SCHEMA)],
                                   capture_output=True, text=True)
            if needs.stdout.strip() == "yes":
                ctx.run(tool("ovsdb-tool"), "convert", db_file(ctx), SCHEMA)
        kind, why = datapath(ctx)
        ctx.log(f"datapath {kind}: {why}")
        if kind == "system":
            modprobe = shutil.which("modprobe")
            if modprobe:
                ctx.run(modprobe, "openvswitch", check=False)
        tso = {"userspace-tso-enable": "true"} if kind == "netdev" else {}
        set_open_vswitch(ctx, tso, {"system-id": system_id(ctx), "hostname": hostname()},
                         drop_other_config=() if tso else ("userspace-tso-enable",),
                         system_type="devstack")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        enabled = self.enabled_services(ctx)
        run = rundir(ctx)
        kind = datapath(ctx)[0]
        environ = {**env(ctx), "OVS_DATAPATH_TYPE": kind}   # a new datapath restarts the switch
        logs = ["-vconsole:info", "-vsyslog:off"]
        appctl = ("env", f"OVS_RUNDIR={run}", tool("ovs-appctl"), "--timeout=3", "-t")
        if "ovsdb-server" in enabled:
            port, host = ovsdb_port(ctx), local_host(ctx)
            yield Process(
                "ovsdb-server",
                in_rundir(run, [
                    tool("ovsdb-server"), str(db_file(ctx)), f"--remote=punix:{db_socket(ctx)}",
                    f"--remote=ptcp:{port}:{f'[{host}]' if ':' in host else host}",
                    f"--pidfile={run}/ovsdb-server.pid", "--no-chdir", *logs]),
                cwd=datadir(ctx), env=environ, needs_root=True, host=host, port=port,
                # it answers on the socket ovs-vsctl uses and on Neutron's TCP port
                health=CommandCheck(("sh", "-c", " && ".join(
                    f"{tool('ovsdb-client')} --timeout=3 list-dbs {where} >/dev/null"
                    for where in (f"unix:{db_socket(ctx)}", ovsdb_connection(ctx))))),
                endpoint=ovsdb_connection(ctx), timeout=30)
        if "ovs-vswitchd" in enabled:
            yield Process(
                "ovs-vswitchd",
                in_rundir(run, [tool("ovs-vswitchd"), f"unix:{db_socket(ctx)}",
                                f"--pidfile={run}/ovs-vswitchd.pid", "--no-chdir", *logs]),
                cwd=datadir(ctx), env=environ, needs_root=True, after=("ovsdb-server",),
                health=CommandCheck((*appctl, "ovs-vswitchd", "version")), timeout=30)

    def unstack(self, ctx: "Context") -> None:
        """The devices the userspace datapath made for the bridges outlive ovs-vswitchd, and
        so do the guests' taps on them (os-vif makes them persistent for the netdev datapath and
        removes them only when Nova unplugs a port): remove both (the bridges stay in the
        database; ovs-vswitchd makes them again at start)."""
        gone = remove_datapath_devices(ctx, [*bridges_in_db(ctx), *interfaces_in_db(ctx)])
        if gone:
            ctx.log(f"removed the datapath devices {', '.join(gone)}")

    def cleanup(self, ctx: "Context") -> None:
        """Remove the database and the system id (devstack's cleanup_ovn)."""
        self.unstack(ctx)
        shutil.rmtree(datadir(ctx), ignore_errors=True)
        for pattern in ("*.sock", "*.pid", "*.ctl"):
            for path in rundir(ctx).glob(pattern):
                if path.name.startswith(("db.", "ovsdb-server", "ovs-vswitchd")):
                    path.unlink(missing_ok=True)
