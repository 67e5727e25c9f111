"""Sample localrc / local.conf files shipped with stackmagic.

Each sample's first comment line is ``# name: description``; :func:`list_samples`
reads it, so adding a file here is all it takes to add a sample.
"""

from __future__ import annotations

from pathlib import Path

from stackmagic.errors import StackError

_HERE = Path(__file__).parent
_SUFFIXES = (".conf", ".localrc")


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").partition(": ")[2] or line.lstrip("# ")
    return ""


def list_samples() -> dict[str, tuple[Path, str]]:
    """Sample name -> (path, one-line description), sorted by name."""
    return {
        path.stem: (path, _description(path))
        for path in sorted(_HERE.iterdir())
        if path.suffix in _SUFFIXES
    }


def sample_path(name: str) -> Path:
    """The path of sample ``name`` (as listed by :func:`list_samples`)."""
    samples = list_samples()
    if name not in samples:
        raise StackError(f"no sample named {name!r}; choose one of: {', '.join(samples)}")
    return samples[name][0]


def sandbox(root: Path, name: str = "sandbox") -> list[str]:
    """localrc lines that keep a whole stack under ``root`` so it can run beside another one:
    DEST, DATA_DIR, LOGDIR and CLOUDS_YAML there, a tmux socket of its own, and a free port for
    every service (tests, benchmarks and tutorials use this)."""
    import random
    import socket
    import uuid

    taken: set[int] = set()

    def free_port() -> int:
        # below the kernel's ephemeral range (ip_local_port_range, 32768 and up): a port taken
        # from there (bind to 0) was handed out again while the stack came up, to the Erlang
        # node of a rabbitmqctl run, and the service it was meant for could not listen
        low, _high = _ephemeral_range()
        while True:
            port = random.randint(max(1024, low - 12000), low - 1)
            if port in taken:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            taken.add(port)
            return port

    from stackmagic.catalog import builtin_projects

    # every port a project of the catalog listens on (each declares its own: Project.ports)
    ports = sorted({setting for project in builtin_projects() for setting in project.ports})
    return [f"DEST={root}/dest", f"DATA_DIR={root}/data", f"LOGDIR={root}/logs",
            f"CLOUDS_YAML={root}/clouds.yaml", f"TMUX_SOCKET=stackmagic-{name}-{uuid.uuid4().hex[:8]}",
            *(f"{port}={free_port()}" for port in ports)]


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ports handed out by bind(0) and outgoing connections."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999
