"""Run INSIDE the stack's venv (it needs oslo.config, SQLAlchemy, openstacksdk): what
stackmagic asks of a running Nova. Executed by path with the venv's python; it imports nothing
from stackmagic. Passwords come from the config files named here or from stdin, never argv.

``service-up --conf F [--conf F2] --binary B [--log L --service S]``
    Exit 0 when Nova itself counts service ``B`` of this host as up, as its database
    servicegroup driver does (``last_seen_up`` or ``created_at`` within ``service_down_time``,
    not forced down), in the database of ``[database] connection`` of the config files (the
    cell the service reports to). With ``--log``, the report must also be newer than the last
    ``--- <time> start S:`` header stackmagic wrote there: a record left by the process before a
    restart does not count. Prints one line saying why.
``compute-node --conf F [--timeout T]``
    Wait until this host's compute node is in that database (nova-compute made it); exit 1
    when ``T`` seconds pass first.
``flavors``
    stdin: JSON ``{"auth": {...openstack.connect kwargs...}, "flavors": [{"name", "id", "ram",
    "disk", "vcpus", "extra_specs"}]}``. Creates the flavors that are missing (by name).
"""

import argparse
import json
import os
import sys
import time

import venv_db  # beside this file (sys.path[0])
from venv_db import engine, heartbeat_verdict


def load_conf(files):
    return venv_db.load_conf(files, "nova", service_down_time=60)


def service_up(args):
    import sqlalchemy

    conf = load_conf(args.conf)
    host = args.host or conf.host
    services = sqlalchemy.table("services", *map(sqlalchemy.column, (
        "host", "binary", "deleted", "created_at", "last_seen_up", "forced_down", "disabled")))
    query = (sqlalchemy.select(services.c.created_at, services.c.last_seen_up,
                               services.c.forced_down, services.c.disabled)
             .where(services.c.host == host, services.c.binary == args.binary,
                    services.c.deleted == 0))
    try:
        with engine(conf).connect() as db:
            row = db.execute(query).first()
    except Exception as err:  # noqa: BLE001 - the reason is the answer
        print(f"{args.binary}: cannot read its service record ({type(err).__name__})")
        return 1
    if row is None:
        print(f"{args.binary} on {host}: no service record yet")
        return 1
    created, seen, forced_down, disabled = row
    if forced_down:
        print(f"{args.binary} on {host}: forced down")
        return 1
    state = "disabled" if disabled else "enabled"
    return heartbeat_verdict(f"{args.binary} on {host}", seen or created, conf.service_down_time,
                             "service_down_time", f"up, {state}", args.log, args.service)


def compute_node(args):
    import sqlalchemy

    conf = load_conf(args.conf)
    host = args.host or conf.host
    query = sqlalchemy.text("SELECT hypervisor_hostname FROM compute_nodes "
                            "WHERE host = :host AND deleted = 0")
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        try:
            with engine(conf).connect() as db:
                rows = db.execute(query, {"host": host}).all()
            if rows:
                print(f"compute node of {host}: {', '.join(r[0] for r in rows)}")
                return 0
            last = "none yet"
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last = type(err).__name__
        if time.monotonic() > deadline:
            print(f"no compute node of {host} after {args.timeout:.0f} s ({last})")
            return 1
        time.sleep(0.5)


def flavors(_args):
    import openstack

    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    have = {f.name for f in conn.compute.flavors()}
    for want in spec["flavors"]:
        if want["name"] in have:
            print(f"flavor {want['name']}: present", flush=True)
            continue
        flavor = conn.compute.create_flavor(name=want["name"], id=want["id"], ram=want["ram"],
                                            disk=want["disk"], vcpus=want["vcpus"])
        if want.get("extra_specs"):
            conn.compute.create_flavor_extra_specs(flavor, want["extra_specs"])
        print(f"flavor {want['name']}: created (id {flavor.id})", flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("service-up")
    up.add_argument("--conf", action="append", required=True)
    up.add_argument("--binary", required=True)
    up.add_argument("--host")
    up.add_argument("--log")
    up.add_argument("--service")
    node = sub.add_parser("compute-node")
    node.add_argument("--conf", action="append", required=True)
    node.add_argument("--host")
    node.add_argument("--timeout", type=float, default=120)
    sub.add_parser("flavors")
    args = parser.parse_args()
    return {"service-up": service_up, "compute-node": compute_node, "flavors": flavors}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
