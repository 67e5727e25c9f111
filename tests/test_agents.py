"""Neutron's agent layout, for real (issue 11), and the seed post's first localrc on devstack's
whole default set (issue 12): the session's default cloud (tests/default_cloud.py), after
test_compute has used it, gets the post's two lines and is stacked again — no ``clean``:

- the layout is ML2/Open vSwitch: q-agt, q-dhcp, q-l3 and q-meta run and are alive in
  Neutron's agent list, every other service of the default set (Cinder and Horizon included)
  stays healthy; the OVN services are not running, their namespaces are gone, br-tun exists;
- ``verify``'s guest: its address from the DHCP agent's dnsmasq (in a ``qdhcp-`` namespace), its
  key from the metadata agent (through the router's proxy), ping and SSH through a floating IP
  that the L3 agent routes (``qrouter-`` namespace), from the provider namespace, and a Cinder
  volume seen inside it;
- back to the empty localrc (OVN), again with no ``clean``: the agents, their namespaces and
  br-tun go, and a guest is reached.

test_compute's last test then unstacks what this leaves. Root only; slow.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.default_cloud import engine_for, namespaces, write_localrc

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]

AGENTS = ("q-agt", "q-dhcp", "q-l3", "q-meta")
OVN = ("ovn-northd", "ovn-controller", "q-ovn-agent")


def restack(cloud: dict, *, post: bool):
    write_localrc(cloud, post=post)
    engine = engine_for(cloud)
    engine.stack()
    return engine_for(cloud)


def assert_layout(engine, *, agents: bool) -> None:
    from stackmagic.catalog import openvswitch as ovs

    assert engine.config.layout == ("openvswitch" if agents else "ovn")
    status = {s.service: s for s in engine.status()}
    assert not {n: s.detail for n, s in status.items() if not s.healthy}
    assert {"c-api", "c-vol", "horizon", "n-cpu"} <= set(status)
    running = set(engine.tmux.running())
    assert set(AGENTS if agents else OVN) <= running
    assert not set(OVN if agents else AGENTS) & running
    stale = ("ovnmeta-",) if agents else ("qdhcp-", "qrouter-")
    assert not [ns for ns in namespaces() if ns.startswith(stale)], namespaces()
    bridges = subprocess.run(ovs.vsctl_argv(engine.ctx, "list-br"), capture_output=True,
                             text=True, check=True).stdout.split()
    assert ("br-tun" in bridges) == agents


def test_the_posts_localrc_turns_the_default_set_to_the_agent_layout(default_cloud):
    assert_layout(restack(default_cloud, post=True), agents=True)


def test_a_guest_is_reached_through_the_agents(default_cloud):
    from stackmagic import guestcheck

    engine = engine_for(default_cloud)
    assert engine.config.layout == "openvswitch"
    found = guestcheck.run(engine)
    assert found["ok"], found
    stages = {st["stage"]: st for st in found["stages"]}
    assert stages["ssh"]["hostname"].split(".")[0] == found["server"]
    assert stages["volume"]["device"].startswith("vd")
    spaces = namespaces()
    assert any(ns.startswith("qdhcp-") for ns in spaces)
    assert any(ns.startswith("qrouter-") for ns in spaces)


def test_back_to_ovn_needs_no_clean(default_cloud):
    from stackmagic import guestcheck

    engine = restack(default_cloud, post=False)
    assert_layout(engine, agents=False)
    found = guestcheck.run(engine)
    assert found["ok"], found
