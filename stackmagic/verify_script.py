"""Run INSIDE the stack's venv: prove the cloud works through openstacksdk, one JSON line per check.
stdin: JSON {"cloud": {...openstack.connect kwargs...}, "checks": [{"name", "call", "fields", "join"}]}.
A check whose call is "token" issues a token; any other call is an openstacksdk path
("image.images") whose items are listed, keeping their "fields"."""

import json
import sys

import openstack


def item(obj, fields, join):
    values = [getattr(obj, f) for f in fields]
    if join is not None:
        return join.join(str(v) for v in values)
    if len(fields) == 1:
        return values[0]
    return dict(zip(fields, values))


def run(conn, check):
    if check["call"] == "token":
        return {"issued": bool(conn.auth_token), "user": conn.current_user_id,
                "project": conn.current_project_id}
    target = conn
    for part in check["call"].split("."):
        target = getattr(target, part)
    items = [item(obj, check["fields"], check["join"]) for obj in target()]
    if all(isinstance(i, str) for i in items):
        items.sort()
    return {check["name"]: items}


def main() -> None:
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["cloud"])
    for check in spec["checks"]:
        try:
            data = run(conn, check)
            print(json.dumps({"check": check["name"], "ok": True, **data}), flush=True)
        except Exception as err:  # noqa: BLE001 - reported per check
            print(json.dumps({"check": check["name"], "ok": False,
                              "error": f"{type(err).__name__}: {err}"}), flush=True)


if __name__ == "__main__":
    main()
