"""Neutron's agent layout, for real (issue 11), and the seed post's first localrc on devstack's
whole default set (issue 12): the session's default cloud (tests/default_cloud.py), after
test_compute has used it, gets the post's two lines and is stacked again — no ``clean``:

- the layout is ML2/Open vSwitch: q-agt, q-dhcp, q-l3 and q-meta run and are alive in
  Neutron's agent list, every other service of the default set (Cinder and Horizon included)
  stays healthy; the OVN services are not running, their namespaces are gone, br-tun exists;
- ``verify``'s guest: its address from the DHCP agent's dnsmasq (in a ``qdhcp-`` namespace), its
  key from the metadata agent (through the router's proxy), ping and SSH through a floating IP
  that the L3 agent routes (``qrouter-`` namespace), from the provider namespace, and a Cinder
  volume seen inside it.

Back to OVN (no ``clean``) is test_everything's first step, with Swift and Heat; test_compute's
last test then unstacks what that module leaves. Root only; slow.
"""

from __future__ import annotations

import os

import pytest

from tests.default_cloud import assert_layout, engine_for, namespaces, restack

pytestmark = [pytest.mark.slow, pytest.mark.cloud_stage("agents"),
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]



def test_the_posts_localrc_turns_the_default_set_to_the_agent_layout(default_cloud):
    assert_layout(restack(default_cloud, "post"), agents=True)


def test_a_guest_is_reached_through_the_agents(default_cloud):
    from stackmagic import guestcheck

    engine = engine_for(default_cloud)
    assert engine.config.layout == "openvswitch"
    found = guestcheck.run(engine)
    assert found["ok"], guestcheck.explain(found)
    stages = {st["stage"]: st for st in found["stages"]}
    assert stages["ssh"]["hostname"].split(".")[0] == found["server"]
    assert stages["volume"]["device"].startswith("vd")
    spaces = namespaces()
    assert any(ns.startswith("qdhcp-") for ns in spaces)
    assert any(ns.startswith("qrouter-") for ns in spaces)


def test_a_failed_guest_check_is_explained_with_the_guests_last_console_lines():
    from stackmagic.guestcheck import explain

    found = {"ok": False, "stages": [
        {"stage": "active", "ok": True, "seconds": 12.5, "addresses": {"private": ["10.0.0.5"]}},
        {"stage": "console", "ok": False, "seconds": 311.1, "error": "no banner",
         "console_tail": ["udhcpc: sending discover", "metadata: no answer"]}]}
    assert explain(found).splitlines() == [
        'active: ok after 12.5 s {"addresses": {"private": ["10.0.0.5"]}}',
        'console: FAILED after 311.1 s {"error": "no banner"}',
        "    | udhcpc: sending discover",
        "    | metadata: no answer"]
