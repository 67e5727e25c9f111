"""Nova for real (catalog/nova.py), on the session's shared default cloud (tests/default_cloud.py:
devstack's default set, its superconductor layout, libvirt with QEMU): every Nova service
healthy, Nova's own view of its services, the compute node in Placement and mapped in cell1,
devstack's flavors, the noVNC page and its websocket, the compute's config, no password in a
step log. Plans alone show that SQLite is refused with the reason, what the cells layouts and
drivers run (VIRT_DRIVER=fake included) and the libvirt config.

Guests, their SSH, volumes and a killed compute agent: test_compute, on the same cloud.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from stackmagic.samples import sandbox
from tests.conftest import engine_for

pytestmark = pytest.mark.slow

NOVA = "n-api n-api-meta n-cond n-sch n-cpu n-novnc"
WINDOWS = {"n-api", "n-api-meta", "n-super-cond", "n-cond-cell1", "n-sch", "n-cpu", "n-novnc-cell1"}


def write_conf(root: Path, *extra: str, services: str = NOVA) -> Path:
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]", *sandbox(root, "nova"),
        "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True", "VIRT_DRIVER=fake",
        "disable_all_services", f"enable_service key placement-api rabbit {services}",
        *extra]) + "\n")
    return conf


@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud as test_compute leaves it (devstack's default set)."""
    engine = engine_for(default_cloud["conf"])
    return {"root": default_cloud["root"], "conf": default_cloud["conf"], "engine": engine,
            "services": {s.service: s for s in engine.status()}}


def checks(engine) -> dict:
    from stackmagic.verify import verify

    return {c.name: c for c in verify(engine, guest=False)}    # guests: test_compute


def nova_manage(stack, *args: str) -> str:
    """nova-manage of the stack, reading every URL from nova.conf (output has no password)."""
    data = stack["root"] / "data"
    return subprocess.run([str(data / "venv" / "bin" / "nova-manage"), "--config-file",
                           str(data / "etc" / "nova" / "nova.conf"), *args],
                          capture_output=True, text=True, check=True, timeout=120).stdout


def test_every_service_is_healthy(stack):
    services = stack["services"]
    assert WINDOWS <= set(services), sorted(services)
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    # the RPC services are healthy by Nova's own record of them, reported since this start
    assert "up" in services["n-cpu"].detail and "nova-compute" in services["n-cpu"].detail
    assert "nova-conductor" in services["n-cond-cell1"].detail


def test_nova_counts_its_services_up(stack):
    found = checks(stack["engine"])
    assert all(c.ok for c in found.values()), {n: c.data for n, c in found.items() if not c.ok}
    host = socket.gethostname()
    rows = found["compute_services"].data["compute_services"]
    up = sorted(r["binary"] for r in rows if r["host"] == host and r["state"] == "up")
    # the super conductor (cell0) and the cell1 conductor each have their record
    assert up == ["nova-compute", "nova-conductor", "nova-conductor", "nova-scheduler"], rows
    assert [h["name"] for h in found["hypervisors"].data["hypervisors"]] == [host]


def test_compute_node_is_in_placement_and_mapped_in_cell1(stack):
    from tests.conftest import wait_until

    # nova-compute records itself before it reports its inventory: the provider follows
    assert wait_until(lambda: socket.gethostname() in checks(stack["engine"])[
        "resource_providers"].data.get("resource_providers", []), timeout=90)
    hosts = nova_manage(stack, "cell_v2", "list_hosts")
    line = next(row for row in hosts.splitlines() if f" {socket.gethostname()} " in row)
    assert "cell1" in line, hosts
    cells = nova_manage(stack, "cell_v2", "list_cells")
    assert " cell0 " in cells and " cell1 " in cells


def test_devstack_flavors_exist(stack):
    names = set(checks(stack["engine"])["flavors"].data["flavors"])
    assert names >= {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge",
                     "cirros256", "ds512M", "ds1G", "ds2G", "ds4G"}


