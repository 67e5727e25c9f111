"""Open vSwitch and OVN for real: a sandbox stack of ovsdb-server, ovs-vswitchd, ovn-northd (with
its NB and SB databases) and ovn-controller from Debian's packages, with the userspace datapath
where the kernel has no openvswitch module (these machines). Traffic goes only between
namespaces the stack or this test made: an OVN logical switch carries ping and a TCP transfer
between two test namespaces, and the provider namespace reaches a port on the public network
through br-ex. unstack --all leaves no daemon, namespace or veth; clean removes the databases.

The stack test is slow (~10 s) and root only; the others are quick.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stackmagic.process_info import alive
from stackmagic.samples import sandbox
from tests.conftest import wait_until

root = pytest.mark.skipif(os.geteuid() != 0, reason="Open vSwitch runs only as root")

SERVICES = {"ovsdb-server", "ovs-vswitchd", "ovn-nb-db", "ovn-sb-db", "ovn-northd", "ovn-controller"}


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def host_view() -> tuple[set, set]:
    """The host namespace's addresses and routes (links without addresses are left out: other
    sessions on this machine may make devices of their own meanwhile)."""
    addrs = {(link["ifname"], a["local"], a["prefixlen"])
             for link in json.loads(sh("ip", "-j", "addr")) for a in link.get("addr_info", [])}
    routes = {json.dumps(r, sort_keys=True) for family in ("-4", "-6")
              for r in json.loads(sh("ip", "-j", family, "route", "show", "table", "all"))}
    return addrs, routes


def plug(ns: str, host_end: str, mac: str, cidr: str, bridge: str, vsctl: list[str],
         iface_id: str | None = None) -> None:
    """A namespace with one veth end (``eth0``: ``mac``, ``cidr``); the other end a port of
    ``bridge`` bound to logical port ``iface_id``."""
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "link", "set", "dev", host_end, "addrgenmode", "none")
    sh("ip", "link", "set", "dev", host_end, "up")
    sh("ip", "-n", ns, "link", "set", "dev", "eth0", "address", mac)
    sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "dev", "eth0", "up")
    sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
    extra = ["--", "set", "Interface", host_end, f"external_ids:iface-id={iface_id}"] if iface_id else []
    sh(*vsctl, "add-port", bridge, host_end, *extra)


def fetch(client_ns: str, server_ns: str, address: str, root: Path, size: int) -> tuple[str, str]:
    """Serve ``size`` random bytes over HTTP from ``server_ns`` and fetch them from
    ``client_ns``: (sha256 sent, sha256 received)."""
    blob = root / "blob"
    blob.write_bytes(os.urandom(size))
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "python3", "-m", "http.server",
                               "8000", "--bind", address, "--directory", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: f"{address}:8000" in sh("ip", "netns", "exec", server_ns, "ss", "-ltnH"), 10)
        got = sh("ip", "netns", "exec", client_ns, "python3", "-c",
                 "import hashlib, urllib.request; print(hashlib.sha256(urllib.request.urlopen("
                 f"'http://{address}:8000/blob', timeout=20).read()).hexdigest())")
    finally:
        server.terminate()
        server.wait(10)
    return hashlib.sha256(blob.read_bytes()).hexdigest(), got


@pytest.mark.slow
@root
def test_ovs_and_ovn_carry_tcp_between_namespaces_and_leave_nothing(tmp_path):
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.catalog import ovn
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic import provider

    if ovs.vswitchd_pids():
        pytest.skip("another Open vSwitch runs on this machine; a second cannot share its datapath "
                    "device (the stack refuses to start one beside it)")
    tag = uuid.uuid4().hex[:6]
    names = {"OVS_BRIDGE": f"tbi{tag}", "PUBLIC_BRIDGE": f"tbe{tag}",
             "PROVIDER_NAMESPACE": f"smtest-provider-{tag}", "PROVIDER_VETH": f"tpv{tag}"}
    conf = tmp_path / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]", *sandbox(tmp_path, "ovs"), "disable_all_services",
        "enable_service ovsdb-server ovs-vswitchd ovn-northd ovn-controller",
        f"OVS_RUNDIR={tmp_path}/run/openvswitch", f"OVN_RUNDIR={tmp_path}/run/ovn",
        *(f"{k}={v}" for k, v in names.items()),
    ]) + "\n")
    before = host_view()
    ns1, ns2, ns3 = (f"smtest-{tag}-{i}" for i in (1, 2, 3))
    meta = f"ovnmeta-{uuid.uuid4()}"          # as Neutron's metadata agent names its namespaces
    stranger = f"ovnmeta-{uuid.uuid4()}"      # one that is not joined to our switch
    test_namespaces = [ns1, ns2, ns3, meta, stranger]
    try:
        engine = Engine(load_config(conf))
        ctx = engine.ctx
        pids = {}
        try:
            summary = engine.stack()
            status = {s.service: s for s in summary.services}
            assert set(status) == SERVICES
            assert all(s.healthy for s in status.values()), {n: s.detail for n, s in status.items()}
            pids = {n: s.pid for n, s in status.items()}
            vsctl = ovs.vsctl_argv(ctx)
            nbctl = ovn.nbctl_argv(ctx)

            # the probe: no openvswitch module here, so the userspace datapath, said in plan's notes
            kind = "system" if Path("/sys/module/openvswitch").exists() else "netdev"
            (note,) = ovs.OpenVSwitch().plan_notes(ctx)
            assert f"datapath: {kind}" in note
            assert sh(*vsctl, "get", "Bridge", names["OVS_BRIDGE"], "datapath_type") == kind
            assert sh(*vsctl, "get", "Bridge", names["OVS_BRIDGE"], "fail_mode") == "secure"
            if kind == "netdev":
                # userspace TSO is in the database, and ovs-vswitchd read it when it started
                assert sh(*vsctl, "get", "Open_vSwitch", ".", "other_config:userspace-tso-enable") == '"true"'
                log = Path(status["ovs-vswitchd"].logfile).read_text()
                assert "Userspace TCP Segmentation Offloading support enabled" in log

            # ovn-controller registered this host as a chassis in the Southbound database
            chassis = sh(*ovn.sbctl_argv(ctx), "show")
            assert f"hostname: {ovs.hostname()}" in chassis
            assert sh(*vsctl, "get", "Open_vSwitch", ".", "external_ids:ovn-remote").strip('"') == \
                ovn.sb_connection(ctx)

            # a logical switch, two logical ports bound to two namespaces through br-int
            sh(*nbctl, "ls-add", f"tls{tag}")
            for i, ns in ((1, ns1), (2, ns2)):
                mac, ip = f"52:54:00:00:00:0{i}", f"10.77.0.1{i}"
                sh(*nbctl, "lsp-add", f"tls{tag}", f"tlp{tag}{i}", "--",
                   "lsp-set-addresses", f"tlp{tag}{i}", f"{mac} {ip}")
                plug(ns, f"tv{tag}{i}", mac, f"{ip}/24", names["OVS_BRIDGE"], vsctl, f"tlp{tag}{i}")
            assert wait_until(lambda: all(
                sh(*nbctl, "get", "Logical_Switch_Port", f"tlp{tag}{i}", "up") == "true" for i in (1, 2)), 20)
            assert wait_until(lambda: subprocess.run(
                ["ip", "netns", "exec", ns1, "ping", "-c1", "-W1", "10.77.0.12"],
                capture_output=True).returncode == 0, 20)
            sent, got = fetch(ns1, ns2, "10.77.0.12", tmp_path, 4 << 20)
            assert got == sent

            # SIGKILL of the switch: status sees it down, the next stack restarts only it, and
            # ovn-controller puts the flows back (the bridges' devices outlived it)
            victim = int((ovs.rundir(ctx) / "ovs-vswitchd.pid").read_text())
            os.kill(victim, signal.SIGKILL)
            assert wait_until(lambda: not alive(victim))
            assert wait_until(lambda: not {s.service: s for s in Engine(load_config(conf)).status()}[
                "ovs-vswitchd"].running)
            restored = Engine(load_config(conf)).stack()
            assert [r.step for r in restored.ran] == ["start ovs-vswitchd"]
            assert wait_until(lambda: subprocess.run(
                ["ip", "netns", "exec", ns1, "ping", "-c1", "-W1", "10.77.0.12"],
                capture_output=True).returncode == 0, 20)
            pids = {s.service: s.pid for s in restored.services}

            # the provider namespace: the public gateway on its veth, whose host end is a port of
            # br-ex with no address; it reaches a port on the public network (OVN localnet on br-ex)
            inside = json.loads(sh("ip", "-n", names["PROVIDER_NAMESPACE"], "-j", "addr", "show",
                                   "dev", provider.INSIDE))[0]
            assert {f"{a['local']}/{a['prefixlen']}" for a in inside["addr_info"] if a["scope"] == "global"} \
                == {"172.24.4.1/24", "2001:db8::2/64"}
            assert sh(*vsctl, "port-to-br", names["PROVIDER_VETH"]) == names["PUBLIC_BRIDGE"]
            host_end = json.loads(sh("ip", "-j", "addr", "show", "dev", names["PROVIDER_VETH"]))[0]
            assert host_end.get("addr_info", []) == []
            sh(*nbctl, "ls-add", f"tpub{tag}", "--", "lsp-add", f"tpub{tag}", f"tln{tag}", "--",
               "lsp-set-type", f"tln{tag}", "localnet", "--", "lsp-set-addresses", f"tln{tag}", "unknown",
               "--", "lsp-set-options", f"tln{tag}", "network_name=public", "--",
               "lsp-add", f"tpub{tag}", f"tlp{tag}3", "--",
               "lsp-set-addresses", f"tlp{tag}3", "52:54:00:00:01:10 172.24.4.10")
            plug(ns3, f"tv{tag}3", "52:54:00:00:01:10", "172.24.4.10/24", names["OVS_BRIDGE"], vsctl,
                 f"tlp{tag}3")
            # through the documented way in: `stackmagic provider -- COMMAND`
            ping = [sys.executable, "-m", "stackmagic", "provider", "-c", str(conf), "--",
                    "ping", "-c1", "-W1", "172.24.4.10"]
            assert wait_until(lambda: subprocess.run(ping, capture_output=True).returncode == 0, 20)
            sent, got = fetch(names["PROVIDER_NAMESPACE"], ns3, "172.24.4.10", tmp_path, 4 << 20)
            assert got == sent
            # a route Neutron's data step would add goes into the namespace, not the host
            provider.add_route(ctx, "10.0.0.0/26", "172.24.4.10")
            assert "10.0.0.0/26 via 172.24.4.10" in sh("ip", "-n", names["PROVIDER_NAMESPACE"], "route")

            # a namespace like the metadata agent's, joined to br-int, and one that is not ours
            plug(meta, f"tm{tag}", "52:54:00:00:02:01", "10.77.0.30/24", names["OVS_BRIDGE"], vsctl)
            sh("ip", "netns", "add", stranger)
            for i, ns in ((1, ns1), (2, ns2), (3, ns3)):     # what Nova would remove with its guests
                sh("ip", "link", "del", f"tv{tag}{i}")
                sh("ip", "netns", "del", ns)
        finally:
            engine.unstack(all=True)

        # no daemon, no namespace of ours, no veth, no datapath device; the host as it was
        assert not [n for n, pid in pids.items() if pid and alive(pid)]
        left = provider.namespaces()
        assert names["PROVIDER_NAMESPACE"] not in left and meta not in left
        assert stranger in left                    # not joined to our switch: not ours to delete
        links = {link["ifname"] for link in json.loads(sh("ip", "-j", "link"))}
        assert not links & {names["OVS_BRIDGE"], names["PUBLIC_BRIDGE"], names["PROVIDER_VETH"],
                            f"tm{tag}", *(f"tv{tag}{i}" for i in (1, 2, 3))}
        assert host_view() == before

        # the next stack makes the provider side again, with the recorded route
        again = Engine(load_config(conf)).stack()
        assert all(s.healthy for s in again.services)
        assert "10.0.0.0/26 via 172.24.4.10" in sh("ip", "-n", names["PROVIDER_NAMESPACE"], "route")
        Engine(load_config(conf)).unstack(all=True)
        assert names["PROVIDER_NAMESPACE"] not in provider.namespaces()

        # clean removes the OVS and OVN databases
        dbs = [ovs.db_file(ctx), ovn.datadir(ctx) / "ovnnb_db.db", ovn.datadir(ctx) / "ovnsb_db.db"]
        assert all(p.exists() for p in dbs)
        Engine(load_config(conf)).clean()
        assert not [p for p in dbs if p.exists()]
        assert host_view() == before
    finally:
        # whatever happened: the stack stopped, and the test's own namespaces and veths gone
        Engine(load_config(conf)).unstack(all=True)
        for ns in test_namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in [f"tm{tag}", *(f"tv{tag}{i}" for i in (1, 2, 3))]:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@root
def test_the_provider_side_refuses_a_host_device_and_bad_ranges(tmp_path):
    """A PROVIDER_VETH that names a device of the host (not our veth) is refused before anything
    changes; a public range that is not a network, or a gateway outside it, is a clear error."""
    from stackmagic import provider
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.errors import ConfigError

    def ctx(*lines: str):
        conf = tmp_path / "localrc"
        conf.write_text("\n".join([*sandbox(tmp_path, "prov"), "disable_all_services",
                                   f"PROVIDER_NAMESPACE=smtest-refused-{uuid.uuid4().hex[:6]}",
                                   *lines]) + "\n")
        return Engine(load_config(conf)).ctx

    refused = ctx("PROVIDER_VETH=lo")
    with pytest.raises(ConfigError, match="PROVIDER_VETH=lo names a device"):
        provider.ensure(refused)
    assert provider.namespace(refused) not in provider.namespaces()
    assert provider.remove(refused) == []                  # lo is not ours to delete
    assert Path("/sys/class/net/lo").exists()
    with pytest.raises(ConfigError, match="FLOATING_RANGE='bogus' is not a network"):
        provider.gateways(ctx("FLOATING_RANGE=bogus"))
    with pytest.raises(ConfigError, match="outside FLOATING_RANGE"):
        provider.gateways(ctx("PUBLIC_NETWORK_GATEWAY=10.1.1.1"))
    assert provider.gateways(ctx("IP_VERSION=4", "FLOATING_RANGE=192.0.2.0/25")) == ["192.0.2.1/25"]


def test_the_datapath_is_probed_and_a_setting_that_cannot_work_is_refused(tmp_path):
    """No OVS_DATAPATH_TYPE: the kernel's datapath when its module is there, else the userspace
    one, with the reason; a value that cannot work here says what to change."""
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.errors import ConfigError

    def ctx(*lines: str):
        conf = tmp_path / "localrc"
        conf.write_text("\n".join([*sandbox(tmp_path, "dp"), "disable_all_services",
                                   "enable_service ovsdb-server ovs-vswitchd", *lines]) + "\n")
        return Engine(load_config(conf)).ctx

    kernel = Path("/sys/module/openvswitch").exists()
    assert ovs.kernel_datapath()[0] == kernel
    kind, why = ovs.datapath(ctx())
    assert kind == ("system" if kernel else "netdev")
    assert (note := ovs.OpenVSwitch().plan_notes(ctx())[0]).startswith(f"Open vSwitch datapath: {kind} (")
    assert why in note
    assert ovs.datapath(ctx("OVS_DATAPATH_TYPE=netdev")) == ("netdev", "OVS_DATAPATH_TYPE=netdev is set")
    with pytest.raises(ConfigError, match="OVS_DATAPATH_TYPE=dpdk is not supported; use one of: system, netdev"):
        ovs.datapath(ctx("OVS_DATAPATH_TYPE=dpdk"))
    if not kernel:
        with pytest.raises(ConfigError, match="unset OVS_DATAPATH_TYPE or set it to netdev"):
            ovs.datapath(ctx("OVS_DATAPATH_TYPE=system"))
        assert "unset OVS_DATAPATH_TYPE" in ovs.OpenVSwitch().plan_notes(ctx("OVS_DATAPATH_TYPE=system"))[0]
