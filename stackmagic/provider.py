"""The provider side of the public network, in a network namespace of its own.

devstack gives br-ex the public network's gateway address (172.24.4.1/24) in the host's own
namespace and routes the private range through the router from there. stackmagic never touches
the host's addresses, routes or firewall: it makes a namespace (``PROVIDER_NAMESPACE``, default
``stackmagic-provider``) that holds the gateway address (``PUBLIC_NETWORK_GATEWAY``, else the
first address of ``FLOATING_RANGE``; with IPv6 in ``IP_VERSION`` also
``IPV6_PUBLIC_NETWORK_GATEWAY`` in ``IPV6_PUBLIC_RANGE``) on one end of a veth pair; the other end
(``PROVIDER_VETH``, default ``sm-provider``) is a port of br-ex in the host namespace with no
address (no IPv6 link-local either: ``addrgenmode none``). Floating IPs are reached from inside
it: ``stackmagic provider -- ping -c1 172.24.4.10`` (or :func:`exec_argv`).

Functions: :func:`ensure` (idempotent), :func:`add_route` (Neutron's data step: the private range
via the router's gateway address; recorded, so a later :func:`ensure` puts it back),
:func:`exec_argv`, :func:`run`, :func:`remove` and :func:`remove_namespaces` (namespaces Neutron's
metadata agent left, when they are joined to our switch).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from stackmagic.errors import ConfigError, StackError

if TYPE_CHECKING:
    from stackmagic.context import Context

INSIDE = "gateway"          # the veth end inside the namespace (names there are the namespace's own)


# -- settings ---------------------------------------------------------------------------------
def namespace(ctx: "Context") -> str:
    name = ctx.settings.get("PROVIDER_NAMESPACE") or "stackmagic-provider"
    if "/" in name or name.startswith(".") or len(name) > 200:
        raise ConfigError(f"PROVIDER_NAMESPACE={name!r} is not a usable namespace name; use letters, "
                          "digits, - and _")
    return name


def veth(ctx: "Context") -> str:
    """The host end of the veth pair, a port of br-ex."""
    name = ctx.settings.get("PROVIDER_VETH") or "sm-provider"
    if len(name) > 15 or "/" in name or " " in name:
        raise ConfigError(f"PROVIDER_VETH={name!r}: an interface name has at most 15 characters "
                          "and no / or spaces")
    return name


def _ip_versions(ctx: "Context") -> set[int]:
    value = ctx.settings.get("IP_VERSION") or "4+6"       # devstack's default
    versions = {int(v) for v in value.split("+") if v.strip() in ("4", "6")}
    if not versions:
        raise ConfigError(f"IP_VERSION={value!r}: use 4, 6 or 4+6")
    return versions


def gateways(ctx: "Context") -> list[str]:
    """The addresses the namespace holds, as ``address/prefix`` (IPv4 first)."""
    s = ctx.settings
    out = []
    versions = _ip_versions(ctx)
    if 4 in versions:
        out.append(_gateway(s.get("FLOATING_RANGE") or "172.24.4.0/24", s.get("PUBLIC_NETWORK_GATEWAY"),
                            "FLOATING_RANGE", "PUBLIC_NETWORK_GATEWAY", 4))
    if 6 in versions:
        out.append(_gateway(s.get("IPV6_PUBLIC_RANGE") or "2001:db8::/64",
                            s.get("IPV6_PUBLIC_NETWORK_GATEWAY") or "2001:db8::2",
                            "IPV6_PUBLIC_RANGE", "IPV6_PUBLIC_NETWORK_GATEWAY", 6))
    return out


def _gateway(cidr: str, address: str | None, cidr_name: str, address_name: str, version: int) -> str:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(f"{cidr_name}={cidr!r} is not a network (like 172.24.4.0/24)") from None
    if net.version != version:
        raise ConfigError(f"{cidr_name}={cidr!r} is not an IPv{version} network")
    if address:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"{address_name}={address!r} is not an address") from None
        if addr not in net:
            raise ConfigError(f"{address_name}={address} is outside {cidr_name}={cidr}; "
                              "choose an address inside it")
    else:
        addr = next(net.hosts())
    return f"{addr}/{net.prefixlen}"


def _mtu(ctx: "Context") -> int:
    return ctx.settings.int("PUBLIC_BRIDGE_MTU", 1500)


def _routes_file(ctx: "Context") -> Path:
    return ctx.settings.data_dir / "stackmagic" / "provider-routes.json"


# -- the namespace ----------------------------------------------------------------------------
def namespaces() -> list[str]:
    proc = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return [n["name"] for n in json.loads(proc.stdout)]


def exists(ctx: "Context") -> bool:
    return namespace(ctx) in namespaces()


def exec_argv(ctx: "Context", argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the provider namespace."""
    return ["ip", "netns", "exec", namespace(ctx), *map(str, argv)]


