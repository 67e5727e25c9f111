"""RabbitMQ for real (catalog/rabbit.py): a stack of only ``rabbit`` in a sandbox. It listens on
loopback alone, a client logs in over AMQP with the user and password of ``transport_url``, the
password is on no command line and in no log, a re-run restarts nothing, a plain ``unstack``
keeps it, ``unstack --all`` stops every process of it, and ``clean`` also stops the daemon epmd
that rabbitmqctl starts when the broker is down.

The AMQP client is a few lines of the protocol itself (0-9-1: header, Start-Ok with PLAIN,
Tune-Ok, Open of vhost ``/``): the stack's venv holds no AMQP library when only rabbit runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import wait_until

PASSWORD = "r@b:b/it%pw$x'1"          # every character that needs quoting in a URL or a shell
ERLANG = {"beam.smp", "epmd", "erl_child_setup", "inet_gethost"}


# -- a minimal AMQP 0-9-1 client ---------------------------------------------------------------
def _frame(payload: bytes) -> bytes:
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def _method(cls: int, meth: int, args: bytes = b"") -> bytes:
    return _frame(struct.pack(">HH", cls, meth) + args)


def _shortstr(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def _read_method(sock: socket.socket) -> tuple[int, int] | None:
    """The next frame's (class, method), or None when the server closed the connection."""
    head = _recv(sock, 7)
    if head is None:
        return None
    _kind, _channel, size = struct.unpack(">BHI", head)
    body = _recv(sock, size + 1)
    if body is None:
        return None
    return struct.unpack(">HH", body[:4])


