"""devstack's initial networks (lib/neutron_plugins/services/l3 create_neutron_initial_network),
made in one process with openstacksdk (``networks_script.py`` in the stack's venv), then the
provider side of ``public`` given its addresses in stackmagic's provider namespace.

What is made, each found by name first so a re-run changes nothing:

- default security group rules that let ICMP and SSH in (IPv4 and IPv6), so every project's
  default group admits ping and ssh as Tempest's scenarios and newcomers expect;
- the shared default subnet pools ``shared-default-subnetpool-v4`` (IPV4_ADDRS_SAFE_TO_USE,
  /26 per subnet) and ``-v6`` (IPV6_ADDRS_SAFE_TO_USE, /64) when Neutron has
  ``auto-allocated-topology`` and USE_SUBNETPOOL is true;
- ``private`` (PRIVATE_NETWORK_NAME) in the demo project with ``private-subnet`` (from the pool,
  or FIXED_RANGE) and ``ipv6-private-subnet`` (SLAAC) when IP_VERSION has 6;
- ``router1`` (Q_ROUTER_NAME) in the demo project, with the private subnets as interfaces;
- ``public`` (PUBLIC_NETWORK_NAME): external, default, flat on PUBLIC_PHYSICAL_NETWORK, with
  ``public-subnet`` (FLOATING_RANGE, PUBLIC_NETWORK_GATEWAY, no DHCP) and
  ``ipv6-public-subnet`` (IPV6_PUBLIC_RANGE); router1's gateway on it.

devstack then puts the public gateway address on br-ex *in the host* and routes the private
IPv6 range through the router. Here those go into the provider namespace instead
(:mod:`stackmagic.provider`): the host's addresses and routes are never touched.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackmagic import identity
from stackmagic.errors import StackError

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).with_name("networks_script.py")


def ipv6_safe_range(ctx: "Context") -> str:
    """IPV6_ADDRS_SAFE_TO_USE, or a unique local /56 (RFC 4193) that stays the same for this
    stack: devstack draws a random one on every run, which would change the network's subnet
    pool under a running cloud; here its global ID is derived from DATA_DIR."""
    given = ctx.settings.get("IPV6_ADDRS_SAFE_TO_USE")
    if given:
        return given
    digest = hashlib.sha256(str(ctx.settings.data_dir).encode()).hexdigest()[:10]
    return f"fd{digest[:2]}:{digest[2:6]}:{digest[6:10]}::/56"


def spec(ctx: "Context") -> dict[str, Any]:
    """Everything the script needs, from the settings (devstack's names and defaults)."""
    s = ctx.settings
    ip_version = s.get("IP_VERSION") or "4+6"
    if ip_version not in ("4", "6", "4+6"):
        raise StackError(f"IP_VERSION={ip_version}: use 4, 6 or 4+6")
    v6_safe = ipv6_safe_range(ctx)
    v6_net = ipaddress.ip_network(v6_safe, strict=False)
    fixed_v6 = s.get("FIXED_RANGE_V6") or str(
        v6_net if v6_net.prefixlen > 63 else next(v6_net.subnets(new_prefix=64)))
    safe_v4 = s.get("IPV4_ADDRS_SAFE_TO_USE") or "10.0.0.0/22"
    return {
        "ipv4": ip_version.startswith("4"), "ipv6": ip_version.endswith("6"),
        "use_subnetpool": s.bool("USE_SUBNETPOOL", True),
        "pool_v4": {"name": s.get("SUBNETPOOL_NAME") or "shared-default-subnetpool-v4",
                    "prefix": s.get("SUBNETPOOL_PREFIX_V4") or safe_v4,
                    "size": s.int("SUBNETPOOL_SIZE_V4", 26)},
        "pool_v6": {"name": s.get("SUBNETPOOL_NAME") or "shared-default-subnetpool-v6",
                    "prefix": s.get("SUBNETPOOL_PREFIX_V6") or v6_safe,
                    "size": s.int("SUBNETPOOL_SIZE_V6", 64)},
        "private": {"network": s.get("PRIVATE_NETWORK_NAME") or "private",
                    "subnet": s.get("PRIVATE_SUBNET_NAME") or "private-subnet",
                    "subnet_v6": s.get("IPV6_PRIVATE_SUBNET_NAME") or "ipv6-private-subnet",
                    "fixed_range": s.get("FIXED_RANGE") or safe_v4,
                    "fixed_range_v6": fixed_v6,
                    "gateway": s.get("NETWORK_GATEWAY") or None,
                    "gateway_v6": s.get("IPV6_PRIVATE_NETWORK_GATEWAY") or None,
                    "ra_mode": s.get("IPV6_RA_MODE") or "slaac",
                    "address_mode": s.get("IPV6_ADDRESS_MODE") or "slaac"},
        "public": {"network": s.get("PUBLIC_NETWORK_NAME") or "public",
                   "subnet": s.get("PUBLIC_SUBNET_NAME") or "public-subnet",
                   "subnet_v6": s.get("IPV6_PUBLIC_SUBNET_NAME") or "ipv6-public-subnet",
                   "range": s.get("FLOATING_RANGE") or "172.24.4.0/24",
                   "range_v6": s.get("IPV6_PUBLIC_RANGE") or "2001:db8::/64",
                   "gateway": s.get("PUBLIC_NETWORK_GATEWAY") or None,
                   "gateway_v6": s.get("IPV6_PUBLIC_NETWORK_GATEWAY") or "2001:db8::2",
                   "pool": s.get("Q_FLOATING_ALLOCATION_POOL") or None,
                   "dhcp": s.bool("PUBLIC_SUBNET_ENABLE_DHCP", False),
                   "physnet": s.get("PUBLIC_PHYSICAL_NETWORK") or "public",
                   "provider": s.bool("Q_USE_PROVIDERNET_FOR_PUBLIC", True),
                   "type": s.get("PUBLIC_PROVIDERNET_TYPE") or "flat"},
        "router": s.get("Q_ROUTER_NAME") or "router1",
        "secgroup_rules": s.bool("NEUTRON_DEFAULT_SG_ALLOWS_PING_SSH", True),
    }


def create_initial(ctx: "Context") -> dict[str, Any]:
    """Make the networks (or find them), then give the provider namespace the public side."""
    from stackmagic import provider

    want = spec(ctx)
    admin = identity.admin_auth(ctx)
    payload = json.dumps({"admin": admin, "demo": {**admin, "project_name": "demo"}, "spec": want})
    out = ctx.run(ctx.venv.python, SCRIPT, input=payload, timeout=600)
    made = next((json.loads(line[3:]) for line in out.splitlines() if line.startswith("ok ")), None)
    if made is None:
        raise StackError("the initial networks were not made (see the step's log)")
    ctx.log(f"public: {made.get('public_cidr')} gateway {made.get('public_gateway')}; "
            f"{want['router']} on it at {', '.join(made.get('router_ips', []))}")
    # the gateway addresses are in the provider namespace already (ovn's data step, from the
    # same settings); devstack routes the private IPv6 range through the router on the host,
    # here inside that namespace (IPv4 private addresses are reached through floating IPs)
    for cidr, via in made.get("routes", []):
        provider.add_route(ctx, cidr, via)
    return made
