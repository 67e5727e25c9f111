"""Which Neutron layout a localrc asks for, and the services that layout sets aside.

devstack runs Neutron in one of two layouts. The default is ML2/OVN (``Q_AGENT=ovn``): OVN's
own DHCP, routers and metadata, services ``ovn-northd``, ``ovn-controller``, ``q-ovn-agent``.
The older one, still in devstack, is ML2/Open vSwitch with its agents (``Q_AGENT=openvswitch``):
``q-agt`` (the Open vSwitch L2 agent), ``q-dhcp`` (dnsmasq), ``q-l3`` (routers in namespaces)
and ``q-meta`` (the metadata proxy). A localrc that enables one of those agents, as the seed
post's first localrc does, asks for that layout: the OVN services that devstack's default
ENABLED_SERVICES lists are then set aside (they are not started; ``plan`` says why).
Settings that ask for both at once are an error that says what to remove.
"""

from __future__ import annotations

from collections.abc import Mapping

from stackmagic import services
from stackmagic.catalog import names
from stackmagic.errors import ConfigError

#: the agent layout's services (the q- names come from Neutron's first name, Quantum)
AGENTS = ("q-agt", "q-dhcp", "q-l3", "q-meta")
#: devstack's lib/neutron names for the same services (from its neutron-legacy split); each
#: runs as its q- name, as devstack's ``is_service_enabled q-agt neutron-agent`` treats them
NEW_NAMES = {"neutron-api": "q-svc", "neutron-agent": "q-agt", "neutron-dhcp": "q-dhcp",
             "neutron-l3": "q-l3", "neutron-metadata-agent": "q-meta"}
#: the OVN layout's own services (ovsdb-server and ovs-vswitchd serve both layouts)
OVN_ONLY = ("ovn-northd", "ovn-controller", "q-ovn-agent")
OVN, OPENVSWITCH = "ovn", "openvswitch"


def run_names(enabled: list[str], disabled: list[str]) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """``enabled`` with the names that run as others replaced by those (devstack's neutron-*
    names by the q- names; the seed post's old names by their successors, :data:`names.RUNS_AS`,
    less what the localrc disabled), and {name: what it runs as} for those replaced."""
    table = {**{new: (q,) for new, q in NEW_NAMES.items()}, **names.RUNS_AS}
    renamed = {s: tuple(r for r in table[s] if r not in disabled) for s in enabled if s in table}
    out = [r for s in enabled for r in renamed.get(s, (s,))]
    return list(dict.fromkeys(out)), renamed


def neutron_layout(values: Mapping[str, str], enabled: list[str], file: str) -> tuple[str, dict[str, str]]:
    """(layout, {service: why it is not started}) for these settings and enabled services."""
    agent = (values.get("Q_AGENT") or "").strip().lower()
    mech = (values.get("Q_ML2_PLUGIN_MECHANISM_DRIVERS") or "").strip().lower()
    agents = [s for s in AGENTS if services.is_service_enabled(enabled, s)]
    if agent not in ("", OVN, OPENVSWITCH):
        raise ConfigError(f"{file}: Q_AGENT={agent} is not a layout stackmagic runs; use "
                          "Q_AGENT=ovn (devstack's default) or Q_AGENT=openvswitch (the agents "
                          "q-agt, q-dhcp, q-l3, q-meta), or remove the line")
    if agents and agent == OVN:
        raise ConfigError(f"{file}: Q_AGENT=ovn contradicts the agents enabled "
                          f"({', '.join(agents)}): they belong to the Open vSwitch layout. Remove "
                          f"Q_AGENT=ovn (or set Q_AGENT=openvswitch), or disable_service "
                          f"{' '.join(agents)}")
    wants_agents = bool(agents) or agent == OPENVSWITCH
    if not wants_agents:
        return OVN, {}
    if mech and "ovn" in mech.split(","):
        raise ConfigError(f"{file}: Q_ML2_PLUGIN_MECHANISM_DRIVERS={mech} names ovn, but the "
                          "Open vSwitch agent layout is asked for (q-agt or Q_AGENT=openvswitch); "
                          "set it to openvswitch or remove the line")
    if not services.is_service_enabled(enabled, "q-agt"):
        why = ("Q_AGENT=openvswitch" if agent == OPENVSWITCH else ", ".join(agents))
        raise ConfigError(f"{file}: {why} asks for the Open vSwitch agent layout, which needs its "
                          "L2 agent: add enable_service q-agt (and q-dhcp q-l3 q-meta, as devstack "
                          "runs them), or remove what asked for it")
    reason = (f"the Open vSwitch agent layout ({', '.join(agents)}) replaces it")
    aside = {s: reason for s in OVN_ONLY if s in enabled}
    return OPENVSWITCH, aside
