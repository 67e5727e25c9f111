"""The command line, run as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackmagic", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {}), "COLUMNS": "200"}, timeout=60)


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_samples_lists_the_shipped_configurations():
    out = cli("samples").stdout
    for name in ("quickstart", "minimal", "blog-neutron", "blog-everything"):
        assert name in out


@pytest.mark.parametrize("sample", ["blog-neutron", "blog-everything"])
def test_the_blog_localrcs_plan_with_warnings_not_errors(sample):
    proc = cli("plan", "--json", "--sample", sample)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == []
    rows = {r["service"]: r for r in report["services"]}
    assert set(report) >= {"enabled", "disabled", "plugins", "settings", "merges", "warnings", "errors"}
    if sample == "blog-neutron":
        assert "n-net" not in report["enabled"] and "n-net" in report["disabled"]
        # the agents the post names choose the Open vSwitch layout: they run here, and the
        # defaults' OVN services are set aside
        assert rows["q-svc"]["project"] == "neutron" and rows["q-svc"]["runs_here"]
        assert rows["q-agt"]["project"] == "neutron" and rows["q-agt"]["runs_here"]
        assert "ovn-northd" not in report["enabled"] and "q-ovn-agent" not in rows
        assert rows["key"]["runs_here"] and rows["g-api"]["runs_here"]
    else:
        assert report["settings"]["RECLONE"] == "yes"
        assert report["settings"]["VOLUME_BACKING_FILE_SIZE"] == "16M"
        assert rows["sahara"]["status"] == "retired"
        assert rows["tr-api"]["status"] == "plugin"
        assert any("sahara" in w and "retired" in w for w in report["warnings"])
        assert "heat" in report["disabled"] and "h-eng" not in report["enabled"]


def test_plan_shows_groups_settings_and_masks_passwords(tmp_path):
    conf = tmp_path / "local.conf"
    conf.write_text(
        "[[local|localrc]]\nADMIN_PASSWORD=sup3rsecret\nDATABASE_PASSWORD=$ADMIN_PASSWORD\n"
        "disable_all_services\nenable_service key g-api\n"
        "[[post-config|$GLANCE_API_CONF]]\n[DEFAULT]\nworkers = 1\n"
    )
    proc = cli("plan", "--config", str(conf))
    assert proc.returncode == 0, proc.stderr
    assert "sup3rsecret" not in proc.stdout + proc.stderr
    assert "ADMIN_PASSWORD=********" in proc.stdout
    assert "keystone" in proc.stdout and "glance" in proc.stdout
    report = json.loads(cli("plan", "--json", "--config", str(conf)).stdout)
    assert report["enabled"] == ["key", "g-api"]
    assert report["settings"]["DATABASE_PASSWORD"] == "********"
    assert report["merges"] == [{"phase": "post-config", "file": report["merges"][0]["file"],
                                 "section": "DEFAULT", "key": "workers", "value": "1"}]
    assert report["merges"][0]["file"].endswith("glance/glance-api.conf")


@pytest.mark.parametrize("text, message", [
    ("enable_service key\nif then\n", "line 2"),
    ("enable_service n-apii\n", "unknown service 'n-apii'"),
    ("enable_plugin foo file:///x\nenable_plugin foo file:///y\n", "foo"),
    ("enable_plugin foo\n", "URL"),
])
def test_bad_localrc_exits_2_with_a_clear_message_and_writes_nothing(tmp_path, text, message):
    rc = tmp_path / "localrc"
    rc.write_text(text)
    before = listing(tmp_path)
    proc = cli("plan", "--config", str(rc), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr + proc.stdout
    assert listing(tmp_path) == before
    data = json.loads(cli("plan", "--json", "--config", str(rc), cwd=tmp_path).stdout)
    assert data["errors"] and message in data["errors"][0]


def test_bad_local_conf_header_exits_2(tmp_path):
    conf = tmp_path / "local.conf"
    conf.write_text("[[local|localrc]]\nenable_service key\n[[ post-config | $NOVA_CONF ]]\n[DEFAULT]\na=1\n")
    proc = cli("plan", "--config", str(conf))
    assert proc.returncode == 2
    assert "line 3" in proc.stderr


def test_stack_dry_run_lists_steps_without_doing_anything(stack_dir):
    proc = cli("stack", "--dry-run", "--config", str(stack_dir.localrc))
    assert proc.returncode == 0, proc.stderr
    assert "would run  install" in proc.stdout and "start echo-api" in proc.stdout
    assert not (stack_dir.root / "data" / "venv").exists()


def test_status_and_logs_after_stack(stack_dir):
    env = {"XDG_STATE_HOME": str(stack_dir.root / "state")}
    proc = cli("stack", "--config", str(stack_dir.localrc), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "echo-api" in proc.stdout and "time per phase" in proc.stdout
    # status finds the stack through the remembered configuration (no --config)
    status = cli("status", env=env, cwd=stack_dir.root / "data")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "healthy" in status.stdout
    logs = cli("logs", "echo-api", "-n", "3", env=env, cwd=stack_dir.root / "data")
    assert logs.returncode == 0
    assert 1 <= len(logs.stdout.splitlines()) <= 3
    unknown = cli("logs", "nope", env=env, cwd=stack_dir.root / "data")
    assert unknown.returncode == 1 and "echo-api" in unknown.stderr
    down = cli("unstack", env=env, cwd=stack_dir.root / "data")
    assert down.returncode == 0 and "stopped 1" in down.stdout
    after = cli("status", env=env, cwd=stack_dir.root / "data")
    assert after.returncode == 3 and "not started" in after.stdout
