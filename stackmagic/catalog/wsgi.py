"""Serve an OpenStack WSGI application under gunicorn in its own tmux window.

The releases stackmagic installs ship their WSGI applications as modules
(``keystone.wsgi.api:application`` ...), not scripts. Keystone, Nova and Neutron parse
``sys.argv`` with oslo.config when the module is imported; under gunicorn they would see
gunicorn's arguments and fail, so a two-line shim clears ``sys.argv`` first (shared notes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from stackmagic.catalog.base import Process
from stackmagic.health import HttpCheck

if TYPE_CHECKING:
    from stackmagic.context import Context


def shim(ctx: "Context", project: str, app: str, args: Sequence[str] = (), *,
         name: str | None = None) -> str:
    """Write ``<conf dir>/wsgi_<project>.py`` importing ``app`` with a clean argv; its module name.

    ``args`` go on that argv, for an application that finds its config files only there
    (Cinder's reads ``--config-file`` as cinder-api would). ``name`` names the module instead,
    for a project that serves a second application (Heat's CloudFormation API)."""
    module, _, attr = app.partition(":")
    name = name or f"wsgi_{project}"
    argv = f"sys.argv[:1] + {[str(a) for a in args]!r}" if args else "sys.argv[:1]"
    text = (
        f'"""Written by stackmagic: serve {app} with a clean sys.argv."""\n'
        "import sys\n\n"
        f"sys.argv = {argv}\n"
        f"from {module} import {attr} as application  # noqa: E402\n"
    )
    ctx.write_file(ctx.conf_dir(project) / f"{name}.py", text)
    return name


def gunicorn(ctx: "Context", service: str, project: str, app: str, port: int, *,
             env: dict[str, str] | None = None, health_path: str = "/", workers: int | None = None,
             timeout: float = 90, module: str | None = None) -> Process:
    """A Process running ``app`` under gunicorn on SERVICE_LISTEN_ADDRESS:port, from the shim
    module ``module`` (default: the project's, ``wsgi_<project>``)."""
    s = ctx.settings
    listen = s.get("SERVICE_LISTEN_ADDRESS") or s.service_host
    module = module or f"wsgi_{project}"
    if workers is None:
        # SQLite serialises writers and refuses a second one outright when a transaction upgrades
        # ("database is locked"): one worker per SQLite-backed API; API_WORKERS otherwise.
        workers = 1 if s.database_type == "sqlite" else s.api_workers
    argv = [
        str(ctx.venv.bin("gunicorn")), f"{module}:application",
        "--bind", f"{listen}:{port}",
        "--workers", str(workers),
        "--threads", "1",
        "--timeout", "120",
        "--name", service,
        "--access-logfile", "-",
        "--error-logfile", "-",
        "--chdir", str(ctx.conf_dir(project)),
    ]
    if s.bool("GUNICORN_NO_CONTROL_SOCKET", True):
        argv.append("--no-control-socket")
    host = s.service_host
    return Process(
        service, argv, cwd=ctx.conf_dir(project), env=dict(env or {}),
        health=HttpCheck(f"http://{host}:{port}{health_path}"),
        endpoint=f"http://{host}:{port}", host=listen, port=port, timeout=timeout,
    )
