"""Tempest against the first-tier stack, for real: key + g-api + placement-api + tempest on
SQLite (sources mirrored from PyPI), on free ports with their own tmux socket; the tempest
service installs tempest into its own venv, writes tempest.conf and a workspace; OpenStack's
own identity and image API tests run from it with no failure; unstack leaves no process.

Slow (measured: stack ~50 s, tempest ~4 min for 202 tests), run by CI.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from stackmagic.catalog.tempest import DEFAULT_VERSION, pinned_version
from stackmagic.process_info import alive, tree
from stackmagic.samples import sample_path, sandbox

REGEX = r"^tempest\.api\.(identity|image)"
_COUNT = re.compile(r"^ - (Passed|Skipped|Failed): (\d+)$", re.M)


def write_conf(root: Path) -> Path:
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]",
        *sandbox(root, "tempest"),
        f"source {sample_path('quickstart')}",
        "enable_service tempest",
        "[[test-config|$TEMPEST_CONFIG]]",
        "[image]",
        "build_timeout = 120",
    ]) + "\n")
    return conf


def test_pinned_version_reads_constraints(tmp_path):
    cons = tmp_path / "upper-constraints.txt"
    cons.write_text("oslo.config===10.0.0\nTempest===46.1.0 ; python_version>='3.10'\n")
    assert pinned_version(cons, "tempest") == "46.1.0"
    assert pinned_version(cons, "oslo_config") == "10.0.0"
    assert pinned_version(cons, "stestr") is None
    assert pinned_version(None, "tempest") is None


@pytest.mark.slow
def test_tempest_identity_and_image_api_pass(tmp_path):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    conf = write_conf(tmp_path)
    engine = Engine(load_config(conf))
    socket_name = engine.tmux.server.socket_name
    data = tmp_path / "data"
    pids: list[int] = []
    try:
        engine.stack()
        pids = [p for s in engine.status() if s.pid for p in tree(s.pid)]

        # its own venv at the default version; the shared venv has no tempest
        assert (data / "venv-tempest" / "bin" / "tempest").exists()
        assert not (data / "venv" / "bin" / "tempest").exists()
        version = subprocess.run([data / "venv-tempest" / "bin" / "tempest", "--version"],
                                 capture_output=True, text=True, check=True).stdout
        assert DEFAULT_VERSION in version

        # tempest.conf: private, pointing at this stack, the test-config merge applied
        tempest_conf = data / "etc" / "tempest" / "tempest.conf"
        assert oct(tempest_conf.stat().st_mode & 0o777) == "0o600"
        text = tempest_conf.read_text()
        port = engine.config.settings["KEYSTONE_SERVICE_PORT"]
        assert f"uri_v3 = http://127.0.0.1:{port}/v3" in text
        assert "build_timeout = 120" in text
        image_ref = re.search(r"^image_ref = (\S+)$", text, re.M)
        assert image_ref and re.fullmatch(r"[0-9a-f-]{36}", image_ref[1])
        workspace = data / "tempest"
        assert (workspace / "etc" / "tempest.conf").resolve() == tempest_conf
        password = engine.config.settings.admin_password
        for log in (tmp_path / "logs" / "stack").glob("*.log"):
            assert password not in log.read_text(), log

        # nothing changed: a re-run does not redo the test-config step
        again = Engine(load_config(conf)).stack()
        assert "test-config tempest" not in [r.step for r in again.ran]

        run = subprocess.run(
            [data / "venv-tempest" / "bin" / "tempest", "run", "--regex", REGEX, "--concurrency", "2"],
            cwd=workspace, capture_output=True, text=True, timeout=600)
        found = {name: int(n) for name, n in _COUNT.findall(run.stdout)}
        failed = [line for line in run.stdout.splitlines() if "... FAILED" in line]
        assert run.returncode == 0 and found.get("Failed") == 0, (failed, run.stdout[-3000:])
        assert found["Passed"] >= 150, found      # the identity and image API tests really ran
    finally:
        Engine(load_config(conf)).unstack(all=True)
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
    assert pids and not [p for p in pids if alive(p)]
