"""The database backends end to end: real MariaDB / PostgreSQL servers from Debian's packages (the
engine installs them with apt-get when missing and we are root), started by the engine in tmux,
used from the stack's venv through SQLAlchemy by the ``db-plugin`` fixture."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from stackmagic.catalog.database import _mysql_native_hash, _scram_sha256
from stackmagic.engine import StepError
from stackmagic.process_info import alive
from tests.conftest import FIXTURES, free_port, make_repo, wait_until

# Characters that must be quoted in a URL and escaped in SQL: the password is used as given.
PASSWORD = "pw-S3cr3t@db:/x%y"
OS_USER = {"mysql": "mysql", "postgresql": "postgres"}


@pytest.fixture(scope="module")
def db_repo(tmp_path_factory) -> Path:
    return make_repo(FIXTURES / "db-plugin", tmp_path_factory.mktemp("repos") / "db-plugin")


def processes_under(root: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``root`` (the servers chdir there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(root) or cwd.startswith(f"{root}/"):
            pids.append(int(entry.name))
    return pids



class DbStack:
    """A stack with the dbcheck plugin in a directory the database accounts may enter."""

    def __init__(self, root: Path, plugin_url: str):
        self.root = root
        self.socket = f"stackmagic-db-{uuid.uuid4().hex[:8]}"
        self.plugin_url = plugin_url
        self.localrc = root / "localrc"

    def write(self, kind: str, **extra: str) -> None:
        lines = [
            f"DEST={self.root}/dest",
            f"DATA_DIR={self.root}/data",
            f"LOGDIR={self.root}/logs",
            f"TMUX_SOCKET={self.socket}",
            "USE_CONSTRAINTS=False",
            "disable_all_services",
            f"enable_plugin dbcheck {self.plugin_url}",
            "enable_service dbcheck",
            f"DATABASE_TYPE={kind}",
            f"DATABASE_PASSWORD='{PASSWORD}'",
            *(f"{k}={v}" for k, v in extra.items()),
        ]
        self.localrc.write_text("\n".join(lines) + "\n")

    def engine(self, events: list | None = None):
        from stackmagic import events as ev
        from stackmagic.config import load_config
        from stackmagic.engine import Engine

        return Engine(load_config(self.localrc), on_event=events.append if events is not None else ev.ignore)

    def teardown(self) -> None:
        try:
            self.engine().unstack(all=True)
        except Exception:  # noqa: BLE001 - best effort; the pid sweep below is the backstop
            pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{self.socket}").unlink(missing_ok=True)
        for pid in processes_under(self.root):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not processes_under(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def db_stack(db_repo, monkeypatch):
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    # pytest's tmp dirs are mode 0700: the mysql and postgres accounts could not enter them
    root = Path(tempfile.mkdtemp(prefix="smdb-", dir="/tmp"))
    root.chmod(0o755)
    stack = DbStack(root, db_repo.as_uri())
    yield stack
    stack.teardown()


def ran(summary) -> list[str]:
    return [r.step for r in summary.ran]


def listening(port: int) -> list[str]:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def files_containing(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            hits += [f"{path}: {n!r}" for n in needles if n in text]
    return hits


def cmdlines_containing(needle: str) -> list[str]:
    hits = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in args:
            hits.append(f"{entry.name}: {args[:200]}")
    return hits


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_server_backend_end_to_end(kind, db_stack):
    port = free_port()
    db_stack.write(kind, DATABASE_PORT=str(port))
    events: list = []
    summary = db_stack.engine(events).stack()
    # in the order they happened: the server's data directory, the server up, then the user's init
    timeline = [(type(e).__name__, e.step) for e in events if type(e).__name__ in ("StepStarted", "StepFinished")]
    assert (timeline.index(("StepFinished", "configure database"))
            < timeline.index(("StepStarted", f"start {kind}"))
            < timeline.index(("StepFinished", f"start {kind}"))
            < timeline.index(("StepStarted", "init dbcheck")))

    # the fixture's round trip ran in the stack's venv, over TCP, with the password; a wrong one fails
    init_log = (db_stack.root / "logs" / "stack" / "init-dbcheck.log").read_text()
    dialect = "mysql" if kind == "mysql" else "postgresql"
    assert f"dbcheck: {dialect} round trip: hello world" in init_log
    assert "dbcheck: a wrong password is refused" in init_log

    # status: running and healthy by its own probe; bound to 127.0.0.1 only, on the chosen port
    status = {s.service: s for s in summary.services}
    assert status[kind].running and status[kind].healthy, status[kind].detail
    assert status[kind].endpoint == f"{'mysql' if kind == 'mysql' else 'postgresql'}://127.0.0.1:{port}"
    assert listening(port) == [f"127.0.0.1:{port}"]
    pid = status[kind].pid
    base = db_stack.root / "data" / kind
    if os.geteuid() == 0:
        assert (base / "data").owner() == OS_USER[kind]
    assert processes_under(base), "the server runs from its data directory"

    # the password is in no log, step log or service log, and on no command line
    quoted = quote(PASSWORD, safe="")
    assert files_containing(db_stack.root / "logs", [PASSWORD, quoted]) == []
    assert cmdlines_containing(PASSWORD) == []

    # nothing changed: nothing runs, and the server is still the same process
    again = db_stack.engine().stack()
    assert ran(again) == []
    assert {s.service: s for s in again.services}[kind].pid == pid

    # unstack keeps the database server (devstack's unstack.sh); --all stops it and all it made
    assert kind not in db_stack.engine().unstack()
    assert alive(pid) and {s.service: s for s in db_stack.engine().status()}[kind].healthy
    stopped = db_stack.engine().unstack(all=True)
    assert kind in stopped
    assert wait_until(lambda: not alive(pid))
    assert wait_until(lambda: not processes_under(base)), processes_under(base)
    assert listening(port) == []

    # clean removes its data
    db_stack.engine().clean()
    assert not base.exists()


def test_sqlite_needs_no_server(db_stack):
    db_stack.write("sqlite")
    summary = db_stack.engine().stack()
    assert "packages" not in ran(summary)
    assert not any(step.startswith("start ") for step in ran(summary))
    assert "dbcheck: sqlite round trip: hello world" in (
        db_stack.root / "logs" / "stack" / "init-dbcheck.log").read_text()
    assert (db_stack.root / "data" / "databases" / "fixture.sqlite").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another account only for root")
def test_data_dir_the_server_account_cannot_enter_is_reported(db_stack, tmp_path):
    closed = tmp_path / "closed"                 # pytest's tmp dirs are mode 0700
    db_stack.write("postgresql", DATABASE_PORT=str(free_port()), DATA_DIR=str(closed / "data"))
    with pytest.raises(StepError) as info:
        db_stack.engine().stack()
    message = str(info.value)
    assert "step 'configure database' failed" in message
    assert "runs as 'postgres', which cannot enter" in message
    assert "chmod o+x" in message


def test_stored_hashes_match_the_servers_algorithms():
    # MySQL's documented example: PASSWORD('mypass')
    assert _mysql_native_hash("mypass") == "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"
    verifier = _scram_sha256(PASSWORD)
    assert verifier.startswith("SCRAM-SHA-256$4096:") and PASSWORD not in verifier
    assert verifier != _scram_sha256(PASSWORD)        # a fresh salt every time