def run(ctx: "Context", argv: Sequence[str], apis: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` in the provider namespace (a clear error when it does not exist).

    With ``apis`` (the default) the cloud's APIs answer there too, on the same loopback
    addresses and ports as on the host (:mod:`stackmagic.nsbridge`): ``openstack server list``,
    ``ssh`` to a floating IP and Tempest with its SSH checks all work from one place."""
    if os.geteuid() != 0:
        raise StackError("entering a network namespace needs root: run this as root")
    if not exists(ctx):
        raise StackError(f"the provider namespace {namespace(ctx)} does not exist: run `stackmagic "
                         "stack` with ovn-controller enabled first")
    host = ctx.settings.service_host
    if not apis or not ipaddress.ip_address(host).is_loopback:
        return subprocess.run(exec_argv(ctx, argv), **kwargs)
    from stackmagic.nsbridge import Bridge

    with Bridge(namespace(ctx), host, api_ports(ctx)):
        return subprocess.run(exec_argv(ctx, argv), **kwargs)


def api_ports(ctx: "Context") -> list[int]:
    """Every port a project of the catalog declares, as this stack's settings have it."""
    from stackmagic.catalog import builtin_projects

    declared = {setting: default for project in builtin_projects()
                for setting, default in project.ports.items()}
    return sorted({ctx.settings.int(setting, default) for setting, default in declared.items()})


def command(ctx: "Context", argv: Sequence[str]) -> int:
    """``stackmagic provider -- COMMAND``: run COMMAND in the namespace; its exit status."""
    argv = list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise StackError("say which command to run there, after --: "
                         "stackmagic provider -- ping -c1 172.24.4.10")
    try:
        return run(ctx, argv).returncode
    except FileNotFoundError:
        raise StackError("`ip` (iproute2) is not installed") from None


def _ip(ctx: "Context", *args: str) -> None:
    ctx.run("ip", *args)


def ensure(ctx: "Context") -> None:
    """Make the namespace, the veth pair, the addresses, the br-ex port and the recorded routes
    (each only when missing: a second call changes nothing)."""
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.catalog.ovn import public_bridge

    ns, host = namespace(ctx), veth(ctx)
    addresses = gateways(ctx)
    if Path(f"/sys/class/net/{host}").exists() and not _is_veth(host):
        raise ConfigError(f"PROVIDER_VETH={host} names a device of this host that is not a veth "
                          "stackmagic made; choose another name (nothing was changed)")
    if ns not in namespaces():
        _ip(ctx, "netns", "add", ns)
    _ip(ctx, "-n", ns, "link", "set", "lo", "up")
    if not Path(f"/sys/class/net/{host}").exists():
        subprocess.run(["ip", "-n", ns, "link", "del", INSIDE], capture_output=True)   # a half pair
        _ip(ctx, "link", "add", host, "type", "veth", "peer", "name", INSIDE, "netns", ns)
    # no address at all on the host's end, not even an IPv6 link-local one
    _ip(ctx, "link", "set", "dev", host, "addrgenmode", "none")
    _ip(ctx, "link", "set", "dev", host, "mtu", str(_mtu(ctx)), "up")
    _ip(ctx, "-n", ns, "link", "set", "dev", INSIDE, "mtu", str(_mtu(ctx)), "up")
    for address in addresses:
        extra = ["nodad"] if ":" in address else []
        _ip(ctx, "-n", ns, "addr", "replace", address, "dev", INSIDE, *extra)
    ovs.vsctl(ctx, "--no-wait", "--may-exist", "add-port", public_bridge(ctx), host)
    for cidr, via in _recorded_routes(ctx).items():
        _ip(ctx, "-n", ns, "route", "replace", cidr, "via", via)
    ctx.log(f"provider namespace {ns}: {', '.join(addresses)} on {INSIDE}, joined to "
            f"{public_bridge(ctx)} by {host}")


