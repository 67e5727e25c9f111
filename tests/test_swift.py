"""Swift for real (catalog/swift.py), on the session's shared cloud at its heat stage
(tests/default_cloud.py: test_everything stacks the default set with the four Swift services;
sources mirrored from PyPI sdists): every service is healthy, the object-store endpoint and
accounts are devstack's, the demo user stores an object through openstacksdk and reads it back
byte for byte, the object's file lies in the ring's device directory (on the loop-mounted drive
where the probe chose one), and swift.conf keeps SWIFT_HASH out of every log. test_heat checks
that a second stack runs no step; test_compute's unstack (after a localrc that no longer
enables Swift) that no process and no mount is left, and its clean that the drive goes.

The plan-level tests (no service is started) run anywhere: what the plan says of the drive and
the rings, SWIFT_HASH generated once, kept and never shown, and bad values refused before
anything is built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackmagic.catalog import loopback
from stackmagic.catalog.swift import Swift
from stackmagic.errors import ConfigError, StackError
from stackmagic.samples import sandbox
from tests.conftest import engine_for, sdk_connection, wait_until
from tests.default_cloud import on_stage

#: the slow tests check the shared cloud at the stage that runs Swift
pytestmark = pytest.mark.cloud_stage("heat")

SERVICES = "key s-proxy s-object s-container s-account"
HERE = Path(__file__).parent
HASH = "not-to-be-seen-4f1d2c"


def write_localrc(root: Path, *extra: str, services: str = SERVICES) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "swift"), "MIRROR_FROM_PYPI=True", "disable_all_services",
        f"enable_service {services}", *extra]) + "\n")
    return localrc


def notes(engine) -> list[str]:
    return [n for p in engine.projects()[0] for n in p.plan_notes(engine.ctx) if n.startswith("swift:")]


def context(localrc: Path):
    from stackmagic.config import load_config
    from stackmagic.context import Context

    return Context(load_config(localrc), state=None, tmux=None, venv=None)  # type: ignore[arg-type]


# -- plan level: nothing runs ----------------------------------------------------------------
def test_the_swift_group_enables_the_four_and_they_run_here(tmp_path):
    from stackmagic.catalog import runnable_services

    engine = engine_for(write_localrc(tmp_path, services="key swift"))
    names = [s.id for s in engine.plan().steps]
    for service in ("s-proxy", "s-object", "s-container", "s-account", "s-container-sync"):
        assert runnable_services()[service] == "swift"
        assert f"start {service}" in names
    # the proxy starts after the storage servers; the accounts after Keystone's
    steps = {s.id: s for s in engine.plan().steps}
    assert {"start s-object", "start s-container", "start s-account"} <= set(steps["start s-proxy"].deps)
    assert "accounts keystone" in steps["accounts swift"].deps


def test_the_plan_says_where_the_objects_live_and_why(tmp_path):
    engine = engine_for(write_localrc(tmp_path, "SWIFT_LOOPBACK_DISK_SIZE=2G"))
    fs, why = loopback.probe(("xfs", "ext4"))
    (note,) = notes(engine)
    assert why in note and "2^9 partitions, 1 replica(s)" in note
    if fs:
        assert f"2G sparse {fs} image loop-mounted at {tmp_path}/data/swift/drives/sdb1" in note
        assert engine.plan().steps[0].id == "packages"      # xfsprogs or e2fsprogs
    else:
        assert "plain directory" in note
    (off,) = notes(engine_for(write_localrc(tmp_path, "SWIFT_USE_LOOPBACK=False", "SWIFT_REPLICAS=3")))
    assert off.startswith("swift: objects in a plain directory") and "SWIFT_USE_LOOPBACK=False" in off
    assert "3 replica(s) on 3 device(s)" in off
    assert sorted(p.name for p in tmp_path.iterdir()) == ["localrc"]       # plan builds nothing


def test_the_disk_size_defaults_follow_devstack(tmp_path):
    assert Swift().disk_size_text(context(write_localrc(tmp_path))) == "1G"
    assert Swift().disk_size_text(context(write_localrc(tmp_path, services=SERVICES + " g-api"))) == "2G"
    assert Swift().disk_size_text(context(write_localrc(tmp_path, services=SERVICES + " g-api tempest"))) == "6G"


@pytest.mark.parametrize("setting, value, message", [
    ("SWIFT_REPLICAS", "0", "SWIFT_REPLICAS='0' is not a whole number 1 or more"),
    ("SWIFT_REPLICAS", "two", "SWIFT_REPLICAS='two' is not a whole number 1 or more"),
    ("SWIFT_REPLICAS", "1.5", "SWIFT_REPLICAS='1.5' is not a whole number"),
    ("SWIFT_PARTITION_POWER_SIZE", "40", "is not a whole number from 1 to 32"),
    ("SWIFT_LOOPBACK_DISK_SIZE", "lots", "SWIFT_LOOPBACK_DISK_SIZE='lots' is not a size"),
    ("SWIFT_MAX_FILE_SIZE", "-5", "SWIFT_MAX_FILE_SIZE='-5' is not a whole number 1 or more"),
])
def test_bad_values_are_refused_before_anything_is_built(tmp_path, setting, value, message):
    localrc = write_localrc(tmp_path, f"{setting}={value}")
    engine = engine_for(localrc)
    with pytest.raises(ConfigError) as err:
        engine.plan()
    assert message in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["localrc"]
    assert any(message in n for n in notes(engine))              # plan shows it too
    # the CLI says it and exits 2, building nothing of a stack
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "stack", "-c", str(localrc)],
                          capture_output=True, text=True, timeout=120, cwd=HERE.parent)
    assert proc.returncode == 2 and setting in proc.stderr, proc.stderr
    assert not (tmp_path / "dest").exists() and not (tmp_path / "data" / "swift").exists()


@pytest.mark.skipif(loopback.probe(("xfs",))[0] != "xfs", reason="XFS on a loop device is not chosen here")
def test_a_drive_too_small_for_xfs_is_refused_with_the_smallest_that_works(tmp_path):
    engine = engine_for(write_localrc(tmp_path, "SWIFT_LOOPBACK_DISK_SIZE=100M"))
    with pytest.raises(ConfigError, match=r"100M is too small for the xfs filesystem.*300M"):
        engine.plan()
    # a plain directory has no size to refuse
    engine_for(write_localrc(tmp_path, "SWIFT_LOOPBACK_DISK_SIZE=100M", "SWIFT_USE_LOOPBACK=False")).plan()


def test_swift_hash_is_made_once_kept_private_and_never_shown(tmp_path):
    from stackmagic.config import load_config
    from stackmagic.passwords import with_passwords

    localrc = write_localrc(tmp_path)
    stack_dir = tmp_path / "data" / "stackmagic"
    first = with_passwords(load_config(localrc), stack_dir, create=True).settings["SWIFT_HASH"]
    again = with_passwords(load_config(localrc), stack_dir, create=True).settings["SWIFT_HASH"]
    assert first and first == again
    saved = stack_dir / "passwords"
    assert f"SWIFT_HASH={first}\n" in saved.read_text() and (saved.stat().st_mode & 0o777) == 0o600
    # a stack without Swift gets none (as stack.sh reads it only for Swift)
    other = tmp_path / "other"
    other.mkdir()
    keystone_only = with_passwords(load_config(write_localrc(other, services="key")), other / "state", create=True)
    assert "SWIFT_HASH" not in keystone_only.settings and "SWIFT_HASH" not in (other / "state" / "passwords").read_text()

    # one set in the localrc is masked wherever settings are shown
    localrc = write_localrc(tmp_path, f"SWIFT_HASH={HASH}")
    config = load_config(localrc)
    assert config.settings.masked()["SWIFT_HASH"] == "********" and HASH not in repr(config.settings)
    for args in (["plan", "-c", str(localrc)], ["plan", "-c", str(localrc), "--json"]):
        proc = subprocess.run([sys.executable, "-m", "stackmagic", *args], capture_output=True,
                              text=True, timeout=120, cwd=HERE.parent)
        assert proc.returncode == 0, proc.stderr
        assert "SWIFT_HASH" in proc.stdout and HASH not in proc.stdout + proc.stderr
    # ... and in a message about it
    bad = write_localrc(tmp_path, f"SWIFT_HASH=$'{HASH}\\nsecond-line'")
    with pytest.raises(ConfigError) as err:
        engine_for(bad).plan()
    assert "SWIFT_HASH contains a line break" in str(err.value) and HASH not in str(err.value)


def test_the_proxy_pipeline_is_devstacks(tmp_path):
    sample = ("catch_errors gatekeeper healthcheck proxy-logging cache listing_formats container_sync "
              "bulk tempurl ratelimit tempauth copy container-quotas account-quotas slo dlo "
              "versioned_writes symlink proxy-logging proxy-server")
    got = Swift().pipeline(context(write_localrc(tmp_path)), sample).split()
    assert got[got.index("ratelimit") + 1:got.index("copy")] == [
        "crossdomain", "authtoken", "keystoneauth", "tempauth", "formpost", "staticweb"]
    assert got[-1] == "proxy-server" and got.count("tempauth") == 1
    alone = Swift().pipeline(context(write_localrc(tmp_path, services="swift")), sample).split()
    assert "authtoken" not in alone and "keystoneauth" not in alone and "tempauth" in alone
    last = Swift().pipeline(context(write_localrc(tmp_path, "SWIFT_EXTRAS_MIDDLEWARE_LAST=ceilo")), sample)
    assert last.endswith("proxy-logging ceilo proxy-server")


@pytest.mark.parametrize("value, paste, plain", [
    ("pa%ss$word", "pa%ss$word", "pa%%ss$word"),      # Swift's paste loader leaves a lone % alone
    ("p%(x)s %y", "p%%(x)s %%y", "p%%(x)s %%y"),      # ... but interpolates a value with %(
    (True, "true", "true"),
])
def test_values_are_written_as_swifts_config_readers_read_them(value, paste, plain):
    from stackmagic.catalog.swift import paste_value, plain_value

    assert paste_value(value) == paste and plain_value(value) == plain


def test_tempest_hears_about_object_storage_as_lib_tempest_tells_it(tmp_path):
    def options(*extra, services=SERVICES):
        return {k: v for s, k, v in Swift().tempest_options(context(write_localrc(tmp_path, *extra, services=services)))
                if s == "object-storage-feature-enabled"}

    # swift-container-sync runs (the group name enables it): every API, as devstack
    assert options(services="key swift") == {"discoverable_apis": "all", "container_sync": "true"}
    # without it its middleware is left out of what the user names, so Tempest skips its test
    named = "OBJECT_STORAGE_API_EXTENSIONS='tempurl, container_sync,slo'"
    assert options(named) == {"discoverable_apis": "tempurl,slo", "container_sync": "false"}
    assert options(named, "DISABLE_OBJECT_STORAGE_API_EXTENSIONS=slo", services="key swift") == \
        {"discoverable_apis": "tempurl,container_sync", "container_sync": "true"}
    # and out of what the proxy lists, which is asked for when the user names nothing: here no
    # proxy runs, which is said
    with pytest.raises(StackError, match=r"cannot read http://127\.0\.0\.1:\d+/info \(.*\): Swift's proxy lists its capabilities"):
        options()


# -- a real stack -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud at its heat stage."""
    return on_stage(default_cloud, "s-proxy", "s-object", "s-container", "s-account")


