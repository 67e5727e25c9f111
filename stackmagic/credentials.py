"""``clouds.yaml`` and ``openrc`` for the stack's users, written with mode 0600.

The clouds are devstack's: ``devstack`` (demo), ``devstack-admin``, ``devstack-alt`` and
``devstack-system-admin``. They go to ``$DATA_DIR/clouds.yaml`` and are merged into
``CLOUDS_YAML`` (default ``~/.config/openstack/clouds.yaml``, where openstacksdk and the
``openstack`` CLI look), keeping any other cloud there. ``$DATA_DIR/openrc`` works like devstack's:
``source openrc [USER [PROJECT]]``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from stackmagic import identity

if TYPE_CHECKING:
    from stackmagic.context import Context


def clouds(ctx: "Context") -> dict:
    s = ctx.settings
    base = {"region_name": s.region_name, "identity_api_version": 3}

    def cloud(user: str, project: str | None, **extra) -> dict:
        auth = {"auth_url": identity.auth_url(ctx), "username": user, "password": s.admin_password,
                "user_domain_id": "default"}
        if project:
            auth.update(project_name=project, project_domain_id="default")
        auth.update(extra)
        return {**base, "auth": auth}

    return {
        "devstack": cloud("demo", "demo"),
        "devstack-admin": cloud("admin", "admin"),
        "devstack-alt": cloud("alt_demo", "alt_demo"),
        "devstack-system-admin": cloud("admin", None, system_scope="all"),
    }


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def clouds_yaml_path(ctx: "Context") -> Path:
    return ctx.settings.path("CLOUDS_YAML", Path.home() / ".config" / "openstack" / "clouds.yaml")


def write(ctx: "Context") -> dict[str, str]:
    ours = clouds(ctx)
    local = ctx.settings.data_dir / "clouds.yaml"
    _write_private(local, yaml.safe_dump({"clouds": ours}, sort_keys=False))
    shared = clouds_yaml_path(ctx)
    try:
        existing = yaml.safe_load(shared.read_text()) or {}
    except FileNotFoundError:
        existing = {}
    existing.setdefault("clouds", {}).update(ours)
    _write_private(shared, yaml.safe_dump(existing, sort_keys=False))
    s = ctx.settings
    openrc = ctx.settings.data_dir / "openrc"
    q = shlex.quote
    _write_private(openrc, "\n".join([
        "# Written by stackmagic. Usage: source openrc [USER [PROJECT]] (default: demo demo)",
        'OS_USERNAME=${1:-demo}', 'OS_PROJECT_NAME=${2:-$OS_USERNAME}',
        "export OS_USERNAME OS_PROJECT_NAME",
        f"export OS_PASSWORD={q(s.admin_password)}",
        f"export OS_AUTH_URL={q(identity.auth_url(ctx))}",
        f"export OS_REGION_NAME={q(s.region_name)}",
        "export OS_IDENTITY_API_VERSION=3 OS_AUTH_TYPE=password",
        "export OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default", "",
    ]))
    ctx.log(f"wrote {local}, {shared} (clouds: {', '.join(ours)}) and {openrc}")
    return {"clouds_yaml": str(local), "shared_clouds_yaml": str(shared), "openrc": str(openrc)}
