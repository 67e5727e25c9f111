"""memcached: the shared cache Keystone validates tokens through (devstack installs it with
Keystone). Debian's ``memcached``, started here on SERVICE_LISTEN_ADDRESS in its own window.

Without it every request pays a full token validation (~0.3 s on these machines); with it, a
few milliseconds. As an ordinary user without the package, the stack runs without a cache.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.health import PortCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

PORT = 11211


def available(ctx: "Context") -> bool:
    """memcached will run: wanted (MEMCACHED_ENABLED, default yes) and installable or installed."""
    if not ctx.settings.bool("MEMCACHED_ENABLED", True):
        return False
    return os.geteuid() == 0 or shutil.which("memcached") is not None


def servers(ctx: "Context") -> str | None:
    """``host:port`` for the services' cache settings, or None when there is no memcached."""
    if not (available(ctx) and ctx.config.is_service_enabled("key")):
        return None
    return f"{ctx.settings.service_host}:{ctx.settings.int('MEMCACHED_PORT', PORT)}"


class Memcached(Project):
    name = "memcached"
    services = {"memcached": "memcached (token cache)"}
    provides = {"cache": "start"}
    when_needed = True                  # Keystone's optional Need("cache") brings it
    ports = {"MEMCACHED_PORT": PORT}
    system_packages = ("memcached",)
    requirements = ("pymemcache", "python-memcached")

    def available(self, ctx: "Context") -> bool:
        return available(ctx)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        s = ctx.settings
        port = s.int("MEMCACHED_PORT", PORT)
        listen = s.get("SERVICE_LISTEN_ADDRESS") or s.service_host
        argv = [shutil.which("memcached") or "/usr/bin/memcached", "-l", listen, "-p", str(port),
                "-U", "0", "-m", s.get("MEMCACHED_MEMORY", "64")]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        yield Process("memcached", argv, cwd=s.data_dir, health=PortCheck(s.service_host, port),
                      endpoint=f"{s.service_host}:{port}", host=listen, port=port, timeout=20)