@pytest.fixture(scope="module")
def demo(stack):
    """openstacksdk as devstack's demo user (clouds.yaml's devstack)."""
    with sdk_connection(stack["root"], "devstack") as conn:
        yield conn


@pytest.mark.slow
def test_every_swift_service_is_healthy(stack):
    services = {s.service: s for s in stack["engine"].status()}
    assert {"s-proxy", "s-object", "s-container", "s-account"} <= set(services)
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick


@pytest.mark.slow
def test_the_object_store_endpoint_is_devstacks(stack, demo):
    port = stack["engine"].config.settings.int("SWIFT_DEFAULT_BIND_PORT")
    # the demo user's storage URL: the public endpoint with its project filled in
    assert demo.object_store.get_endpoint() == f"http://127.0.0.1:{port}/v1/AUTH_{demo.current_project_id}"
    with sdk_connection(stack["root"], "devstack-admin") as admin:
        (service,) = [s for s in admin.identity.services() if s.type == "object-store"]
        urls = {e.interface: e.url for e in admin.identity.endpoints(service_id=service.id)}
        assert urls == {"public": f"http://127.0.0.1:{port}/v1/AUTH_$(project_id)s",
                        "admin": f"http://127.0.0.1:{port}"}
        swift_user = admin.identity.find_user("swift")
        roles = {a.role["id"] for a in admin.identity.role_assignments(user_id=swift_user.id)}
        names = {admin.identity.get_role(r).name for r in roles}
        assert {"admin", "service"} <= names
        assert admin.identity.find_role("ResellerAdmin") is not None


