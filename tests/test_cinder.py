"""Cinder for real (catalog/cinder.py, catalog/cinder_backends.py), on the session's shared cloud
at its default stage (tests/default_cloud.py: the default set's c-api, c-sch, c-vol on MariaDB,
RabbitMQ and etcd3, with c-bak, which the first stages add; sources mirrored from PyPI sdists): the volume services
are up in Cinder's own view, devstack's default volume type exists, a 1 GiB volume becomes
available with its data inside the backing file's filesystem, extend, snapshot, backup and
delete work. Nova attaches Cinder's volumes to real guests on the same cloud (test_compute's
guest sees its volume as a disk; test_everything's template attaches one); the session's last
test (the tutorials' 08), after a localrc that no longer enables Cinder, leaves no mount, no loop
device and no process, and its clean removes the backing file. Plans alone show that a backing file too
small for one volume is refused before anything is built.

The slow tests: root only (loop devices, mounts; the shared cloud), run by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackmagic.catalog import cinder_backends as cb
from stackmagic.samples import sandbox
from tests.conftest import engine_for, sdk_connection, wait_until
from tests.default_cloud import on_stage

SERVICES = "key mysql rabbit etcd3 c-api c-sch c-vol c-bak"
HERE = Path(__file__).parent
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="c-vol needs root (loop devices, mounts)")
#: the slow tests check the shared cloud at its default stage, where c-bak runs
pytestmark = pytest.mark.cloud_stage("default")


def write_localrc(root: Path, *extra: str) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "cinder"), "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
        "VOLUME_BACKING_FILE_SIZE=4G", "disable_all_services", f"enable_service {SERVICES}",
        *extra]) + "\n")
    return localrc


@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud at its default stage."""
    return on_stage(default_cloud, "c-api", "c-sch", "c-vol", "c-bak")


@pytest.fixture(scope="module")
def cloud(stack):
    """openstacksdk as the stack's admin (clouds.yaml's devstack-admin)."""
    with sdk_connection(stack["root"], "devstack-admin") as conn:
        yield conn


def status_of(get, wanted: str, timeout: float = 180):
    """Wait until ``get()`` has status ``wanted`` (an error status fails at once); the last one."""
    last = {}

    def done() -> bool:
        last["it"] = get()
        assert not last["it"].status.startswith("error"), last["it"]
        return last["it"].status == wanted
    assert wait_until(done, timeout), f"still {last['it'].status}, not {wanted}"
    return last["it"]


@pytest.mark.slow
@root_only
def test_every_service_is_healthy_and_cinder_counts_them_up(stack, cloud):
    services = {s.service: s for s in stack["engine"].status()}
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    assert {"c-api", "c-sch", "c-vol", "c-bak"} <= set(services)
    # c-vol is healthy only once the scheduler lists its backend's pool
    assert "reports pool" in services["c-vol"].detail and "@nfs" in services["c-vol"].detail
    rows = {s.binary: s for s in cloud.block_storage.services()}       # `openstack volume service list`
    assert set(rows) == {"cinder-scheduler", "cinder-volume", "cinder-backup"}
    assert all(r.state == "up" and r.status == "enabled" for r in rows.values()), rows
    assert rows["cinder-volume"].host.endswith("@nfs")


@pytest.mark.slow
@root_only
def test_the_plan_says_which_backend_and_why(stack):
    engine = stack["engine"]
    kind, why = cb.probe()
    notes = [n for p in engine.projects()[0] for n in p.plan_notes(engine.ctx)]
    (note,) = [n for n in notes if n.startswith("cinder:")]
    assert note.startswith(f"cinder: {kind}:") and why in note and "30G" in note     # devstack's size
    if not Path("/dev/mapper/control").exists():
        assert kind == "nfs" and "device-mapper" in note


@pytest.mark.slow
@root_only
def test_cinder_conf_is_devstacks(stack):
    from stackmagic import ini
    from stackmagic.catalog import etcd3

    engine = stack["engine"]
    conf = stack["data"] / "etc" / "cinder" / "cinder.conf"
    get = lambda section, key: ini.iniget(conf, section, key)  # noqa: E731
    assert get("DEFAULT", "enabled_backends") == "nfs" and get("DEFAULT", "default_volume_type") == "nfs"
    assert get("nfs", "volume_driver") == cb.NFS_DRIVER
    assert get("coordination", "backend_url") == etcd3.backend_url(engine.ctx)
    assert get("DEFAULT", "transport_url").startswith("rabbit://")
    assert get("database", "connection").startswith("mysql+pymysql://")
    assert get("keystone_authtoken", "username") == "cinder"
    assert get("nova", "username") == "nova" and get("service_user", "username") == "cinder"
    assert get("DEFAULT", "cinder_internal_tenant_project_id")
    assert (conf.stat().st_mode & 0o777) == 0o600
    # what nova.conf gets for the attach (catalog/nova.py writes these when cinder is enabled)
    assert dict(((s, k), v) for s, k, v in cb.nova_options(engine.ctx))[
        ("libvirt", "nfs_mount_point_base")] == str(stack["data"] / "cinder" / "mnt")


@pytest.mark.slow
@root_only
def test_the_default_volume_type_is_the_backends(cloud):
    default = cloud.block_storage.get("/types/default").json()["volume_type"]
    assert default["name"] == "nfs"
    assert default["extra_specs"] == {"volume_backend_name": "nfs"}