def add_route(ctx: "Context", cidr: str, via: str) -> None:
    """Route ``cidr`` through ``via`` inside the namespace (devstack routes the private range
    through the router's gateway address on the host); recorded for the next :func:`ensure`."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
        gw = ipaddress.ip_address(via)
    except ValueError as err:
        raise StackError(f"provider route {cidr} via {via}: {err}") from None
    if net.version != gw.version:
        raise StackError(f"provider route {cidr} via {via}: the network and the gateway are not of "
                         "the same IP version")
    routes = _recorded_routes(ctx)
    routes[str(net)] = str(gw)
    path = _routes_file(ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(routes, indent=1, sort_keys=True) + "\n")
    ensure(ctx)


def _recorded_routes(ctx: "Context") -> dict[str, str]:
    try:
        return dict(json.loads(_routes_file(ctx).read_text()))
    except (OSError, ValueError):
        return {}


def forget(ctx: "Context") -> None:
    """Drop the recorded routes (clean)."""
    _routes_file(ctx).unlink(missing_ok=True)


def remove(ctx: "Context") -> list[str]:
    """Delete the veth pair and the namespace (and end what still runs inside it)."""
    gone = []
    host = veth(ctx)
    if Path(f"/sys/class/net/{host}").exists() and _is_veth(host):
        subprocess.run(["ip", "link", "del", host], capture_output=True, timeout=20)
        gone.append(host)
    ns = namespace(ctx)
    if ns in namespaces():
        _delete_namespace(ns)
        gone.append(ns)
    return gone


def _is_veth(name: str) -> bool:
    proc = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", name], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return False
    return json.loads(proc.stdout)[0].get("linkinfo", {}).get("info_kind") == "veth"


def _delete_namespace(ns: str) -> None:
    """End the processes inside ``ns`` (by pid) and delete it."""
    pids = _pids_in(ns)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _pids_in(ns: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def remove_namespaces(ctx: "Context", prefix: str) -> list[str]:
    """Delete the namespaces named ``prefix...`` that are joined to our switch: a veth whose
    other end is an interface in our OVS database (Neutron's metadata agent leaves
    ``ovnmeta-<network>`` namespaces when it is killed). A namespace of another stack stays."""
    from stackmagic.catalog import openvswitch as ovs

    ours = set(ovs.interfaces_in_db(ctx))
    gone = []
    for ns in namespaces():
        peers = _peers_of(ns) if ns.startswith(prefix) else set()
        if ours & peers:
            # the host ends first: a deleted namespace's devices go only later, in the background
            for name in peers:
                if _is_veth(name):
                    subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=20)
            _delete_namespace(ns)
            gone.append(ns)
    return gone


def _peers_of(ns: str) -> set[str]:
    """The names, in the host namespace, of the other ends of the veths inside ``ns``."""
    proc = subprocess.run(["ip", "-n", ns, "-j", "link"], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return set()
    by_index = {}
    for dev in Path("/sys/class/net").iterdir():
        try:
            by_index[int((dev / "ifindex").read_text())] = dev.name
        except (OSError, ValueError):
            continue
    return {by_index[link["link_index"]] for link in json.loads(proc.stdout)
            if "link_index" in link and "link_netnsid" in link and link["link_index"] in by_index}