@pytest.mark.slow
def test_an_object_goes_in_comes_back_and_lies_on_the_rings_device(stack, demo):
    data = os.urandom(300_000) + b"stackmagic swift"
    store = demo.object_store
    store.create_container(name="sm-test")
    store.upload_object(container="sm-test", name="blob.bin", data=data)
    assert store.download_object("blob.bin", container="sm-test") == data
    assert [o.name for o in store.objects("sm-test")] == ["blob.bin"]
    assert "sm-test" in [c.name for c in store.containers()]

    # its file: a .data under the device the object ring names, node 1's sdb1
    device = stack["data"] / "swift" / "1" / "sdb1"
    files = [p for p in (device / "objects").rglob("*.data") if p.read_bytes() == data]
    assert len(files) == 1, list((device / "objects").rglob("*"))
    fs, _ = loopback.probe(("xfs", "ext4"))
    drive = stack["data"] / "swift" / "drives" / "sdb1"
    if fs:          # on the loop device that serves the image
        record = json.loads((stack["data"] / "stackmagic" / "swift-disk.json").read_text())
        (loop,) = record["loops"]
        assert record["mounts"] == [str(drive)]
        assert os.stat(files[0]).st_dev == os.stat(loop).st_rdev
    else:
        assert os.stat(files[0]).st_dev == os.stat(stack["data"]).st_dev

    store.delete_object("blob.bin", container="sm-test")
    store.delete_container("sm-test")
    assert "sm-test" not in [c.name for c in store.containers()]
    assert wait_until(lambda: not [p for p in (device / "objects").rglob("*.data") if p.read_bytes() == data], 10)


