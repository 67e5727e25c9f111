"""``verify``'s end-to-end check of compute and network: a real guest, reached the way a person
reaches one. A key pair; a server from the default image on ``private``; ACTIVE; the guest's
banner and hostname on its console; a floating IP from ``public``; ping and SSH to it from the
provider namespace, where the guest reports its own hostname; with Cinder, a 1 GiB volume
attached to it, which the guest shows as a new disk; then everything made is deleted.

The work happens in ``guest_script.py`` with the stack's venv (openstacksdk), as the admin
user in the demo project; each stage's time is kept, which ``bench/`` reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

from stackmagic import identity

if TYPE_CHECKING:
    from stackmagic.engine import Engine

SCRIPT = __import__("pathlib").Path(__file__).with_name("guest_script.py")
#: what the guest image prints on its console (stackmagic.guest), and cirros's own greeting
BANNERS = ("stackmagic guest", "login as 'cirros' user")


def explain(found: dict[str, Any]) -> str:
    """A run's stages as lines a failed test shows in full (pytest shortens a dict): each
    stage's result, time and data, and the guest's last console lines where it never showed its
    banner."""
    lines = []
    for st in found.get("stages", []):
        data = {k: v for k, v in st.items() if k not in ("stage", "ok", "seconds", "console_tail")}
        lines.append(f"{st['stage']}: {'ok' if st.get('ok') else 'FAILED'} after {st.get('seconds')} s "
                     f"{json.dumps(data, ensure_ascii=False)}")
        lines += [f"    | {line}" for line in st.get("console_tail", [])]
    return "\n".join(lines)


def wanted(engine: "Engine") -> bool:
    """A guest can be checked: compute and networking run here, and we may enter namespaces."""
    cfg = engine.config
    return (os.geteuid() == 0 and cfg.is_service_enabled("n-cpu")
            and cfg.is_service_enabled("q-svc") and cfg.is_service_enabled("key"))


def run(engine: "Engine", timeout: float = 300, keep: bool = False) -> dict[str, Any]:
    """Boot, reach and delete a guest (``keep``: leave it running, see :func:`delete`); returns
    the stages as reported, ``ok``, and what was made."""
    name = f"sm-verify-{uuid.uuid4().hex[:6]}"
    return _script(engine, {**_spec(engine, name, timeout), "mode": "keep" if keep else "all"})


def reach(engine: "Engine", kept: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Ping and SSH again to a guest that :func:`run` kept."""
    return _script(engine, {**_spec(engine, kept["server"], timeout), "mode": "reach",
                            "made": kept["made"]})


def delete(engine: "Engine", kept: dict[str, Any]) -> None:
    """Delete what :func:`run` kept (floating IP, server, key pair)."""
    _script(engine, {**_spec(engine, kept["server"], 120), "mode": "delete", "made": kept["made"]})


def _spec(engine: "Engine", name: str, timeout: float) -> dict[str, Any]:
    from stackmagic import provider

    ctx = engine.ctx
    s = ctx.settings
    return {
        "cloud": {**identity.admin_auth(ctx), "project_name": "demo"}, "name": name,
        "timeout": timeout,
        "image": s.get("DEFAULT_IMAGE_NAME") or _first_image(engine),
        "flavor": s.get("VERIFY_FLAVOR") or "cirros256",
        "network": s.get("PRIVATE_NETWORK_NAME") or "private",
        "public": s.get("PUBLIC_NETWORK_NAME") or "public",
        "namespace": provider.namespace(ctx), "user": s.get("DEFAULT_INSTANCE_USER") or "cirros",
        "banner": s.get("VERIFY_BANNER") or BANNERS[0],
        "workdir": str(ctx.stack_dir / "verify"),
        # a volume from Cinder, attached and seen inside the guest
        "volume": engine.config.is_service_enabled("c-api") and engine.config.is_service_enabled("c-vol"),
    }


def _script(engine: "Engine", spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([str(engine.venv.python), str(SCRIPT)], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=spec["timeout"] * 4 + 120)
    stages = []
    for line in proc.stdout.splitlines():
        try:
            stages.append(json.loads(line))
        except ValueError:
            continue
    done = next((st for st in stages if st["stage"] == "done"), {})
    stages = [st for st in stages if st["stage"] != "done"]
    ssh = next((st for st in stages if st["stage"] == "ssh"), {})
    result: dict[str, Any] = {
        "ok": bool(ssh.get("ok")) and all(st["ok"] for st in stages) if spec["mode"] != "delete"
        else all(st["ok"] for st in stages),
        "stages": stages, "server": spec["name"], "made": done.get("made", {}),
        "qemu_pid": ssh.get("qemu_pid")}
    if not stages and not done:
        result["error"] = "\n".join(proc.stderr.strip().splitlines()[-5:])
    return result


def _first_image(engine: "Engine") -> str:
    from stackmagic.catalog.tempest import active_images, _glance_get

    ref = active_images(engine.ctx).ref
    return next(i["name"] for i in _glance_get(engine.ctx, "/v2/images").get("images", [])
                if i["id"] == ref)
