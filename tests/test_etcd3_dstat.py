"""etcd3 and dstat for real (catalog/etcd3.py, catalog/dstat.py), one sandbox stack of the two:
etcd stores and returns a key through its v3 HTTP gateway and listens on loopback alone, with its
data under DATA_DIR; dstat samples into $LOGDIR/dstat.log every second;
unstack stops both, leaves no process and drops etcd's keys as devstack's cleanup_etcd3 does.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.test_rabbit import listening_sockets, live


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_call(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


@pytest.fixture
def small_stack():
    from stackmagic.samples import sandbox

    if os.geteuid() != 0 and not (shutil.which("etcd") and shutil.which("dstat")):
        pytest.skip("needs root (to install etcd-server and dstat) or both installed")
    root = Path(tempfile.mkdtemp(prefix="smetcd-", dir="/tmp"))
    root.chmod(0o755)                       # the etcd account enters it
    lines = sandbox(root, f"etcd-{uuid.uuid4().hex[:6]}")
    socket_name = next(line.split("=", 1)[1] for line in lines if line.startswith("TMUX_SOCKET="))
    localrc = root / "localrc"
    localrc.write_text("\n".join([*lines, "disable_all_services", "enable_service etcd3 dstat"]) + "\n")
    yield localrc
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    try:
        Engine(load_config(localrc)).clean()
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, check=False)
        Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_etcd3_and_dstat_for_real(small_stack):
    from stackmagic.catalog.etcd3 import backend_url, client_url
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.tmux import family

    engine = Engine(load_config(small_stack))
    summary = engine.stack()
    assert {s.service: s.healthy for s in summary.services} == {"etcd3": True, "dstat": True}
    settings = engine.config.settings

    # etcd keeps a key and gives it back; Cinder's URL points at it
    url = client_url(engine.ctx)
    etcd_call(url, "/v3/kv/put", {"key": _b64("stackmagic/test"), "value": _b64("hello")})
    (kv,) = etcd_call(url, "/v3/kv/range", {"key": _b64("stackmagic/test")})["kvs"]
    assert base64.b64decode(kv["value"]) == b"hello"
    assert backend_url(engine.ctx) == f"etcd3+http://127.0.0.1:{settings.int('ETCD_PORT')}?api_version=v3"
    member = settings.data_dir / "etcd" / "member"
    assert member.is_dir()

    panes = {name: engine.tmux.pid(name) for name in ("etcd3", "dstat")}
    procs = family(panes.values())
    etcd = {pid for pid in family([panes["etcd3"]])
            if Path(f"/proc/{pid}/comm").read_text().strip() == "etcd"}
    assert len(etcd) == 1
    if os.geteuid() == 0:
        assert Path(f"/proc/{next(iter(etcd))}").stat().st_uid == pwd.getpwnam("etcd").pw_uid
    sockets = listening_sockets(etcd)
    assert {port for _, port in sockets} == {settings.int("ETCD_PORT"), settings.int("ETCD_PEER_PORT")}
    assert {addr for addr, _ in sockets} == {"127.0.0.1"}, sockets

    # dstat samples every second into the window's log, lo's traffic among the columns
    log = settings.logdir / "dstat.log"
    samples = lambda: [line for line in log.read_text().splitlines() if line[:2].isdigit()]  # noqa: E731
    first = len(samples())
    assert wait_until(lambda: len(samples()) >= first + 2, 10)
    text = log.read_text()
    assert "most-expensive" in text and "net/lo" in text and "DeprecationWarning" not in text

    # unstack stops both (neither is kept) and drops etcd's keys
    engine = Engine(load_config(small_stack))
    engine.unstack()
    assert wait_until(lambda: not [pid for pid in procs if live(pid)], 10)
    assert not member.exists() and member.parent.is_dir()
