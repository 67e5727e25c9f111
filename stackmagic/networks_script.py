"""Run INSIDE the stack's venv: devstack's initial networks through openstacksdk, each found by
name before it is made. stdin: JSON {"admin": auth, "demo": auth (admin in the demo project),
"spec": networks.spec()}. Prints ``ok {...}`` with the public side's addresses and the routes the
provider namespace needs."""

import json
import sys

import openstack


def find_or_create(finder, creator, name, **attrs):
    found = finder(name, ignore_missing=True, **({k: v for k, v in attrs.items() if k == "network_id"}))
    if found is not None:
        print(f"  {name}: there already", flush=True)
        return found
    print(f"  {name}: made", flush=True)
    return creator(name=name, **attrs)


def default_rules(admin) -> None:
    """ICMP and SSH into every project's default security group (the rule templates Neutron
    copies into a default group when it makes one), IPv4 and IPv6."""
    net = admin.network
    wanted = [(eth, proto, port) for eth in ("IPv4", "IPv6")
              for proto, port in ((("icmp" if eth == "IPv4" else "ipv6-icmp"), None), ("tcp", 22))]
    have = {(r.ether_type, r.protocol, r.port_range_min) for r in net.default_security_group_rules()
            if r.direction == "ingress"}
    for eth, proto, port in wanted:
        if (eth, proto, port) in have:
            continue
        attrs = {"direction": "ingress", "ether_type": eth, "protocol": proto,
                 "used_in_default_sg": True, "used_in_non_default_sg": False}
        if port:
            attrs.update(port_range_min=port, port_range_max=port)
        net.create_default_security_group_rule(**attrs)
        print(f"  default security group rule: {eth} {proto} {port or ''} in", flush=True)


def main() -> None:
    payload = json.load(sys.stdin)
    spec = payload["spec"]
    admin = openstack.connect(**payload["admin"])
    demo = openstack.connect(**payload["demo"])
    demo_project = demo.current_project_id
    aliases = {e.alias for e in admin.network.extensions()}
    if spec["secgroup_rules"] and "security-groups-default-rules" in aliases:
        default_rules(admin)

    pools = {}
    if spec["use_subnetpool"] and "auto-allocated-topology" in aliases:
        for version, key in ((4, "pool_v4"), (6, "pool_v6")):
            if not spec["ipv4" if version == 4 else "ipv6"]:
                continue
            p = spec[key]
            pools[version] = find_or_create(
                admin.network.find_subnet_pool, admin.network.create_subnet_pool, p["name"],
                prefixes=[p["prefix"]], default_prefix_length=p["size"], is_shared=True,
                is_default=True)

    priv = spec["private"]
    private = demo.network.find_network(priv["network"], project_id=demo_project)
    if private is None:
        private = demo.network.create_network(name=priv["network"])
        print(f"  {priv['network']}: made", flush=True)
    subnets = []
    if spec["ipv4"]:
        attrs = {"network_id": private.id, "ip_version": 4}
        if 4 in pools:
            attrs["subnet_pool_id"] = pools[4].id
        else:
            attrs["cidr"] = priv["fixed_range"]
        if priv["gateway"]:
            attrs["gateway_ip"] = priv["gateway"]
        subnets.append(find_or_create(demo.network.find_subnet, demo.network.create_subnet,
                                      priv["subnet"], **attrs))
    if spec["ipv6"]:
        attrs = {"network_id": private.id, "ip_version": 6, "ipv6_ra_mode": priv["ra_mode"],
                 "ipv6_address_mode": priv["address_mode"]}
        if 6 in pools:
            attrs["subnet_pool_id"] = pools[6].id
        else:
            attrs["cidr"] = priv["fixed_range_v6"]
        if priv["gateway_v6"]:
            attrs["gateway_ip"] = priv["gateway_v6"]
        subnets.append(find_or_create(demo.network.find_subnet, demo.network.create_subnet,
                                      priv["subnet_v6"], **attrs))

    result = {"private": private.id, "routes": []}
    if not {"router", "external-net"} <= aliases:
        print("ok " + json.dumps(result), flush=True)
        return
    router = demo.network.find_router(spec["router"], project_id=demo_project)
    if router is None:
        router = demo.network.create_router(name=spec["router"])
        print(f"  {spec['router']}: made", flush=True)
    pub = spec["public"]
    public = admin.network.find_network(pub["network"])
    if public is None:
        attrs = {"is_router_external": True}
        if "auto-allocated-topology" in aliases:
            attrs["is_default"] = True
        if pub["provider"]:
            attrs.update(provider_network_type=pub["type"], provider_physical_network=pub["physnet"])
        public = admin.network.create_network(name=pub["network"], **attrs)
        print(f"  {pub['network']}: made", flush=True)
    attached = {ip["subnet_id"] for port in demo.network.ports(device_id=router.id)
                for ip in port.fixed_ips}
    for subnet in subnets:
        if subnet.id not in attached:
            demo.network.add_interface_to_router(router, subnet_id=subnet.id)
            print(f"  {spec['router']}: interface on {subnet.name}", flush=True)
    public_subnets = {}
    if spec["ipv4"]:
        attrs = {"network_id": public.id, "ip_version": 4, "cidr": pub["range"],
                 "is_dhcp_enabled": pub["dhcp"]}
        if pub["gateway"]:
            attrs["gateway_ip"] = pub["gateway"]
        if pub["pool"]:
            start, _, end = pub["pool"].replace("start=", "").replace("end=", "").partition(",")
            attrs["allocation_pools"] = [{"start": start, "end": end}]
        public_subnets[4] = find_or_create(admin.network.find_subnet, admin.network.create_subnet,
                                           pub["subnet"], **attrs)
    if spec["ipv6"]:
        public_subnets[6] = find_or_create(
            admin.network.find_subnet, admin.network.create_subnet, pub["subnet_v6"],
            network_id=public.id, ip_version=6, cidr=pub["range_v6"], gateway_ip=pub["gateway_v6"],
            is_dhcp_enabled=pub["dhcp"])
    router = demo.network.get_router(router.id)
    if not router.external_gateway_info:
        router = admin.network.update_router(router, external_gateway_info={"network_id": public.id})
        print(f"  {spec['router']}: gateway on {pub['network']}", flush=True)
    router_ips = [ip["ip_address"] for ip in router.external_gateway_info.get("external_fixed_ips", [])]
    result.update(router=router.id, public=public.id, router_ips=router_ips)
    if 4 in public_subnets:
        result.update(public_cidr=public_subnets[4].cidr, public_gateway=public_subnets[4].gateway_ip)
    if 6 in public_subnets:
        result.update(public_cidr_v6=public_subnets[6].cidr,
                      public_gateway_v6=public_subnets[6].gateway_ip)
        v6_gw = next((ip for ip in router_ips if ":" in ip), None)
        for subnet in subnets:
            if subnet.ip_version == 6 and v6_gw:
                result["routes"].append([subnet.cidr, v6_gw])
    print("ok " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
