"""etcd, the key-value store Cinder coordinates through (devstack's lib/etcd3).

Debian's ``etcd-server`` (etcd 3.4; devstack downloads a release tarball, which a machine without
internet cannot), started by stackmagic in tmux window ``etcd3``: one member named after the host,
its data in ``$DATA_DIR/etcd`` (devstack's ETCD_DATA_DIR).

Ports, each a setting (devstack's names): ``ETCD_PORT`` (2379, clients, on
``SERVICE_LISTEN_ADDRESS``) and ``ETCD_PEER_PORT`` (2380, peers, on 127.0.0.1: devstack opens it
on every address, but a single member has no peer to talk to). Health is etcd's own ``/health``.

As root etcd runs as Debian's ``etcd`` account. Like devstack's unstack.sh (stop_etcd3, then
cleanup_etcd3) ``unstack`` stops it and removes its data: it only ever holds Cinder's locks.
devstack keeps the data on a tmpfs (ETCD_USE_RAMDISK); stackmagic mounts nothing on the host.

For the services that use it: :func:`backend_url` (``etcd3+http://host:port?api_version=v3``,
devstack's value of cinder.conf ``[coordination] backend_url``).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.system_user import own_data_dir, run_as
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import HttpCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

PORT, PEER_PORT = 2379, 2380
ETCD = "/usr/bin/etcd"
SYSTEM_USER = "etcd"
LOOPBACK = "127.0.0.1"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def client_url(ctx: "Context") -> str:
    s = ctx.settings
    return f"http://{_host(s.service_host)}:{s.int('ETCD_PORT', PORT)}"


def backend_url(ctx: "Context") -> str:
    """cinder.conf's ``[coordination] backend_url`` (tooz's etcd3 driver over HTTP, API v3)."""
    s = ctx.settings
    return f"etcd3+http://{_host(s.service_host)}:{s.int('ETCD_PORT', PORT)}?api_version=v3"


def data_dir(ctx: "Context") -> Path:
    return ctx.settings.data_dir / "etcd"


class Etcd3(Project):
    name = "etcd3"
    services = {"etcd3": "etcd key-value store"}
    provides = {"coordination": "start"}
    ports = {"ETCD_PORT": PORT, "ETCD_PEER_PORT": PEER_PORT}
    system_packages = ("etcd-server",)

    def configure(self, ctx: "Context") -> None:
        if not Path(ETCD).exists():
            raise StackError(f"{ETCD} is missing: install Debian's etcd-server (apt-get install -y etcd-server)")
        s = ctx.settings
        if s.int("ETCD_PORT", PORT) == s.int("ETCD_PEER_PORT", PEER_PORT):
            raise ConfigError(f"ETCD_PORT and ETCD_PEER_PORT must differ; both are {s.int('ETCD_PORT', PORT)}")
        # etcd refuses a data directory others may read (0700)
        own_data_dir(data_dir(ctx), run_as(SYSTEM_USER), "etcd-server", "etcd")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        s = ctx.settings
        port, peer = s.int("ETCD_PORT", PORT), s.int("ETCD_PEER_PORT", PEER_PORT)
        listen = s.service_listen
        name = socket.gethostname() or "stackmagic"
        peer_url = f"http://{LOOPBACK}:{peer}"
        argv = [ETCD, "--name", name, "--data-dir", str(data_dir(ctx)),
                "--initial-cluster-state", "new", "--initial-cluster-token", "etcd-cluster-01",
                "--initial-cluster", f"{name}={peer_url}", "--initial-advertise-peer-urls", peer_url,
                "--listen-peer-urls", peer_url,
                "--advertise-client-urls", client_url(ctx),
                "--listen-client-urls", f"http://{_host(listen)}:{port}",
                "--logger", "zap", "--log-outputs", "stderr"]
        if s.bool("ENABLE_DEBUG_LOG_LEVEL", False):
            argv += ["--log-level", "debug"]
        yield Process("etcd3", argv, cwd=data_dir(ctx), health=HttpCheck(f"{client_url(ctx)}/health"),
                      endpoint=client_url(ctx), host=listen, port=port, timeout=60, user=run_as(SYSTEM_USER),
                      stop_timeout=20)

    def unstack(self, ctx: "Context") -> None:
        """devstack's cleanup_etcd3 after stop_etcd3: the stored keys go, the directory stays."""
        if not ctx.tmux.is_running("etcd3"):
            shutil.rmtree(data_dir(ctx) / "member", ignore_errors=True)

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(data_dir(ctx), ignore_errors=True)