@pytest.mark.slow
@root_only
def test_a_volume_lives_in_the_backing_file_and_extends_snapshots_backs_up_and_goes(stack, cloud):
    bs, data = cloud.block_storage, stack["data"]
    backing = data / "stack-volumes-nfs-backing-file"
    assert backing.stat().st_size == 30 << 30
    volume = bs.create_volume(size=1, name="test-volume")
    volume = status_of(lambda: bs.get_volume(volume.id), "available")
    assert volume.size == 1 and volume.volume_type == "nfs" and volume.host.endswith("@nfs#nfs")

    # its data is a file on the filesystem of the loop device that serves the backing file
    export = data / "cinder" / "exports" / "nfs"
    path = export / f"volume-{volume.id}"
    assert path.stat().st_size == 1 << 30
    record = json.loads((data / "stackmagic" / "cinder-backing.json").read_text())
    (device,) = [d for d, f in record["loops"].items() if f == str(backing)]
    assert os.stat(path).st_dev == os.stat(device).st_rdev
    before = backing.stat().st_blocks
    with open(path, "r+b") as fh:                   # written through the mount ...
        fh.write(os.urandom(8 << 20))
        fh.flush()
        os.fsync(fh.fileno())
    assert backing.stat().st_blocks - before >= (8 << 20) // 512     # ... lands in the backing file

    bs.extend_volume(volume, 2)
    volume = status_of(lambda: bs.get_volume(volume.id), "available")
    assert volume.size == 2 and path.stat().st_size == 2 << 30

    snapshot = bs.create_snapshot(volume_id=volume.id, name="test-snapshot")
    snapshot = status_of(lambda: bs.get_snapshot(snapshot.id), "available")
    assert (export / f"volume-{volume.id}.{snapshot.id}").is_file()     # the qcow2 overlay

    backup = bs.create_backup(volume_id=volume.id, name="test-backup", force=True)
    backup = status_of(lambda: bs.get_backup(backup.id), "available", timeout=300)
    assert list((data / "cinder" / "backups").rglob(f"*{backup.id}*"))
    bs.delete_backup(backup)
    bs.delete_snapshot(snapshot)
    assert wait_until(lambda: bs.find_snapshot(snapshot.id) is None, 120)
    bs.delete_volume(volume)
    assert wait_until(lambda: bs.find_volume(volume.id) is None, 120)
    assert not list(export.glob(f"volume-{volume.id}*"))


def test_a_backing_file_too_small_for_one_volume_is_refused_before_anything(tmp_path):
    from stackmagic.errors import ConfigError

    root = tmp_path / "stack"
    root.mkdir()
    localrc = write_localrc(root, "VOLUME_BACKING_FILE_SIZE=16M")
    engine = engine_for(localrc)
    with pytest.raises(ConfigError) as err:
        engine.plan()
    message = str(err.value)
    assert "VOLUME_BACKING_FILE_SIZE=16M is too small" in message
    assert f"{cb.smallest(cb.backends(engine.ctx)[0]) // cb.MIB}M" in message and "30G" in message
    assert sorted(p.name for p in root.iterdir()) == ["localrc"]
    # the CLI says it and exits 2, building nothing
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "stack", "-c", str(localrc)],
                          capture_output=True, text=True, timeout=120, cwd=HERE.parent)
    assert proc.returncode == 2 and "too small" in proc.stderr
    # only stackmagic's own bookkeeping (its lock, the generated passwords): nothing of a stack
    assert sorted(p.name for p in root.iterdir()) == ["data", "localrc"]
    assert [p.name for p in (root / "data").iterdir()] == ["stackmagic"]
    # plan shows it as Cinder's note
    notes = [n for p in engine.projects()[0] for n in p.plan_notes(engine.ctx)]
    assert any("16M cannot hold one 1 GiB volume" in n for n in notes)


@pytest.mark.parametrize("text, size", [("30G", 30 << 30), ("16M", 16 << 20), ("1100MiB", 1100 << 20),
                                        ("2GB", 2 * 10**9), ("4096", 4096), ("1t", 1 << 40)])
def test_backing_file_sizes_read_as_truncate_reads_them(text, size):
    assert cb.parse_size(text) == size


def test_a_size_that_is_no_size_is_refused():
    from stackmagic.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a size"):
        cb.parse_size("lots")


def test_tempest_hears_about_the_volume_service_as_lib_tempest_tells_it(tmp_path):
    from stackmagic.catalog.cinder import Cinder
    from stackmagic.config import load_config
    from stackmagic.context import Context

    def options(*extra: str) -> dict[tuple[str, str], str]:
        localrc = write_localrc(tmp_path, *extra)
        ctx = Context(load_config(localrc), state=None, tmux=None, venv=None)  # type: ignore[arg-type]
        return {(section, key): value for section, key, value in Cinder().tempest_options(ctx)}

    opts = options("CINDER_ENABLED_BACKENDS=nfs:nfs")
    assert opts[("volume", "build_timeout")] == "196"
    assert opts[("volume", "max_microversion")] == "latest" and ("volume", "min_microversion") not in opts
    assert opts[("volume", "storage_protocol")] == "nfs"        # what the NFS driver reports
    assert opts[("volume-feature-enabled", "manage_volume")] == "false"       # lvm only
    assert opts[("volume-feature-enabled", "api_extensions")] == "all"
    assert opts[("enforce_scope", "cinder")] == "true"
    assert ("volume-feature-enabled", "backup") not in opts             # c-bak is enabled
    two = options("CINDER_ENABLED_BACKENDS=nfs:nfs,nfs:nfs-2", "disable_service c-bak")
    assert two[("volume-feature-enabled", "multi_backend")] == "true"
    assert two[("volume", "backend_names")] == "nfs,nfs-2"
    assert two[("volume-feature-enabled", "backup")] == "false"
