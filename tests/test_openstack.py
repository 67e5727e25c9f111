"""The README's main job for real: Keystone, Glance and Placement from the quickstart sample
(SQLite, sources mirrored from PyPI sdists), proven through openstacksdk; then Keystone is
SIGKILLed and a re-run restarts only it, with its data intact; unstack leaves no process.

Slow (a real cold stack: ~1.5-2 min), run by CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from stackmagic.process_info import alive, tree
from stackmagic.samples import sample_path, sandbox
from tests.conftest import wait_until

pytestmark = pytest.mark.slow


def write_conf(root: Path, database: str = "sqlite") -> Path:
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]",
        *sandbox(root, "os"),
        f"source {sample_path('quickstart')}",
        f"DATABASE_TYPE={database}",
    ]) + "\n")
    return conf


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def checks(engine) -> dict:
    from stackmagic.verify import verify

    return {c.name: c for c in verify(engine)}


def first_tier(tmp_path: Path, database: str) -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    conf = write_conf(tmp_path, database)
    engine = Engine(load_config(conf))
    socket_name = engine.tmux.server.socket_name
    try:
        summary = engine.stack()
        assert {s.service for s in summary.services if s.healthy} >= {"key", "g-api", "placement-api"}
        # the sources are real git checkouts at the release tags
        import git

        checkout = git.Repo(tmp_path / "dest" / "keystone")
        assert checkout.git.describe("--tags") == "30.0.0"
        found = checks(engine)
        assert all(c.ok for c in found.values()), {n: c.data for n, c in found.items() if not c.ok}
        assert found["token"].data["issued"]
        assert set(found["projects"].data["projects"]) >= {"admin", "demo", "alt_demo", "service",
                                                           "invisible_to_admin"}
        assert set(found["users"].data["users"]) >= {"admin", "demo", "alt_demo", "demo_reader",
                                                     "alt_demo_reader", "system_member", "system_reader",
                                                     "glance", "placement"}
        assert set(found["services"].data["services"]) >= {"identity:keystone", "image:glance",
                                                           "placement:placement"}
        (image,) = found["images"].data["images"]
        local = next((tmp_path / "data" / "files" / "images").glob("stackmagic-tiny.*"))
        assert image["status"] == "active"
        assert image["size"] == local.stat().st_size
        assert image["checksum"] == hashlib.md5(local.read_bytes()).hexdigest()  # noqa: S324
        assert found["resource_providers"].data["resource_providers"] == []
        # credentials: mode 0600, devstack's cloud names, no password in the step logs
        clouds = (tmp_path / "data" / "clouds.yaml")
        assert oct(clouds.stat().st_mode & 0o777) == "0o600"
        assert "devstack-admin:" in clouds.read_text()
        password = engine.config.settings.admin_password
        for log in (tmp_path / "logs" / "stack").glob("*.log"):
            assert password not in log.read_text(), log

        # SIGKILL Keystone: only it is restarted, its data (projects, users) is intact
        status = {s.service: s for s in engine.status()}
        key_pid = status["key"].pid
        others = {n: s.pid for n, s in status.items() if n != "key"}
        os.kill(key_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(key_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        again = Engine(load_config(conf)).stack()
        assert [r.step for r in again.ran] == ["start key"]
        after = {s.service: s for s in again.services}
        assert after["key"].healthy and after["key"].pid != key_pid
        assert {n: after[n].pid for n in others} == others
        found2 = checks(engine)
        assert found2["projects"].data == found["projects"].data
        assert found2["images"].data == found["images"].data

        # a kill of every other service, one at a time: status sees it (and what needs it),
        # stack restarts only it, and the cloud answers again (on a database server: the server;
        # the other services are the same on every database, killed in the SQLite run)
        servers = [] if database == "sqlite" else [database]
        for victim in servers or ("memcached", "g-api", "placement-api"):
            before = {s.service: s.pid for s in Engine(load_config(conf)).status()}
            # the service's own processes die (its window's launcher, tee and runuser live on,
            # as when a server crashes; they reap it)
            family = [pid for pid in tree(before[victim])[1:] if comm(pid) not in ("tee", "runuser")]
            assert family, victim
            for pid in family:
                os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda: not any(alive(p) for p in family))
            # the window's launcher exits once it has reaped what it ran (a moment later: until
            # then status rightly says running, and unhealthy)
            assert wait_until(lambda: not alive(before[victim])), victim
            down = {s.service: s for s in Engine(load_config(conf)).status()}
            assert not down[victim].running, victim
            # what needs it is told apart: Keystone still answers /v3 without memcached, every
            # API without its database server, but they cannot do their work
            for name, service in down.items():
                if victim in Engine(load_config(conf)).state.processes[name].needs:
                    assert service.healthy is False and f"needs {victim}" in service.detail, name
            if victim == "memcached":
                assert "memcached" in down["key"].detail
            restored = Engine(load_config(conf)).stack()
            ran = [r.step for r in restored.ran]
            if victim in servers:
                # the server first; a client that died with it (a Placement worker that
                # respawned while the server was down) is restarted too, and nothing else
                assert ran[0] == f"start {victim}" and all(r.phase == "start" for r in restored.ran), ran
            else:
                assert ran == [f"start {victim}"]
            if victim in servers:
                # a database server's death can take a client with it (a Placement worker that
                # respawned while it was down cannot boot): the cloud is whole again once a
                # stack has restored what died, and stack restarts nothing else
                for _ in range(3):
                    if all(c.ok for c in checks(engine).values()):
                        break
                    again = Engine(load_config(conf)).stack()
                    assert all(r.phase == "start" for r in again.ran), [r.step for r in again.ran]
                continue
            after = {s.service: s for s in restored.services}
            sick = [n for n, s in after.items() if not s.healthy]
            assert not sick, (victim, {n: after[n].detail for n in sick},
                              {n: Engine(load_config(conf)).logs(n, 15) for n in sick})
            assert {n: after[n].pid for n in before if n != victim} == {
                n: pid for n, pid in before.items() if n != victim}
        final = checks(engine)
        assert all(c.ok for c in final.values()), {n: c.data for n, c in final.items() if not c.ok}
    finally:
        pids = [p for s in Engine(load_config(conf)).status() if s.pid for p in tree(s.pid)]
        Engine(load_config(conf)).unstack(all=True)
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
    assert pids and not [p for p in pids if alive(p)]


def test_quickstart_on_sqlite(tmp_path):
    first_tier(tmp_path, "sqlite")


@pytest.mark.parametrize("database", ["mysql", "postgresql"])
def test_quickstart_on_a_database_server(database):
    # the server runs as its own user ('mysql', 'postgres'): its DATA_DIR must be reachable,
    # and pytest's tmp_path is not (mode 700)
    root = Path(tempfile.mkdtemp(prefix=f"stackmagic-{database}-"))
    root.chmod(0o755)
    try:
        first_tier(root, database)
    finally:
        shutil.rmtree(root, ignore_errors=True)
