"""Run INSIDE the stack's venv (it needs openstacksdk): apply identity operations from stdin.

stdin: JSON {"auth": {...}, "ops": [...]} — passwords travel on stdin, never on a command line.
Each op is get-or-create, so running it again changes nothing. Prints one line per op.
This file is executed by path with the venv's python; it imports nothing from stackmagic.
"""

import json
import sys

import openstack


def main() -> None:
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    idn = conn.identity
    cache: dict = {}

    def find(kind: str, name: str, **kw):
        key = (kind, name, tuple(sorted(kw.items())))
        if key not in cache:
            finder = getattr(idn, f"find_{kind}")
            cache[key] = finder(name, ignore_missing=True, **kw)
        return cache[key]

    def domain_id(name: str) -> str:
        return find("domain", name).id if name.lower() != "default" else "default"

    for op in spec["ops"]:
        kind = op["op"]
        if kind == "domain":
            if not find("domain", op["name"]):
                cache[("domain", op["name"], ())] = idn.create_domain(name=op["name"])
        elif kind == "project":
            dom = domain_id(op.get("domain", "default"))
            if not find("project", op["name"], domain_id=dom):
                cache[("project", op["name"], (("domain_id", dom),))] = idn.create_project(
                    name=op["name"], domain_id=dom)
        elif kind == "role":
            if not find("role", op["name"]):
                cache[("role", op["name"], ())] = idn.create_role(name=op["name"])
        elif kind == "group":
            dom = domain_id(op.get("domain", "default"))
            if not find("group", op["name"], domain_id=dom):
                cache[("group", op["name"], (("domain_id", dom),))] = idn.create_group(
                    name=op["name"], domain_id=dom, description=op.get("description", ""))
        elif kind == "user":
            dom = domain_id(op.get("domain", "default"))
            user = find("user", op["name"], domain_id=dom)
            if not user:
                cache[("user", op["name"], (("domain_id", dom),))] = idn.create_user(
                    name=op["name"], password=op["password"], domain_id=dom, email=op.get("email"))
            else:
                idn.update_user(user, password=op["password"])
        elif kind == "grant":
            role = find("role", op["role"])
            dom = domain_id(op.get("actor_domain", "default"))
            actor = find("user", op["user"], domain_id=dom) if "user" in op else find("group", op["group"], domain_id=dom)
            if "project" in op:
                target = find("project", op["project"], domain_id=domain_id(op.get("project_domain", "default")))
                if "user" in op:
                    idn.assign_project_role_to_user(target, actor, role)
                else:
                    idn.assign_project_role_to_group(target, actor, role)
            elif "domain" in op:
                target = idn.get_domain(domain_id(op["domain"]))
                if "user" in op:
                    idn.assign_domain_role_to_user(target, actor, role)
                else:
                    idn.assign_domain_role_to_group(target, actor, role)
            else:
                idn.assign_system_role_to_user(actor, role, op.get("system", "all"))
        elif kind == "service":
            found = [s for s in idn.services() if s.type == op["type"] and s.name == op["name"]]
            if not found:
                idn.create_service(name=op["name"], type=op["type"], description=op.get("description", ""))
        elif kind == "endpoint":
            service = [s for s in idn.services() if s.name == op["service"]][0]
            existing = [e for e in idn.endpoints(service_id=service.id, interface=op["interface"])
                        if e.region_id == op["region"]]
            if existing:
                if existing[0].url != op["url"]:
                    idn.update_endpoint(existing[0], url=op["url"])
            else:
                idn.create_endpoint(service_id=service.id, interface=op["interface"], url=op["url"],
                                    region_id=op["region"])
        else:
            raise SystemExit(f"unknown identity op {kind!r}")
        shown = {k: v for k, v in op.items() if k != "password"}
        print("ok " + json.dumps(shown, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
