"""A guest you can reach, for real (issues 10 and 12): devstack's default set from an empty
localrc (plus MIRROR_FROM_PYPI) — Keystone, Glance, Placement, RabbitMQ, MariaDB, etcd3, dstat,
Nova on libvirt/QEMU, Open vSwitch and OVN, Neutron ML2/OVN, Cinder, Horizon, Tempest — stacked
once for this module, then:

- every service healthy, from its real state (compute services up, the compute node in
  Placement, the OVN agent alive, the volume backend's pool listed);
- ``verify``'s guest: a server boots the image stackmagic built, shows its banner and hostname
  on the console, answers ping and SSH through a floating IP from the provider namespace, and
  reports its own hostname; a Cinder volume attached to it shows up inside it as a new disk;
- SIGKILL of n-cpu is seen as down; the next ``stack`` restarts only it; the running guest
  survives and still answers SSH;
- tempest.conf gets the compute, network and validation sections;
- ``unstack --all``, with a guest still running, leaves no qemu, libvirtd, rabbitmq, ovs, ovn,
  haproxy or nova/neutron process, no libvirt domain, no namespace, and the host's addresses
  and routes as they were.

Root only; slow (a cold stack of this size takes minutes). Uses the machine's libvirtd and
Open vSwitch database socket: nothing else may run them meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from stackmagic.process_info import alive, tree
from stackmagic.samples import sample_path, sandbox
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]

#: processes that must not outlive `unstack --all` (by /proc/<pid>/comm prefix)
DAEMONS = ("qemu-system", "libvirtd", "virtlogd", "beam.smp", "epmd", "ovsdb-server",
           "ovs-vswitchd", "ovn-northd", "ovn-controller", "haproxy", "nova-", "neutron-",
           "privsep-helper", "gunicorn")


def host_network() -> dict:
    """The host namespace's addresses and routes (what the stack must never touch)."""
    def ip(*args):
        return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True).stdout)
    addrs = sorted((link["ifname"], a["local"], a["prefixlen"]) for link in ip("addr")
                   for a in link.get("addr_info", []))
    routes = [{k: r.get(k) for k in ("dst", "gateway", "dev")} for r in ip("route")]
    routes6 = [{k: r.get(k) for k in ("dst", "gateway", "dev")} for r in ip("-6", "route")]
    return {"addresses": addrs, "routes": routes, "routes6": routes6}


def our_processes(pids_before: set[int], names: tuple[str, ...] = DAEMONS) -> dict[int, str]:
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in pids_before:
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(names) and alive(int(proc.name)):
            found[int(proc.name)] = comm
    return found


