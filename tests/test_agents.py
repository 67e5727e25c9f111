"""Neutron's agent layout, for real (issue 11): the seed post's first localrc — its two lines on
top of devstack's defaults, plus what this machine needs — stacked once for this module, then:

- the layout is ML2/Open vSwitch: q-agt, q-dhcp, q-l3 and q-meta run and are alive in
  Neutron's agent list; the OVN services the defaults list are not running;
- ``verify``'s guest: its address from the DHCP agent's dnsmasq (in a ``qdhcp-`` namespace), its
  key from the metadata agent (through the router's proxy), ping and SSH through a floating IP
  that the L3 agent routes (``qrouter-`` namespace), from the provider namespace;
- switching to devstack's default layout (OVN) and back, with no ``clean`` between: the other
  layout's agents, namespaces and bridges go, and a guest is reached each time;
- ``unstack --all`` leaves no agent, dnsmasq, haproxy, qemu or OVS process, no namespace, and
  the host's addresses and routes as they were.

Root only; slow. Uses the machine's libvirtd and Open vSwitch: nothing else may run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from stackmagic.samples import sample_path, sandbox
from tests.conftest import wait_until
from tests.test_compute import domains, host_network, namespaces, our_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]

#: what this machine needs beside the post's lines (and what the test does not use)
MACHINE = ["MIRROR_FROM_PYPI=True", "disable_service c-sch c-api c-vol horizon tempest"]
AGENTS = ("q-agt", "q-dhcp", "q-l3", "q-meta")
OVN = ("ovn-northd", "ovn-controller", "q-ovn-agent")


def write_conf(root: Path, lines: list[str], post_lines: bool = True) -> None:
    """local.conf: the sandbox, the post's two lines (or devstack's defaults alone), MACHINE."""
    post = [f"source {sample_path('blog-neutron')}"] if post_lines else []
    (root / "local.conf").write_text("\n".join(["[[local|localrc]]", *lines, *post, *MACHINE, ""]))


@pytest.fixture(scope="module")
def cloud():
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    root = Path(tempfile.mkdtemp(prefix="sm-agents-"))
    root.chmod(0o755)                 # rabbitmq and qemu run as their own users
    lines = sandbox(root, "agents")
    write_conf(root, lines)
    conf = root / "local.conf"
    before = {"network": host_network(), "namespaces": namespaces(), "domains": domains(),
              "pids": {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}}
    try:
        summary = Engine(load_config(conf)).stack()
        yield {"conf": conf, "root": root, "lines": lines, "summary": summary, "before": before}
    finally:
        Engine(load_config(conf)).unstack(all=True)
        Engine(load_config(conf)).clean()
        subprocess.run(["tmux", "-L", load_config(conf).settings["TMUX_SOCKET"], "kill-server"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def engine_for(cloud):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    return Engine(load_config(cloud["conf"]))


def test_the_agent_layout_runs_and_the_ovn_services_do_not(cloud):
    engine = engine_for(cloud)
    assert engine.config.layout == "openvswitch"
    status = {s.service: s for s in engine.status()}
    unhealthy = {n: s.detail for n, s in status.items() if not s.healthy}
    assert not unhealthy
    for agent in AGENTS:
        assert status[agent].running and status[agent].healthy, status[agent]
    assert not set(OVN) & set(engine.tmux.running())


def test_a_guest_is_reached_through_the_agents(cloud):
    from stackmagic import guestcheck

    engine = engine_for(cloud)
    found = guestcheck.run(engine)
    assert found["ok"], found
    stages = {st["stage"]: st for st in found["stages"]}
    assert stages["ssh"]["hostname"].split(".")[0] == found["server"]
    spaces = namespaces()
    assert any(ns.startswith("qdhcp-") for ns in spaces)
    assert any(ns.startswith("qrouter-") for ns in spaces)


def test_switching_to_ovn_and_back_needs_no_clean(cloud):
    """The default localrc (OVN) on the same stack, then the post's again: each time the other
    layout's agents, namespaces and bridges go, and a guest is reached."""
    from stackmagic import guestcheck
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    for agents in (False, True):
        write_conf(cloud["root"], cloud["lines"], post_lines=agents)
        engine = Engine(load_config(cloud["conf"]))
        engine.stack()
        assert engine.config.layout == ("openvswitch" if agents else "ovn")
        status = {s.service: s for s in engine.status()}
        assert not {n: s.detail for n, s in status.items() if not s.healthy}
        running = set(engine.tmux.running())
        assert set(AGENTS if agents else OVN) <= running
        assert not set(OVN if agents else AGENTS) & running
        spaces = namespaces()
        stale = ("ovnmeta-",) if agents else ("qdhcp-", "qrouter-")
        assert not [ns for ns in spaces if ns.startswith(stale)], spaces
        bridges = subprocess.run(ovs.vsctl_argv(engine.ctx, "list-br"), capture_output=True,
                                 text=True, check=True).stdout.split()
        assert ("br-tun" in bridges) == agents
        found = guestcheck.run(engine)
        assert found["ok"], found


def test_unstack_leaves_nothing(cloud):
    engine_for(cloud).unstack(all=True)
    before = cloud["before"]
    assert wait_until(lambda: not our_processes(before["pids"]), timeout=60), our_processes(before["pids"])
    # what the agents start in their namespaces (dnsmasq, the routers' haproxy and radvd)
    assert not our_processes(before["pids"], ("dnsmasq", "haproxy", "radvd"))
    assert namespaces() <= before["namespaces"]
    assert domains() <= before["domains"]
    assert host_network() == before["network"]

