"""The catalog contract, end to end: a new catalog module and nothing else.

The test writes one module into a folder that belongs to the ``stackmagic.catalog`` package for
its duration; nothing else in stackmagic is edited. The module holds three projects that the
first catalog could not express:

- ``forker``: a daemon that forks twice, leaves the window's session and writes a pid file; it
  ignores SIGTERM and stops on SIGINT (its ``stop_signal``); ``persistent`` like a database server.
- ``orderly``: a foreground server that must start after the daemon (``Process.after``) and
  ignores SIGTERM, so stopping it escalates to SIGKILL after its ``stop_timeout``.
- ``fakeapi``: the shared API-service shape (config file, gunicorn, port setting) for a WSGI app
  of its own.

``stack``, a re-run, a SIGKILL of the daemon and its restore, ``unstack`` and ``unstack --all``
are tried for real (tmux, venv, gunicorn, HTTP on loopback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from stackmagic import events as ev
from stackmagic.config import load_config
from stackmagic.engine import Engine
from stackmagic.process_info import alive, tree
from tests.conftest import free_port, wait_until

DAEMON = '''
import http.server, os, signal, sys

port, pidfile = int(sys.argv[1]), sys.argv[2]
if os.fork():
    sys.exit(0)             # the parent returns at once, as a daemon's starter does
os.setsid()
if os.fork():
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)      # deaf to SIGTERM; SIGINT stops it


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"forked daemon\\n")

    def log_message(self, *args):
        print("request served", flush=True)


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open(pidfile + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()}\\n")
os.rename(pidfile + ".tmp", pidfile)
print("daemon listening", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    print("daemon stopped by SIGINT", flush=True)
'''

FOREGROUND = '''
import http.server, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)      # ignores SIGTERM: only SIGKILL ends it


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"orderly\\n")


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

MODULE = '''
"""Made-up projects of the contract test."""
import signal
import sys
from pathlib import Path

from stackmagic.catalog.api_service import ApiService
from stackmagic.catalog.base import Process, Project
from stackmagic.health import HttpCheck

HERE = Path(__file__).parent.parent / "bin"      # the made-up programs


class Forker(Project):
    name = "forker"
    services = {"fk-daemon": "a daemon that forks"}
    provides = {"fake-bus": "start"}
    persistent = True
    ports = {"FORKER_PORT": 0}

    def processes(self, ctx):
        port = ctx.settings.int("FORKER_PORT")
        pidfile = ctx.settings.data_dir / "forker" / "fk-daemon.pid"
        yield Process("fk-daemon", [sys.executable, str(HERE / "fakedaemon.py"), str(port), str(pidfile)],
                      cwd=HERE, pidfile=pidfile, health=HttpCheck(f"http://127.0.0.1:{port}/"),
                      host="127.0.0.1", port=port, stop_signal=signal.SIGINT, timeout=30)


class Orderly(Project):
    name = "orderly"
    services = {"ord-api": "starts after the daemon"}
    ports = {"ORDERLY_PORT": 0}

    def processes(self, ctx):
        port = ctx.settings.int("ORDERLY_PORT")
        yield Process("ord-api", [sys.executable, str(HERE / "fakeforeground.py"), str(port)],
                      cwd=HERE, after=("fk-daemon",), health=HttpCheck(f"http://127.0.0.1:{port}/"),
                      host="127.0.0.1", port=port, stop_timeout=1, timeout=30)


class FakeApi(ApiService):
    name = "fakeapi"
    services = {"fake-api": "the API-service shape"}
    api, app = "fake-api", "fakeapi_app:application"
    conf_setting, port_setting, default_port = "FAKEAPI_CONF", "FAKEAPI_PORT", 0
    requires = ()
    authtoken = False

    def configure(self, ctx):
        super().configure(ctx)
        ctx.write_file(self.conf(ctx).parent / "fakeapi_app.py",
                       "def application(environ, start_response):\\n"
                       "    start_response('200 OK', [('Content-Type', 'text/plain')])\\n"
                       "    return [b'fake api\\\\n']\\n")
'''


@pytest.fixture
def fake_catalog(catalog_dir, tmp_path):
    (catalog_dir / "fakecontract.py").write_text(MODULE)
    programs = tmp_path / "bin"             # not in the catalog: every module there is imported
    programs.mkdir()
    (programs / "fakedaemon.py").write_text(DAEMON)
    (programs / "fakeforeground.py").write_text(FOREGROUND)
    return catalog_dir


def listeners(port: int) -> list[str]:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode()


def test_a_new_catalog_module_is_all_it_takes(tmp_path, fake_catalog, monkeypatch):
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    socket = f"stackmagic-contract-{tmp_path.name[-12:]}"
    ports = {name: free_port() for name in ("FORKER_PORT", "ORDERLY_PORT", "FAKEAPI_PORT")}
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([
        f"DEST={tmp_path}/dest", f"DATA_DIR={tmp_path}/data", f"LOGDIR={tmp_path}/logs",
        f"TMUX_SOCKET={socket}", "USE_CONSTRAINTS=False",
        "FAKEAPI_CONF=$DATA_DIR/etc/fakeapi/fakeapi.conf",
        *(f"{k}={v}" for k, v in ports.items()),
        "disable_all_services", "enable_service fk-daemon ord-api fake-api"]) + "\n")

    # plan knows the new services from the module alone
    from stackmagic.api import plan_report

    rows = {r["service"]: r for r in plan_report(localrc)["services"]}
    assert rows["fk-daemon"]["project"] == "forker" and rows["fk-daemon"]["runs_here"]
    assert rows["fk-daemon"]["description"] == "a daemon that forks"

    def engine(events=None) -> Engine:
        return Engine(load_config(localrc), on_event=events.append if events is not None else ev.ignore)

    pids: list[int] = []
    try:
        events: list = []
        summary = engine(events).stack()
        status = {s.service: s for s in summary.services}
        assert all(status[s].healthy for s in ("fk-daemon", "ord-api", "fake-api")), status
        assert get(ports["FORKER_PORT"]) == "forked daemon\n"
        assert get(ports["ORDERLY_PORT"]) == "orderly\n"
        assert get(ports["FAKEAPI_PORT"]) == "fake api\n"
        # the daemon is found by its pid file, not by the window's process
        pidfile = tmp_path / "data" / "forker" / "fk-daemon.pid"
        daemon = int(pidfile.read_text())
        assert status["fk-daemon"].pid == daemon
        assert os.getsid(daemon) != os.getsid(status["ord-api"].pid)     # it left the window
        # ord-api started only once fk-daemon was up
        order = [(type(e).__name__, e.step) for e in events
                 if isinstance(e, (ev.StepStarted, ev.StepFinished)) and e.step.startswith("start ")]
        assert order.index(("StepFinished", "start fk-daemon")) < order.index(("StepStarted", "start ord-api"))
        # the API-service shape: a config file from its setting, a shim, gunicorn on its port
        conf = tmp_path / "data" / "etc" / "fakeapi" / "fakeapi.conf"
        assert "debug = True" in conf.read_text() or "debug = true" in conf.read_text()
        assert (conf.parent / "wsgi_fakeapi.py").exists()
        assert "gunicorn" in Path(f"/proc/{status['fake-api'].pid}/cmdline").read_text() or any(
            "gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
            for p in tree(status["fake-api"].pid))
        # the daemon's window follows its log
        assert wait_until(lambda: "daemon listening" in (tmp_path / "logs" / "fk-daemon.log").read_text())

        assert engine().stack().ran == []                                     # nothing changed

        # SIGKILL the daemon: status sees it, stack restores only it
        os.kill(daemon, signal.SIGKILL)
        assert wait_until(lambda: not alive(daemon))
        assert wait_until(lambda: not {s.service: s for s in engine().status()}["fk-daemon"].running)
        # what started after it is told apart: still answering, but not whole without it
        down = {s.service: s for s in engine().status()}
        assert down["ord-api"].running and down["ord-api"].healthy is False
        assert "needs fk-daemon" in down["ord-api"].detail
        again = engine().stack()
        assert [r.step for r in again.ran] == ["start fk-daemon"]
        restored = {s.service: s for s in again.services}
        assert restored["fk-daemon"].healthy and restored["fk-daemon"].pid != daemon
        assert restored["ord-api"].pid == status["ord-api"].pid and restored["ord-api"].healthy
        pids = [restored["fk-daemon"].pid, *tree(restored["ord-api"].pid), *tree(restored["fake-api"].pid)]

        # the tmux server killed: the services run on without windows; status sees them as they
        # are, and stack gives them windows back without a second copy of any
        before = {s.service: s.pid for s in engine().status()}
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=True)
        orphans = {s.service: s for s in engine().status()}
        assert all(orphans[s].running and orphans[s].pid == before[s] for s in before), orphans
        assert "window is gone" in orphans["fake-api"].detail
        back = engine().stack()
        assert {r.step for r in back.ran} == {"start fk-daemon", "start ord-api", "start fake-api"}
        assert all(s.healthy for s in back.services), back.services
        assert not [pid for pid in before.values() if alive(pid)]
        for port in ports.values():
            assert len(listeners(port)) == 1
        restored = {s.service: s for s in back.services}
        pids = [restored["fk-daemon"].pid, *tree(restored["ord-api"].pid), *tree(restored["fake-api"].pid)]

        # a plain unstack keeps the persistent daemon; SIGTERM-deaf ord-api is killed after 1 s
        stopped = engine().unstack()
        assert set(stopped) == {"ord-api", "fake-api"}
        assert alive(restored["fk-daemon"].pid)
        assert not [p for p in pids[1:] if alive(p)]
        assert engine().unstack(all=True) == ["fk-daemon"]
        assert wait_until(lambda: not alive(restored["fk-daemon"].pid), timeout=5)
        assert "daemon stopped by SIGINT" in (tmp_path / "logs" / "fk-daemon.log").read_text()
        assert not pidfile.exists()
    finally:
        try:
            engine().unstack(all=True)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert not [p for p in pids if alive(p)]