def test_novnc_page_and_its_websocket(stack):
    services = stack["services"]
    page_url = services["n-novnc-cell1"].endpoint
    with urllib.request.urlopen(page_url, timeout=10) as resp:   # noqa: S310 - loopback
        html = resp.read().decode()
    assert "<title>noVNC</title>" in html and "rfb.js" in html
    base = page_url.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/core/rfb.js", timeout=10) as resp:  # noqa: S310
        assert b"export default class RFB" in resp.read()
    # the websocket upgrade noVNC makes: websockify answers 101 with the right accept key (the
    # made-up token is refused afterwards, so nothing is proxied anywhere)
    host, port = base.split("//", 1)[1].split(":")
    key = base64.b64encode(b"stackmagic-nova-1").decode()
    request = (f"GET /websockify?token=made-up HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: http://{host}:{port}\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = sock.recv(4096).decode(errors="replace")
    accept = base64.b64encode(hashlib.sha1(  # noqa: S324 - the websocket protocol's hash
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert answer.startswith("HTTP/1.1 101"), answer
    assert f"Sec-WebSocket-Accept: {accept}" in answer, answer


def test_the_compute_config_has_no_database_and_its_cells_bus(stack):
    from stackmagic import ini

    etc = stack["root"] / "data" / "etc" / "nova"
    cpu = etc / "nova-cpu.conf"
    assert ini.iniget(cpu, "database", "connection") is None
    assert ini.iniget(cpu, "api_database", "connection") is None
    assert ini.iniget(cpu, "DEFAULT", "compute_driver") == "libvirt.LibvirtDriver"
    # compute and the cell1 conductor on the cell's vhost, the rest on the default one
    assert ini.iniget(cpu, "DEFAULT", "transport_url").endswith("/nova_cell1")
    assert ini.iniget(etc / "nova_cell1.conf", "DEFAULT", "transport_url").endswith("/nova_cell1")
    assert ini.iniget(etc / "nova.conf", "DEFAULT", "transport_url").endswith("/")
    assert ini.iniget(etc / "nova.conf", "database", "connection").split("?")[0].endswith("/nova_cell0")
    for conf in etc.glob("*.conf"):
        assert conf.stat().st_mode & 0o077 == 0, conf        # they hold passwords


def test_no_password_in_a_step_log(stack):
    settings = engine_for(stack["conf"]).config.settings
    secrets = [p for p in (settings.database_password, settings.service_password,
                           settings.admin_password, settings.rabbit_password) if p]
    logs = list((stack["root"] / "logs").rglob("*.log"))
    assert any("nova-manage" in log.read_text() for log in logs)
    for log in logs:
        text = log.read_text(errors="replace")
        assert not [p for p in secrets if p in text], log


# -- plans (no stack) ----------------------------------------------------------------------
def plan_of(tmp_path: Path, *extra: str, services: str = NOVA):
    return engine_for(write_conf(tmp_path, *extra, services=services)).plan()


def test_sqlite_is_refused_with_the_reason(tmp_path):
    from stackmagic.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        plan_of(tmp_path, "DATABASE_TYPE=sqlite")
    message = str(err.value)
    assert "DATABASE_TYPE=mysql" in message and "DATABASE_TYPE=postgresql" in message
    assert "one writer" in message
    assert not (tmp_path / "data").exists()         # nothing was made


def test_cells_layouts_and_order(tmp_path):
    (tmp_path / "libvirt").mkdir()
    plan = plan_of(tmp_path)
    starts = {s.process.service: s for s in plan if s.process}
    assert WINDOWS <= set(starts)
    assert {"start n-super-cond", "start n-cond-cell1"} <= set(starts["n-cpu"].deps)
    libvirt = plan_of(tmp_path / "libvirt", "VIRT_DRIVER=libvirt")
    cpu = next(s for s in libvirt if s.process and s.process.service == "n-cpu")
    assert "start libvirtd" in cpu.deps            # n-cpu's hypervisor need, met by libvirt
    assert not any(s.process.service == "libvirtd" for s in plan if s.process)    # fake: none
    (tmp_path / "single").mkdir()
    single = plan_of(tmp_path / "single", "CELLSV2_SETUP=singleconductor")
    names = {s.process.service for s in single if s.process}
    assert {"n-cond", "n-novnc"} <= names and not {"n-super-cond", "n-cond-cell1"} & names


def test_a_data_dir_qemu_cannot_pass_through_is_refused_at_configure(tmp_path):
    """Under pytest's 0700 tmp the guests' disks would be out of QEMU's reach: said before any
    guest fails to boot, with the fix."""
    from stackmagic.errors import ConfigError

    engine = engine_for(write_conf(tmp_path, "VIRT_DRIVER=libvirt", "LIBVIRT_TYPE=qemu",
                                   *(f"{p}_PASSWORD=made-up" for p in ("DATABASE", "RABBIT", "SERVICE")),
                                   services=NOVA.replace(" n-novnc", "") + " ovsdb-server ovs-vswitchd"))
    engine.plan()
    nova = next(p for p in engine.ctx.projects if p.name == "nova")
    with pytest.raises(ConfigError, match=r"cannot pass through .*chmod o\+x"):
        nova.configure(engine.ctx)


@pytest.fixture
def traversable(tmp_path):
    """A directory QEMU's user can pass through (pytest's own tmp is 0700: configure refuses it)."""
    root = Path(tempfile.mkdtemp(prefix="sm-novaconf-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_libvirt_compute_config(traversable):
    """nova-cpu.conf for VIRT_DRIVER=libvirt, from catalog/libvirt.py's decision (nothing started)."""
    from stackmagic import ini

    engine = engine_for(write_conf(traversable, "VIRT_DRIVER=libvirt", "LIBVIRT_TYPE=qemu",
                                   *(f"{p}_PASSWORD=made-up" for p in ("DATABASE", "RABBIT", "SERVICE")),
                                   services=NOVA.replace(" n-novnc", "") + " ovsdb-server ovs-vswitchd"))
    plan = engine.plan()
    cpu_start = next(s for s in plan if s.process and s.process.service == "n-cpu")
    assert {"start libvirtd", "start ovs-vswitchd"} <= set(cpu_start.deps)
    nova = next(p for p in engine.ctx.projects if p.name == "nova")
    nova.configure(engine.ctx)
    cpu = nova.cpu_conf(engine.ctx)
    get = lambda section, key: ini.iniget(cpu, section, key)  # noqa: E731
    assert get("DEFAULT", "compute_driver") == "libvirt.LibvirtDriver"
    assert (get("libvirt", "virt_type"), get("libvirt", "cpu_mode"), get("libvirt", "cpu_models")) == (
        "qemu", "custom", "Nehalem")
    assert get("workarounds", "libvirt_disable_apic") == "true"     # devstack, for qemu
    assert get("database", "connection") is None
    assert get("os_vif_ovs", "ovsdb_connection").startswith("tcp:127.0.0.1:")
    helper = get("vif_plug_ovs_privileged", "helper_command")
    assert helper.split()[0].endswith("/venv/bin/privsep-helper") and str(cpu) in helper


def test_tempest_options(tmp_path):
    engine = engine_for(write_conf(tmp_path, "VIRT_DRIVER=libvirt", services=NOVA + " tempest"))
    engine.plan()
    nova = next(p for p in engine.ctx.projects if p.name == "nova")
    opts = {(section, key): value for section, key, value in nova.tempest_options(engine.ctx)}
    assert (opts[("compute", "flavor_ref")], opts[("compute", "flavor_ref_alt")]) == ("42", "84")
    assert opts[("compute", "max_microversion")] == "latest"
    assert ("compute", "min_microversion") not in opts
    assert opts[("compute-feature-enabled", "vnc_console")] == "true"
    assert opts[("compute-feature-enabled", "resize")] == "true"
    assert opts[("enforce_scope", "nova")] == "true"
    # tempest's m1.nano and m1.micro are made with the flavors when tempest is enabled
    assert {"m1.nano", "m1.micro"} <= {f["name"] for f in nova.flavors(engine.ctx)}
    fake = engine_for(write_conf(tmp_path, "DEFAULT_INSTANCE_TYPE=m1.tiny"))
    fake.plan()
    nova = next(p for p in fake.ctx.projects if p.name == "nova")
    opts = dict(((s, k), v) for s, k, v in nova.tempest_options(fake.ctx))
    assert (opts[("compute", "flavor_ref")], opts[("compute", "flavor_ref_alt")]) == ("1", "d1")
    # no VNC server behind the fake driver's console
    assert ("compute-feature-enabled", "vnc_console") not in opts


def test_novas_services_restart_when_neutron_is_made_anew(tmp_path):
    """They cache what Neutron's API offers: their start steps key on Neutron's last step before
    its own start (a layout switch re-runs it), as they do on Nova's own."""
    conf = tmp_path / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(tmp_path, "nova"),
                               "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True", ""]))
    plan = engine_for(conf).plan()
    steps = {s.id: s for s in plan.steps}
    for service in ("n-cpu", "n-api", "n-sch"):
        assert "init neutron" in steps[f"start {service}"].key_deps, steps[f"start {service}"].key_deps
    assert "init neutron" not in steps["start key"].key_deps
