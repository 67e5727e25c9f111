"""Run INSIDE the stack's venv: prove the cloud works through openstacksdk, one JSON line per check.
stdin: JSON {"cloud": {...openstack.connect kwargs...}, "checks": ["token", "projects", ...]}."""

import json
import sys

import openstack


def main() -> None:
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["cloud"])
    for check in spec["checks"]:
        try:
            if check == "token":
                token = conn.auth_token
                data = {"issued": bool(token), "user": conn.current_user_id,
                        "project": conn.current_project_id}
            elif check == "projects":
                data = {"projects": sorted(p.name for p in conn.identity.projects())}
            elif check == "users":
                data = {"users": sorted(u.name for u in conn.identity.users())}
            elif check == "services":
                data = {"services": sorted(f"{s.type}:{s.name}" for s in conn.identity.services())}
            elif check == "images":
                data = {"images": [{"name": i.name, "status": i.status, "size": i.size,
                                    "checksum": i.checksum, "disk_format": i.disk_format}
                                   for i in conn.image.images()]}
            elif check == "resource_providers":
                data = {"resource_providers": [p.name for p in conn.placement.resource_providers()]}
            else:
                raise ValueError(f"unknown check {check}")
            print(json.dumps({"check": check, "ok": True, **data}), flush=True)
        except Exception as err:  # noqa: BLE001 - reported per check
            print(json.dumps({"check": check, "ok": False, "error": f"{type(err).__name__}: {err}"}), flush=True)


if __name__ == "__main__":
    main()