def _recv(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def amqp_login(host: str, port: int, user: str, password: str, vhost: str = "/") -> str:
    """"open" when the server let ``user`` in and opened ``vhost``; "refused" otherwise."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        assert _read_method(sock) == (10, 10)                          # Connection.Start
        response = b"\0" + user.encode() + b"\0" + password.encode()
        sock.sendall(_method(10, 11, struct.pack(">I", 0) + _shortstr("PLAIN")
                             + struct.pack(">I", len(response)) + response + _shortstr("en_US")))
        if _read_method(sock) != (10, 30):                            # Connection.Tune
            return "refused"
        sock.sendall(_method(10, 31, struct.pack(">HIH", 2047, 131072, 0)))
        sock.sendall(_method(10, 40, _shortstr(vhost) + _shortstr("") + b"\0"))
        if _read_method(sock) != (10, 41):                            # Connection.Open-Ok
            return "refused"
        sock.sendall(_method(10, 50, struct.pack(">H", 200) + _shortstr("bye") + struct.pack(">HH", 0, 0)))
        _read_method(sock)                                            # Connection.Close-Ok
        return "open"


# -- the machine -------------------------------------------------------------------------------
def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def live(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def erlang_of(env_file: Path) -> dict[int, str]:
    """Live Erlang processes (beam, epmd, helpers) started for the stack whose env file is given."""
    wanted = f"RABBITMQ_CONF_ENV_FILE={env_file}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(entry.name)
        if wanted in env and comm(pid) in ERLANG and live(pid):
            found[pid] = comm(pid)
    return found


def listening_sockets(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by ``pids`` (from /proc/net)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:                   # 0A: LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            if width == 4:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                addr = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.append((addr, int(port_hex, 16)))
    return found


def files_containing(root: Path, needle: str, skip: set[Path]) -> list[str]:
    return [str(p) for p in root.rglob("*")
            if p.is_file() and p not in skip and needle.encode() in p.read_bytes()]


def cmdlines_containing(needle: str) -> list[str]:
    hits = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in args:
            hits.append(args.replace(b"\0", b" ").decode(errors="replace"))
    return hits


# -- the stack ---------------------------------------------------------------------------------
class RabbitStack:
    def __init__(self, root: Path):
        from stackmagic.samples import sandbox

        self.root = root
        self.localrc = root / "localrc"
        lines = sandbox(root, f"rabbit-{uuid.uuid4().hex[:6]}")
        self.socket = next(line.split("=", 1)[1] for line in lines if line.startswith("TMUX_SOCKET="))
        self.localrc.write_text("\n".join([
            *lines, "disable_all_services", "enable_service rabbit",
            f"RABBIT_PASSWORD={shlex.quote(PASSWORD)}",
        ]) + "\n")

    def engine(self):
        from stackmagic.config import load_config
        from stackmagic.engine import Engine

        return Engine(load_config(self.localrc))

    def teardown(self) -> None:
        try:
            self.engine().clean()
        except Exception:  # noqa: BLE001 - best effort; the sweep below is the backstop
            pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{self.socket}").unlink(missing_ok=True)
        for pid in erlang_of(self.root / "data" / "rabbit" / "rabbitmq-env.conf"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def rabbit_stack():
    if os.geteuid() != 0 and not shutil.which("rabbitmq-server", path="/usr/sbin:/usr/lib/rabbitmq/bin"):
        pytest.skip("needs root (to install rabbitmq-server) or rabbitmq-server installed")
    # pytest's tmp dirs are mode 0700: the rabbitmq account could not enter them
    root = Path(tempfile.mkdtemp(prefix="smrabbit-", dir="/tmp"))
    root.chmod(0o755)
    stack = RabbitStack(root)
    yield stack
    stack.teardown()


@pytest.mark.slow
def test_rabbit_for_real(rabbit_stack):
    from stackmagic.catalog.rabbit import env_file, transport_url
    engine = rabbit_stack.engine()
    summary = engine.stack()
    (rabbit,) = summary.services
    assert rabbit.service == "rabbit" and rabbit.healthy

    ctx = engine.ctx
    url = urlsplit(transport_url(ctx))
    assert url.scheme == "rabbit" and url.path == "/"
    assert unquote(url.password) == PASSWORD and unquote(url.username) == "stackrabbit"
    settings = engine.config.settings
    ports = {name: settings.int(name) for name in ("RABBIT_PORT", "RABBIT_EPMD_PORT", "RABBIT_DIST_PORT")}
    assert url.port == ports["RABBIT_PORT"]

    # a client logs in with the URL's user and password; a wrong password is refused
    assert amqp_login(url.hostname, url.port, unquote(url.username), unquote(url.password)) == "open"
    assert amqp_login(url.hostname, url.port, "stackrabbit", PASSWORD + "x") == "refused"
    users = subprocess.run([str(settings.data_dir / "rabbit" / "bin" / "rabbitmqctl"), "-q", "list_users"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert [line.split()[0] for line in users.splitlines()[1:]] == ["stackrabbit"]     # no guest

    # the broker and epmd run as the rabbitmq account, and listen on loopback alone, on our ports
    env = env_file(ctx)
    procs = erlang_of(env)
    assert {"beam.smp", "epmd"} <= set(procs.values()), procs
    if os.geteuid() == 0:
        assert all(Path(f"/proc/{pid}").stat().st_uid == __import__("pwd").getpwnam("rabbitmq").pw_uid
                   for pid in procs)
    sockets = listening_sockets(set(procs))
    assert {port for _, port in sockets} == set(ports.values()), sockets
    assert {addr for addr, _ in sockets} <= {"127.0.0.1", "::1"}, sockets

    # the password is in no log, no file but the passwords file, and on no command line
    skip = {rabbit_stack.localrc, Path(settings.data_dir) / "stackmagic" / "passwords"}
    assert files_containing(rabbit_stack.root, PASSWORD, skip) == []
    assert cmdlines_containing(PASSWORD) == []

    # a re-run with nothing changed restarts nothing
    beam = next(pid for pid, name in procs.items() if name == "beam.smp")
    again = rabbit_stack.engine().stack()
    assert again.ran == [] and live(beam)

    # a plain unstack keeps it; --all stops every process of it
    rabbit_stack.engine().unstack()
    assert live(beam) and amqp_login(url.hostname, url.port, "stackrabbit", PASSWORD) == "open"
    rabbit_stack.engine().unstack(all=True)
    assert wait_until(lambda: not erlang_of(env), 10), erlang_of(env)

    # with the broker down, rabbitmqctl starts a daemon epmd on our port: clean stops it
    subprocess.run([str(settings.data_dir / "rabbit" / "bin" / "rabbitmqctl"), "status"],
                   capture_output=True, timeout=60)
    assert "epmd" in erlang_of(env).values()
    rabbit_stack.engine().clean()
    assert wait_until(lambda: not erlang_of(env), 10), erlang_of(env)


# -- without a broker running ------------------------------------------------------------------
def _engine(tmp_path: Path, services: str, *extra: str):
    from stackmagic.catalog.base import Need, Project
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    class Bususer(Project):             # what Nova and Neutron declare
        name = "bususer"
        services = {"bususer-svc": "a service that talks through the bus"}
        requires = (Need("message-bus", before="start"),)

    path = tmp_path / "localrc"
    path.write_text("\n".join([f"DEST={tmp_path}/dest", f"DATA_DIR={tmp_path}/data",
                               f"LOGDIR={tmp_path}/logs", "disable_all_services",
                               f"enable_service {services}", *extra]) + "\n")
    config = load_config(path, extra_services=list(Bususer.services))
    return Engine(config, extra_projects=[Bususer()])


def test_a_bus_user_without_rabbit_is_refused_with_what_to_enable(tmp_path):
    from stackmagic.errors import ConfigError

    with pytest.raises(ConfigError, match="bususer needs a message-bus .*enable one of: rabbit"):
        _engine(tmp_path, "bususer-svc").plan()
    plan = _engine(tmp_path, "bususer-svc rabbit").plan()
    assert [p.name for p in plan.projects] == ["rabbit", "bususer"]


def test_transport_url_quotes_the_password_and_brackets_ipv6(tmp_path):
    from stackmagic.catalog.rabbit import transport_url

    engine = _engine(tmp_path, "rabbit", f"RABBIT_PASSWORD={shlex.quote(PASSWORD)}", "RABBIT_PORT=5999")
    url = transport_url(engine.ctx)
    assert url == "rabbit://stackrabbit:r%40b%3Ab%2Fit%25pw%24x%271@127.0.0.1:5999/"
    assert unquote(urlsplit(url).password) == PASSWORD
    engine = _engine(tmp_path, "rabbit", "RABBIT_PASSWORD=pw", "SERVICE_HOST=::1")
    assert transport_url(engine.ctx) == "rabbit://stackrabbit:pw@[::1]:5672/"
