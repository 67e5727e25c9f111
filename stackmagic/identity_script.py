"""Run INSIDE the stack's venv (it needs openstacksdk): apply identity operations from stdin.

stdin: JSON {"auth": {...}, "ops": [...]} — passwords travel on stdin, never on a command line.
Each op is get-or-create, so running it again changes nothing. What exists is listed once at the
start (a handful of calls), so each op costs at most one request. Prints one line per op.
This file is executed by path with the venv's python; it imports nothing from stackmagic.
"""

import json
import sys

import openstack
import openstack.exceptions


def main() -> None:
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    idn = conn.identity
    domains = {d.name.lower(): d.id for d in idn.domains()}
    projects = {(p.name, p.domain_id): p.id for p in idn.projects()}
    roles = {r.name: r.id for r in idn.roles()}
    users = {(u.name, u.domain_id): u.id for u in idn.users()}
    groups = {(g.name, g.domain_id): g.id for g in idn.groups()}
    services = {(s.name, s.type): s.id for s in idn.services()}
    endpoints = {(e.service_id, e.interface, e.region_id): e for e in idn.endpoints()}

    def dom(name: str) -> str:
        return domains[name.lower()] if name.lower() in domains else name

    for op in spec["ops"]:
        kind = op["op"]
        d = dom(op.get("domain", "default")) if kind in ("project", "user", "group") else None
        if kind == "domain":
            if op["name"].lower() not in domains:
                domains[op["name"].lower()] = idn.create_domain(
                    name=op["name"], description=op.get("description", "")).id
        elif kind == "project":
            if (op["name"], d) not in projects:
                projects[(op["name"], d)] = idn.create_project(name=op["name"], domain_id=d).id
        elif kind == "role":
            if op["name"] not in roles:
                roles[op["name"]] = idn.create_role(name=op["name"]).id
        elif kind == "group":
            if (op["name"], d) not in groups:
                groups[(op["name"], d)] = idn.create_group(
                    name=op["name"], domain_id=d, description=op.get("description", "")).id
        elif kind == "user":
            if (op["name"], d) not in users:
                users[(op["name"], d)] = idn.create_user(
                    name=op["name"], password=op["password"], domain_id=d, email=op.get("email")).id
            elif op.get("reset_password", True):
                try:
                    idn.update_user(users[(op["name"], d)], password=op["password"])
                except openstack.exceptions.BadRequestException as err:
                    # security_compliance refuses a password used recently: it is unchanged
                    if "recently" not in str(err).lower():
                        raise
        elif kind == "grant":
            role = roles[op["role"]]
            actor_dom = dom(op.get("actor_domain", "default"))
            if "user" in op:
                actor, path = users[(op["user"], actor_dom)], "users"
            else:
                actor, path = groups[(op["group"], actor_dom)], "groups"
            if "project" in op:
                target = "projects/" + projects[(op["project"], dom(op.get("project_domain", "default")))]
            elif "domain" in op:
                target = "domains/" + dom(op["domain"])
            else:
                target = "system"
            url = f"/{target}/{path}/{actor}/roles/{role}"
            resp = idn.put(url)
            if resp.status_code >= 400:
                raise SystemExit(f"grant {op} failed: HTTP {resp.status_code} {resp.text[:200]}")
        elif kind == "service":
            if (op["name"], op["type"]) not in services:
                services[(op["name"], op["type"])] = idn.create_service(
                    name=op["name"], type=op["type"], description=op.get("description", "")).id
        elif kind == "endpoint":
            service = next(sid for (name, _), sid in services.items() if name == op["service"])
            key = (service, op["interface"], op["region"])
            if key in endpoints:
                if endpoints[key].url != op["url"]:
                    idn.update_endpoint(endpoints[key], url=op["url"])
            else:
                endpoints[key] = idn.create_endpoint(service_id=service, interface=op["interface"],
                                                     url=op["url"], region_id=op["region"])
        else:
            raise SystemExit(f"unknown identity op {kind!r}")
        shown = {k: v for k, v in op.items() if k != "password"}
        print("ok " + json.dumps(shown, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