def domains() -> set[str]:
    """The domains libvirtd keeps defined on this machine (its files outlive the daemon)."""
    return {p.stem for p in Path("/etc/libvirt/qemu").glob("*.xml")}


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    # not under pytest's 0700 tmp: qemu runs as libvirt-qemu and must reach the instance disks
    root = Path(tempfile.mkdtemp(prefix="sm-compute-"))
    root.chmod(0o755)
    conf = root / "local.conf"
    # devstack's default set (an empty localrc), sources from PyPI
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, "compute"), "MIRROR_FROM_PYPI=True", ""]))
    before = {"network": host_network(), "namespaces": namespaces(), "domains": domains(),
              "pids": {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}}
    engine = Engine(load_config(conf))
    try:
        summary = engine.stack()
        yield {"conf": conf, "root": root, "summary": summary, "before": before}
    finally:
        Engine(load_config(conf)).unstack(all=True)
        Engine(load_config(conf)).clean()
        sock = load_config(conf).settings["TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def engine_for(cloud):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    return Engine(load_config(cloud["conf"]))


def test_every_service_is_healthy(cloud):
    status = {s.service: s for s in engine_for(cloud).status()}
    unhealthy = {n: s.detail for n, s in status.items() if not s.healthy}
    assert not unhealthy
    assert {"n-api", "n-cpu", "n-sch", "q-svc", "q-ovn-agent", "ovn-controller", "rabbit",
            "libvirtd", "c-api", "c-sch", "c-vol", "horizon", "etcd3", "dstat", "mysql"} <= set(status)


def test_a_guest_answers_ssh_through_its_floating_ip(cloud):
    from stackmagic.verify import verify

    found = {c.name: c for c in verify(engine_for(cloud))}
    failed = {n: c.data for n, c in found.items() if not c.ok}
    assert not failed
    stages = {st["stage"]: st for st in found["guest"].data["stages"]}
    assert {"active", "console", "floating_ip", "ping", "ssh", "volume"} <= set(stages)
    assert stages["volume"]["device"].startswith("vd")
    assert stages["ssh"]["hostname"].split(".")[0] == found["guest"].data["server"]
    agents = found["agents"].data["agents"]
    assert agents and all(a["is_alive"] for a in agents)


def test_tempest_logs_in_to_a_guest_from_the_provider_namespace(cloud):
    """Tempest's first scenario, run where the guests are reachable (the APIs answer there too)."""
    from stackmagic import provider

    engine = engine_for(cloud)
    data = engine.config.settings.data_dir
    done = provider.run(engine.ctx, [data / "venv-tempest" / "bin" / "tempest", "run", "--regex",
                                     r"^tempest\.scenario\.test_server_basic_ops"],
                        cwd=data / "tempest", capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " - Passed: 1" in done.stdout


def test_killed_compute_agent_is_restored_and_the_guest_survives(cloud):
    from stackmagic import guestcheck

    engine = engine_for(cloud)
    kept = guestcheck.run(engine, keep=True)
    assert kept["ok"], kept
    try:
        qemu = kept["qemu_pid"]
        status = {s.service: s for s in engine.status()}
        victim = [p for p in tree(status["n-cpu"].pid)[1:]
                  if Path(f"/proc/{p}/comm").read_text().strip().startswith("nova")]
        assert victim
        for pid in victim:
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not any(alive(p) for p in victim))
        # its window ends a moment after it (the launcher passes its last output on first)
        assert wait_until(lambda: not engine_for(cloud).tmux.is_running("n-cpu"), timeout=10)
        down = {s.service: s for s in engine_for(cloud).status()}
        assert not down["n-cpu"].running and not down["n-cpu"].healthy
        again = engine_for(cloud).stack()
        assert [r.step for r in again.ran] == ["start n-cpu"]
        assert alive(qemu), "the guest's qemu died with nova-compute"
        assert guestcheck.reach(engine_for(cloud), kept)["ok"]
    finally:
        guestcheck.delete(engine_for(cloud), kept)


def test_horizon_shows_the_guest_and_its_volume(cloud):
    """demo logs in to the dashboard in Debian's Chromium and finds the server the test booted
    on the instances page, its volume on the volumes page; a screenshot is kept."""
    from playwright.sync_api import sync_playwright

    from stackmagic import guestcheck
    from stackmagic.passwords import with_passwords
    from tests.browser.page import CHROMIUM, FLAGS
    from tests.test_horizon import ARTIFACTS

    engine = engine_for(cloud)
    settings = with_passwords(engine.config, engine.config.settings.data_dir / "stackmagic",
                              create=False).settings
    url = f"http://127.0.0.1:{settings.int('HORIZON_PORT')}/dashboard/"
    kept = guestcheck.run(engine, keep=True)
    assert kept["ok"], kept
    demo = subprocess.run([str(engine.venv.python), "-c", "import openstack, sys; print(openstack.connect("
                           "cloud='devstack-admin').identity.find_project('demo', ignore_missing=False).id)"],
                          env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(engine.config.settings.path("CLOUDS_YAML"))},
                          capture_output=True, text=True, check=True).stdout.strip()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            try:
                page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 800})
                page.goto(url)
                page.fill("#id_username", "demo")
                page.fill("#id_password", settings.admin_password)
                with page.expect_navigation():
                    page.click("#loginBtn")
                # demo has no default project (as in devstack): Horizon starts in whichever of
                # demo's projects Keystone lists first; the guest is in "demo"
                page.goto(f"{url}auth/switch/{demo}/?next=/dashboard/project/")
                for panel, table in (("project/instances/", "table#instances"),
                                     ("project/volumes/", "table#volumes")):
                    page.goto(url + panel)
                    page.wait_for_load_state("networkidle")
                    if "project/instances/" in panel:
                        page.screenshot(path=str(ARTIFACTS / "horizon-default-set-instances.png"))
                    assert kept["server"] in page.locator(table).inner_text(), panel
            finally:
                browser.close()
    finally:
        guestcheck.delete(engine_for(cloud), kept)


def test_tempest_knows_compute_network_and_validation(cloud):
    from stackmagic import ini

    conf = engine_for(cloud).config.settings.path("TEMPEST_CONFIG")
    for section, key in (("compute", "image_ref"), ("compute", "flavor_ref"),
                         ("network", "public_network_id"), ("validation", "image_ssh_user"),
                         ("validation", "connect_method"), ("service_available", "nova"),
                         ("dashboard", "dashboard_url")):
        assert ini.iniget(conf, section, key), (section, key)
    assert ini.iniget(conf, "service_available", "neutron") == "true"


def test_unstack_leaves_nothing(cloud):
    from stackmagic import guestcheck

    kept = guestcheck.run(engine_for(cloud), keep=True)     # a guest still runs at unstack
    assert kept["ok"], kept
    assert domains() - cloud["before"]["domains"]
    engine_for(cloud).unstack(all=True)
    before = cloud["before"]
    # devstack's cleanup_nova: the guest is destroyed and undefined, or a later stack's
    # nova-compute would refuse to start beside it
    assert domains() <= before["domains"]
    assert wait_until(lambda: not our_processes(before["pids"]), timeout=60), our_processes(before["pids"])
    assert namespaces() <= before["namespaces"]
    assert host_network() == before["network"]
    # Cinder's backing file: no mount and no loop device of this stack left
    assert str(cloud["root"]) not in Path("/proc/mounts").read_text()
    loops = subprocess.run(["losetup", "-l", "-n", "-O", "BACK-FILE"], capture_output=True, text=True).stdout
    assert str(cloud["root"]) not in loops
