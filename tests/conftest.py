"""Shared fixtures: real git repos, free ports, an isolated tmux socket, stacks in tmp dirs."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# the shared helpers' asserts say what they found, as the tests' own do
pytest.register_assert_rewrite("tests.default_cloud", "tests.guest_lab")

FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 15.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def engine_for(config: Path):
    """An Engine for the localrc or local.conf at ``config``, freshly loaded."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    return Engine(load_config(config))


def mounts_under(root: Path) -> list[str]:
    """The mount points below ``root`` (from /proc/self/mountinfo)."""
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(f"{root}/")]


@contextlib.contextmanager
def real_stack(root: Path, config: Path, *, clean: bool = False):
    """A real stack from ``config`` for a module's tests: yields (engine, summary of stack).
    Afterwards every process it started is stopped (``unstack --all``, or ``clean`` which also
    removes its data), its tmux server ended and ``root`` removed; a process left alive, or a
    mount left below ``root`` (then ``root`` is kept: nothing is deleted across a mount), fails."""
    from stackmagic.process_info import alive, tree

    engine = engine_for(config)
    socket_name = engine.tmux.server.socket_name
    try:
        yield engine, engine.stack()
    finally:
        pids = [p for s in engine_for(config).status() if s.pid for p in tree(s.pid)]
        if clean:
            engine_for(config).clean()
        else:
            engine_for(config).unstack(all=True)
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
        left = [p for p in pids if alive(p)]
        mounted = mounts_under(root)
        if not mounted:
            shutil.rmtree(root, ignore_errors=True)
        assert not left, f"processes left running: {left}"
        assert not mounted, f"left mounted: {mounted}"


@contextlib.contextmanager
def module_stack(prefix: str, write_localrc):
    """A real stack for a module's tests, made under a new directory (0755: the database and
    rabbit accounts enter DATA_DIR, so not pytest's 0700 tmp) from ``write_localrc(root)``; yields
    root, localrc, engine, the stack's summary and DATA_DIR. ``clean`` afterwards: its data goes too."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    localrc = write_localrc(root)
    with real_stack(root, localrc, clean=True) as (engine, summary):
        yield {"root": root, "localrc": localrc, "engine": engine, "summary": summary,
               "data": root / "data"}


@contextlib.contextmanager
def sdk_connection(root: Path, cloud: str):
    """openstacksdk as one of the clouds (``devstack``, ``devstack-admin`` ...) that the stack
    under ``root`` wrote to its clouds.yaml."""
    import openstack.config
    from openstack.connection import Connection

    config = openstack.config.OpenStackConfig(config_files=[str(root / "clouds.yaml")])
    conn = Connection(config=config.get_one(cloud=cloud))
    try:
        yield conn
    finally:
        conn.close()


def processes_under(root: Path) -> list[int]:
    """Live processes (but this one) whose command line names ``root``: what a stack under it
    still runs."""
    from stackmagic.process_info import alive

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(root).encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def assert_rerun_runs_nothing(made: dict, label: str) -> None:
    """A second ``stack`` of a :func:`module_stack` with nothing changed: no step runs and every
    service is healthy; prints how long it took."""
    again = engine_for(made["localrc"]).stack()
    assert again.ran == [], [r.step for r in again.ran]
    assert all(s.healthy for s in again.services)
    print(f"\n{label} stack: nothing-changed re-run {again.seconds:.1f} s")


def assert_unstack_leaves_nothing(made: dict) -> None:
    """``unstack --all`` of a :func:`module_stack`: every process it ran, children too, is gone
    and nothing runs under its root; prints each service's RSS (with children) first."""
    from stackmagic.process_info import alive, rss_kib, tree

    root = made["root"]
    status = engine_for(made["localrc"]).status()
    print("\nRSS KiB (with children):", {s.service: rss_kib(s.pid) for s in status if s.pid})
    pids = [p for s in status if s.pid for p in tree(s.pid)]
    engine_for(made["localrc"]).unstack(all=True)
    gone = lambda: not [p for p in pids if alive(p)] and not processes_under(root)  # noqa: E731
    assert wait_until(gone, 60), processes_under(root)


def commands_running() -> set[str]:
    """The command lines of every process on the machine (``ps -eo args``), one per entry."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines()[1:]}


def make_repo(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` and make it a git repo with one commit (real git, via GitPython)."""
    import git

    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    repo = git.Repo.init(dest, initial_branch="master")
    repo.git.add(A=True)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "stackmagic tests")
        cw.set_value("user", "email", "tests@example.invalid")
    repo.index.commit("echo plugin")
    return dest


