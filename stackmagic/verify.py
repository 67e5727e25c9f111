"""Prove a running stack works: real API calls through openstacksdk, as the admin user.

Each project declares its checks (``Project.verify_checks``): a token and the projects, users
and services devstack creates (Keystone), the image list (Glance), resource providers
(Placement). Which run depends on what is enabled.
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


@dataclass(frozen=True)
class Listing:
    """One verify check a project declares: list ``call`` (an openstacksdk path such as
    ``image.images``; ``token`` issues a token) and keep ``fields`` of every item (one field: its
    value; several: a dict, or the values joined by ``join``). ``show`` formats an item."""

    name: str
    call: str
    fields: tuple[str, ...] = ("name",)
    join: str | None = None
    show: str | None = None

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "call": self.call, "fields": list(self.fields), "join": self.join}


@dataclass
class Check:
    name: str
    ok: bool
    data: dict[str, Any]
    show: str | None = None

    def describe(self) -> str:
        d = self.data
        if not self.ok:
            return f"{self.name}: FAILED {d.get('error', '')}"
        if self.name == "token":
            return "token: issued for admin"
        if self.name == "guest":
            stages = ", ".join(f"{st['stage']} {st['seconds']} s" for st in d.get("stages", [])
                               if st["stage"] != "done")
            return f"guest: {d.get('server')} reached over SSH from the provider namespace ({stages})"
        items = d.get(self.name, [])
        shown = [self.show.format(**i) if self.show and isinstance(i, dict) else str(i) for i in items]
        return f"{self.name}: {len(items)}" + (" — " + ", ".join(shown) if shown else "")


def checks_for(engine: "Engine") -> list[Listing]:
    """The checks of the enabled projects, in start order (they declare them: ``verify_checks``)."""
    projects, _ = engine.projects()
    return [check for p in projects for check in p.verify_checks(engine.ctx)]


def verify(engine: "Engine", guest: bool = True) -> list[Check]:
    """Every project's listing checks; with Nova and Neutron (and root), a real guest too
    (:mod:`stackmagic.guestcheck`), unless ``guest`` is false."""
    from stackmagic import guestcheck, identity

    wanted = checks_for(engine)
    if not wanted or wanted[0].call != "token":
        raise StackError("nothing to verify: Keystone (key) is not enabled")
    ctx = engine.ctx
    if not engine.venv.python.exists():
        raise StackError("the stack is not installed yet: run `stackmagic stack` first")
    payload = json.dumps({"cloud": identity.admin_auth(ctx), "checks": [c.spec() for c in wanted]})
    shows = {c.name: c.show for c in wanted}
    proc = subprocess.run([str(engine.venv.python), str(SCRIPT)], input=payload, capture_output=True,
                          text=True, timeout=300)
    results = []
    for line in proc.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        name, ok = row.pop("check"), row.pop("ok")
        results.append(Check(name, ok, row, shows.get(name)))
    if not results:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise StackError(f"could not reach the cloud: {tail}")
    if guest and guestcheck.wanted(engine):
        found = guestcheck.run(engine)
        failed = next((st for st in found["stages"] if not st["ok"]), None)
        if failed:
            found["error"] = f"{failed['stage']}: {failed.get('error', '')}"
        results.append(Check("guest", found.pop("ok"), found))
    return results
