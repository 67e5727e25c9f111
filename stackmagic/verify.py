"""Prove a running stack works: real API calls through openstacksdk, as the admin user.

Which checks run depends on what is enabled: a token and the projects/users/services devstack
creates (Keystone), the image list (Glance), resource providers (Placement).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackmagic.errors import StackError

if TYPE_CHECKING:
    from stackmagic.engine import Engine

SCRIPT = Path(__file__).with_name("verify_script.py")


@dataclass
class Check:
    name: str
    ok: bool
    data: dict[str, Any]

    def describe(self) -> str:
        d = self.data
        if not self.ok:
            return f"{self.name}: FAILED {d.get('error', '')}"
        if self.name == "token":
            return "token: issued for admin"
        if self.name == "images":
            return "images: " + ", ".join(f"{i['name']} ({i['status']}, {i['size']} bytes, "
                                          f"{i['disk_format']})" for i in d["images"])
        key = self.name
        items = d.get(key, [])
        return f"{key}: {len(items)}" + (" — " + ", ".join(items) if items else "")


def checks_for(engine: "Engine") -> list[str]:
    cfg = engine.config
    out: list[str] = []
    if cfg.is_service_enabled("key"):
        out += ["token", "projects", "users", "services"]
    if cfg.is_service_enabled("g-api"):
        out.append("images")
    if cfg.is_service_enabled("placement-api"):
        out.append("resource_providers")
    return out


def verify(engine: "Engine") -> list[Check]:
    from stackmagic import identity

    wanted = checks_for(engine)
    if not wanted:
        raise StackError("nothing to verify: Keystone (key) is not enabled")
    ctx = engine.ctx
    if not engine.venv.python.exists():
        raise StackError("the stack is not installed yet: run `stackmagic stack` first")
    payload = json.dumps({"cloud": identity.admin_auth(ctx), "checks": wanted})
    proc = subprocess.run([str(engine.venv.python), str(SCRIPT)], input=payload, capture_output=True,
                          text=True, timeout=300)
    results = []
    for line in proc.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        name, ok = row.pop("check"), row.pop("ok")
        results.append(Check(name, ok, row))
    if not results:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise StackError(f"could not reach the cloud: {tail}")
    return results
