"""Redis, the key-value server Zaqar keeps its messages in (the zaqar plugin's configure_redis).

Debian's ``redis-server`` (Redis 7.0 in Debian 12), started by stackmagic in tmux window
``redis`` in the foreground (no systemd, no ``daemonize``), from a config file of its own,
``$DATA_DIR/redis/redis.conf``; nothing in ``/etc/redis`` or ``/var/lib/redis`` is read or written.
Its snapshot (``dump.rdb``) is kept in ``$DATA_DIR/redis``; its log goes to the window and
``$LOGDIR/redis.log``.

It listens on 127.0.0.1 only, whatever ``SERVICE_LISTEN_ADDRESS`` says (only services on this
machine talk to it, and it has no password), on ``REDIS_PORT`` (6379, the plugin's fixed port;
sandboxes pick a free one), in protected mode. Health is Redis's own ``PING`` through
``redis-cli`` (``PONG``, or a failure while it loads its snapshot). It is stopped through the pid
the engine recorded: SIGTERM makes Redis write its snapshot and exit.

As root it runs as Debian's ``redis`` account, like the other servers from Debian.

It comes only when a project needs it (``when_needed``: Zaqar's message store); for the services
that use it, :func:`url` (``redis://127.0.0.1:<port>``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.system_user import own_data_dir, run_as
from stackmagic.errors import StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

PORT = 6379
SERVER, CLI = "/usr/bin/redis-server", "/usr/bin/redis-cli"
SYSTEM_USER = "redis"
LOOPBACK = "127.0.0.1"


def port(ctx: "Context") -> int:
    return ctx.settings.int("REDIS_PORT", PORT)


def url(ctx: "Context") -> str:
    """Where the services reach it: ``redis://127.0.0.1:<REDIS_PORT>``."""
    return f"redis://{LOOPBACK}:{port(ctx)}"


def data_dir(ctx: "Context") -> Path:
    return ctx.settings.data_dir / "redis"


def ping(ctx: "Context") -> CommandCheck:
    """``redis-cli PING``; ``-e`` makes an error reply (still loading ...) a failure."""
    return CommandCheck((CLI, "-h", LOOPBACK, "-p", str(port(ctx)), "-e", "ping"))


class Redis(Project):
    name = "redis"
    services = {"redis": "Redis key-value server (Zaqar's message store)"}
    provides = {"redis": "start"}
    when_needed = True                  # Zaqar's Need("redis") brings it
    ports = {"REDIS_PORT": PORT}
    system_packages = ("redis-server", "redis-tools")

    def configure(self, ctx: "Context") -> None:
        if not Path(SERVER).exists():
            raise StackError(f"{SERVER} is missing: install Debian's redis-server "
                             "(apt-get install -y redis-server)")
        path = data_dir(ctx)
        own_data_dir(path, run_as(SYSTEM_USER), "redis-server", "Redis")
        text = "".join(f"{key} {value}\n" for key, value in (
            ("bind", LOOPBACK), ("port", port(ctx)), ("protected-mode", "yes"),
            ("daemonize", "no"), ("supervised", "no"), ("logfile", '""'),
            ("dir", path), ("dbfilename", "dump.rdb"), ("appendonly", "no"),
            ("loglevel", "verbose" if ctx.settings.bool("ENABLE_DEBUG_LOG_LEVEL", False) else "notice"),
        ))
        ctx.write_file(path / "redis.conf", text, mode=0o644)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        path = data_dir(ctx)
        yield Process("redis", [SERVER, str(path / "redis.conf")], cwd=path, health=ping(ctx),
                      endpoint=url(ctx), host=LOOPBACK, port=port(ctx), timeout=30,
                      user=run_as(SYSTEM_USER), stop_timeout=20)

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(data_dir(ctx), ignore_errors=True)
