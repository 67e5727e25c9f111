"""Cinder for real (catalog/cinder.py, catalog/cinder_backends.py): Keystone, MariaDB, RabbitMQ,
etcd3 and c-api, c-sch, c-vol, c-bak, sources mirrored from PyPI sdists. One stack serves the
module: the volume services are up in Cinder's own view, devstack's default volume type exists,
a 1 GiB volume becomes available with its data inside the backing file's filesystem, extend,
snapshot, backup and delete work, Nova's own libvirt NFS volume driver (from a scratch venv: no
Nova service, no libvirtd) finds each volume where Cinder said and survives a detach, and
unstack leaves no mount, no loop device and no process. Plans alone show that a backing file too
small for one volume is refused before anything is built.

Slow (a cold stack: a few minutes), run by CI. Needs root (loop devices and mounts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackmagic.catalog import cinder_backends as cb
from stackmagic.process_info import alive, tree
from stackmagic.samples import sandbox
from tests.conftest import engine_for, module_stack, mounts_under, sdk_connection, wait_until

SERVICES = "key mysql rabbit etcd3 c-api c-sch c-vol c-bak"
HERE = Path(__file__).parent
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="c-vol needs root (loop devices, mounts)")


def write_localrc(root: Path, *extra: str) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "cinder"), "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
        "VOLUME_BACKING_FILE_SIZE=4G", "disable_all_services", f"enable_service {SERVICES}",
        *extra]) + "\n")
    return localrc


def ours(root: Path) -> list[int]:
    """Live processes whose command line names the stack's directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(root).encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def stack():
    """One real stack for the module; everything it started or mounted is undone afterwards."""
    if os.geteuid() != 0:
        pytest.skip("c-vol needs root (loop devices, mounts)")
    # clean: the backing file goes too; a mount left below root fails the module
    with module_stack("stackmagic-cinder-", write_localrc) as made:
        yield made


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
    services = {s.service: s for s in stack["summary"].services}
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
    assert note.startswith(f"cinder: {kind}:") and why in note and "4G" in note
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
    assert backing.stat().st_size == 4 << 30
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


NOVA_ATTACH = r'''
import json, os, sys
import nova.conf
CONF = nova.conf.CONF
CONF([], project="nova", default_config_files=[])
from nova.virt.libvirt.volume import mount, nfs
CONF.set_override("nfs_mount_point_base", sys.argv[2], group="libvirt")
CONF.set_override("helper_command", os.path.join(os.path.dirname(sys.executable), "privsep-helper"),
                  group="nova_sys_admin")
class Host:
    def list_guests(self, only_running=False):
        return []
class Instance:
    uuid = "00000000-0000-4000-8000-000000000001"
mount.get_manager().host_up(Host())
info = json.loads(sys.argv[1])
driver = nfs.LibvirtNFSVolumeDriver(Host())
for attach in (1, 2):
    driver.connect_volume(info, Instance())
    path = info["data"]["device_path"]
    xml = driver.get_config(info, {"dev": "vdb", "bus": "virtio", "type": "disk"}).to_xml()
    driver.disconnect_volume(info, Instance())
    print(json.dumps({"attach": attach, "path": path, "exists": os.path.exists(path), "xml": xml,
                      "mounted_after_detach": os.path.ismount(os.path.dirname(path))}))
'''


@pytest.mark.slow
@root_only
def test_novas_nfs_volume_driver_attaches_the_file_and_keeps_the_share(stack, cloud, tmp_path):
    """Nova 34's LibvirtNFSVolumeDriver, as nova-compute runs it (mount manager, privsep), on the
    connection_info Cinder gives: the share is found mounted (no mount.nfs), the disk is the
    volume's file, and the unmount on detach is refused, so the next attach works too."""
    from stackmagic.catalog.nova import Nova
    from stackmagic.release import release_version
    from stackmagic.steps import constraints_file

    engine = stack["engine"]
    venv = tmp_path / "nova-venv"
    subprocess.run([sys.executable, "-m", "uv", "venv", "-q", "--python", sys.executable, str(venv)],
                   check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    "-c", str(constraints_file(engine.ctx)),
                    f"nova=={release_version(engine.ctx, Nova.pypi)}"], check=True, timeout=900)
    bs = cloud.block_storage
    volume = bs.create_volume(size=1, name="attach-volume")
    volume = status_of(lambda: bs.get_volume(volume.id), "available")
    connector = {"host": "compute", "ip": "127.0.0.1", "multipath": False, "platform": "x86_64",
                 "os_type": "linux", "do_local_attach": False}
    info = bs.post(f"/volumes/{volume.id}/action",
                   json={"os-initialize_connection": {"connector": connector}}).json()["connection_info"]
    assert info["driver_volume_type"] == "nfs"
    base = info["mount_point_base"]
    try:
        out = subprocess.run([str(venv / "bin" / "python"), "-c", NOVA_ATTACH, json.dumps(info), base],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        rounds = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert [r["attach"] for r in rounds] == [1, 2]
        for r in rounds:
            assert r["exists"] and r["mounted_after_detach"]
            assert r["path"] == str(cb.share_mount(engine.ctx, cb.Backend("nfs", "nfs")) / f"volume-{volume.id}")
            assert '<disk type="file" device="disk">' in r["xml"] and f'<source file="{r["path"]}"/>' in r["xml"]
        assert "target is busy" in out.stderr            # Nova's unmount, refused by .keep-mounted
    finally:
        bs.post(f"/volumes/{volume.id}/action", json={"os-terminate_connection": {"connector": connector}})
        bs.delete_volume(volume)
        assert wait_until(lambda: bs.find_volume(volume.id) is None, 120)


@pytest.mark.slow
@root_only
def test_unstack_leaves_no_mount_no_loop_device_and_no_process(stack):
    """Last in the module: it takes the stack down — after the localrc stopped enabling Cinder,
    as unstack undoes what a project set up whatever the localrc says now."""
    root, data = stack["root"], stack["data"]
    backing = data / "stack-volumes-nfs-backing-file"
    record = json.loads((data / "stackmagic" / "cinder-backing.json").read_text())
    assert len(record["mounts"]) == 3 and mounts_under(root)
    pids = [p for s in engine_for(stack["localrc"]).status() if s.pid for p in tree(s.pid)]
    localrc = stack["localrc"]
    localrc.write_text(localrc.read_text() + "disable_service c-api c-sch c-vol c-bak\n")
    assert not {"c-api", "c-vol"} & set(engine_for(stack["localrc"]).config.enabled)
    engine_for(stack["localrc"]).unstack(all=True)
    assert not mounts_under(root)
    attached = lambda: any(cb._loop_file(d) == str(backing) for d in record["loops"])  # noqa: E731
    assert wait_until(lambda: not attached(), 30)     # the kernel detaches a loop device lazily
    assert wait_until(lambda: not [p for p in pids if alive(p)] and not ours(root), 30), ours(root)
    assert backing.is_file()                         # the volumes' data stays for the next stack
    assert not (data / "stackmagic" / "cinder-backing.json").exists()
    # clean removes the backing file (the fixture's clean after this is then a no-op)
    engine_for(stack["localrc"]).clean()
    assert not backing.exists()


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
