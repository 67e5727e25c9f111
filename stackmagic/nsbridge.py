"""The cloud's APIs, seen from inside a network namespace.

A command that must reach both a guest (only routable inside stackmagic's provider namespace)
and the cloud's APIs (on the host's loopback, which a namespace does not share) — Tempest with
its SSH validation, ``openstack server ssh`` — runs inside the namespace with a :class:`Bridge`:
for every API port, a listener on the namespace's own ``127.0.0.1:<port>``, each connection
carried to the same port on the host's loopback. Nothing else crosses: no address or route is
added anywhere, and both ends of every connection are a loopback.

How: a thread enters the namespace (``setns``, which is per thread), opens the listening
sockets and ends; a socket keeps the namespace it was made in, so the process accepts there and
connects from the host's namespace.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import socket
import threading
from pathlib import Path

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def listen_in(namespace: str | Path, host: str, ports: list[int]) -> list[socket.socket]:
    """Listening sockets on ``host:port`` for each port, inside ``namespace`` (a name under
    /run/netns or a path). The loopback there is brought up first."""
    path = Path(namespace) if "/" in str(namespace) else Path("/run/netns") / str(namespace)
    made: list[socket.socket] = []
    failure: list[BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            import subprocess

            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(64)
                made.append(sock)
        except BaseException as err:        # handed to the caller's thread
            failure.append(err)

    worker = threading.Thread(target=inside, name=f"enter-{path.name}")
    worker.start()
    worker.join()               # the thread (and its namespace) ends; the sockets stay there
    if failure:
        for sock in made:
            sock.close()
        raise failure[0]
    return made


class Bridge:
    """Carry connections to ``ports`` on ``host`` inside ``namespace`` to the host's ``host``.

    Use as a context manager around the command that runs inside the namespace.
    """

    def __init__(self, namespace: str | Path, host: str, ports: list[int]):
        self.namespace, self.host, self.ports = namespace, host, sorted(set(ports))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[socket.socket] = []

    def __enter__(self) -> "Bridge":
        self._listeners = listen_in(self.namespace, self.host, self.ports)
        for sock in self._listeners:
            sock.settimeout(0.2)
            thread = threading.Thread(target=self._accept, args=(sock,), daemon=True,
                                      name=f"bridge-{sock.getsockname()[1]}")
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._listeners:
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        port = listener.getsockname()[1]
        while not self._stop.is_set():
            try:
                inner, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                outer = socket.create_connection((self.host, port), timeout=10)
            except OSError:
                inner.close()
                continue
            threading.Thread(target=_pump, args=(inner, outer, self._stop), daemon=True).start()


def _pump(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    sel = selectors.DefaultSelector()
    for sock in (a, b):
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    peer = {a: b, b: a}
    try:
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.5):
                src = key.fileobj
                try:
                    data = src.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                dst = peer[src]
                dst.setblocking(True)
                try:
                    dst.sendall(data)
                except OSError:
                    return
                finally:
                    dst.setblocking(False)
    finally:
        sel.close()
        a.close()
        b.close()