@pytest.mark.slow
def test_tempest_may_test_what_the_proxy_lists_but_container_sync(stack):
    """No swift-container-sync here: Tempest's container-sync middleware test is skipped (it
    would wait ten minutes for a sync), every other middleware the proxy lists stays testable."""
    from stackmagic import ini

    engine = stack["engine"]
    conf = engine.config.settings.path("TEMPEST_CONFIG")
    apis = ini.iniget(conf, "object-storage-feature-enabled", "discoverable_apis").split(",")
    listed = Swift().capabilities(engine.ctx)
    assert "container_sync" in listed and {"tempurl", "formpost", "staticweb", "slo"} <= set(listed)
    assert apis == [a for a in listed if a != "container_sync"]


@pytest.mark.slow
def test_swift_conf_keeps_the_hash_secret(stack):
    engine = stack["engine"]
    conf = stack["data"] / "etc" / "swift"
    secret = (stack["data"] / "stackmagic" / "passwords").read_text().split("SWIFT_HASH=")[1].split()[0]
    from stackmagic import ini

    assert ini.iniget(conf / "swift.conf", "swift-hash", "swift_hash_path_suffix") == secret
    for path in conf.rglob("*.conf"):
        assert (path.stat().st_mode & 0o777) == 0o600, path
    logs = [p for p in (stack["root"] / "logs").rglob("*.log")]
    assert logs and not [p for p in logs if secret in p.read_text(errors="replace")]
    assert secret not in json.dumps(engine.state.steps, default=str)
