"""Keystone accounts as data: projects, users, roles, services and endpoints, applied in one
process with openstacksdk (the ``openstack`` CLI costs ~2.5 s a call; see shared notes).

Catalog modules build a list of operations with the helpers below and call :func:`apply`; it runs
``identity_script.py`` with the venv's python and hands it the operations (passwords included)
on stdin, so no secret reaches a command line or a log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).with_name("identity_script.py")
KEYSTONE_PORT = 5000


def auth_url(ctx: "Context") -> str:
    return ctx.url(ctx.settings.int("KEYSTONE_SERVICE_PORT", KEYSTONE_PORT), "/v3")


def admin_auth(ctx: "Context") -> dict[str, Any]:
    s = ctx.settings
    return {
        "auth_url": auth_url(ctx), "username": "admin", "password": s.admin_password,
        "project_name": "admin", "user_domain_name": "Default", "project_domain_name": "Default",
        "region_name": s.region_name, "identity_api_version": "3",
    }


def service_user(ctx: "Context", name: str, *roles: str) -> list[dict]:
    """devstack's create_service_user: ``name`` in the service project, admin + service roles."""
    s = ctx.settings
    project = s.get("SERVICE_PROJECT_NAME") or "service"
    ops: list[dict] = [{"op": "user", "name": name, "password": s.service_password}]
    for role in roles or ("admin", "service"):
        ops.append({"op": "grant", "role": role, "user": name, "project": project})
    return ops


def endpoints(ctx: "Context", name: str, kind: str, description: str, url: str) -> list[dict]:
    """A service and its public, internal and admin endpoints in REGION_NAME."""
    region = ctx.settings.region_name
    ops: list[dict] = [{"op": "service", "name": name, "type": kind, "description": description}]
    for interface in ("public", "internal", "admin"):
        ops.append({"op": "endpoint", "service": name, "interface": interface, "url": url, "region": region})
    return ops


def apply(ctx: "Context", ops: list[dict]) -> None:
    payload = json.dumps({"auth": admin_auth(ctx), "ops": ops})
    ctx.log(f"applying {len(ops)} identity operations")
    ctx.run(ctx.venv.python, SCRIPT, input=payload, timeout=300)