@pytest.fixture(scope="session", autouse=True)
def _own_state_home(tmp_path_factory):
    """Nothing in the suite may remember its tmp localrc in the user's own state file."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    if saved is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = saved


@pytest.fixture(scope="session")
def default_cloud():
    """devstack's default set, stacked once for the session (tests/default_cloud.py)."""
    if os.geteuid() != 0:
        pytest.skip("libvirtd and Open vSwitch run as root")
    from tests import default_cloud as cloud

    with cloud.stacked() as stack:
        yield stack


@pytest.fixture(scope="session")
def tutorial_run(default_cloud):
    """The Japanese tutorials set up to run on the shared cloud (tests/tutorial_outputs.py):
    a copy of notebooks/ja under the cloud's root, the stackmagic kernel installed there, and
    the kernel's environment holding the cloud's sandbox (DEST, DATA_DIR, ports, tmux socket),
    as a reader's shell would (``DEST=... jupyter lab``)."""
    from tests import tutorial_outputs as outputs

    return {**outputs.prepare(default_cloud["root"], default_cloud["lines"]), "cloud": default_cloud}


def pytest_addoption(parser):
    parser.addoption("--without-default-cloud", action="store_true",
                     help="leave out the tests on the shared default cloud (for a quick run beside "
                          "a stack that holds this machine's libvirtd and Open vSwitch)")


def pytest_collection_modifyitems(config, items):
    from tests import default_cloud

    if config.getoption("--without-default-cloud"):
        kept = [i for i in items if "default_cloud" not in getattr(i, "fixturenames", ())]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    items.sort(key=default_cloud.order)


@pytest.fixture(scope="session")
def echo_repo(tmp_path_factory) -> Path:
    """A git repo holding the echo plugin (a tiny HTTP service package and its stackmagic plugin)."""
    return make_repo(FIXTURES / "echo-plugin", tmp_path_factory.mktemp("repos") / "echo-plugin")


class StackDir:
    """A stack in a tmp dir: its localrc, its own tmux socket and port; torn down after the test."""

    def __init__(self, root: Path, plugin_url: str, uv_cache: Path):
        self.root = root
        self.port = free_port()
        self.socket = f"stackmagic-test-{uuid.uuid4().hex[:8]}"
        self.plugin_url = plugin_url
        self.extra: dict[str, str] = {}
        self.localrc = root / "localrc"
        self.env = {"UV_CACHE_DIR": str(uv_cache)}
        self.write()

    def write(self, **extra: str) -> Path:
        self.extra.update(extra)
        lines = [
            f"DEST={self.root}/dest",
            f"DATA_DIR={self.root}/data",
            f"LOGDIR={self.root}/logs",
            f"TMUX_SOCKET={self.socket}",
            "USE_CONSTRAINTS=False",
            "disable_all_services",
            f"enable_plugin echo {self.plugin_url}",
            "enable_service echo-api",
            f"ECHO_PORT={self.port}",
            *(f"{k}={v}" for k, v in self.extra.items()),
        ]
        self.localrc.write_text("\n".join(lines) + "\n")
        return self.localrc

    def config(self):
        from stackmagic.config import load_config

        return load_config(self.localrc)

    def engine(self, **kwargs):
        from stackmagic.engine import Engine

        return Engine(self.config(), **kwargs)

    def teardown(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{self.socket}").unlink(missing_ok=True)


@pytest.fixture
def stack_dir(tmp_path, echo_repo, tmp_path_factory, monkeypatch):
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    sd = StackDir(tmp_path, echo_repo.as_uri(), uv_cache)
    yield sd
    try:
        engine = sd.engine()
        engine.unstack(all=True)
    except Exception:  # noqa: BLE001 - best effort; the kill-server below is the backstop
        pass
    sd.teardown()


@pytest.fixture
def catalog_dir(tmp_path):
    """A folder that belongs to the ``stackmagic.catalog`` package for one test: a module written
    there is a catalog module (``stackmagic.catalog.<name>``), found with no edit anywhere else.
    Name the modules ``fake*``; they are forgotten afterwards."""
    import sys

    import stackmagic.catalog as catalog
    from stackmagic import codehash

    folder = tmp_path / "catalog"
    folder.mkdir()
    catalog.__path__.append(str(folder))
    yield folder
    catalog.__path__.remove(str(folder))
    for name in [m for m in sys.modules if m.startswith("stackmagic.catalog.fake")]:
        del sys.modules[name]
    codehash.clear()
