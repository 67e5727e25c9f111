"""A guest you can reach, for real (issues 10 and 12), on devstack's default set from an empty
localrc (plus MIRROR_FROM_PYPI, and c-bak for test_cinder) — Keystone, Glance, Placement, RabbitMQ, MariaDB, etcd3, dstat,
Nova on libvirt/QEMU, Open vSwitch and OVN, Neutron ML2/OVN, Cinder, Horizon, Tempest — the
session's shared stack (tests/default_cloud.py; test_agents uses it after this module):

- every service healthy, from its real state (compute services up, the compute node in
  Placement, the OVN agent alive, the volume backend's pool listed);
- ``verify``'s guest: a server boots the image stackmagic built, shows its banner and hostname
  on the console, answers ping and SSH through a floating IP from the provider namespace, and
  reports its own hostname; a Cinder volume attached to it shows up inside it as a new disk;
- Tempest in its own venv, its tempest.conf private and merged with local.conf's test-config
  section; ``tempest run`` of the smoke tests (devstack's gate's first check) and of the
  identity and image API tests passes from the provider namespace with that tempest.conf;
- SIGKILL of n-cpu is seen as down; the next ``stack`` restarts only it; the running guest
  survives and still answers SSH;
- (Horizon showing demo a guest: the tutorials' 05, on the heat stage);
- last in the session: the tutorials' 08 under nbval (``%unstack --all``, ``%stack_clean``),
  with a guest still running and a local.conf that no longer enables Swift or Cinder, leaves
  no qemu, libvirtd, rabbitmq, ovs, ovn, haproxy, dnsmasq or OpenStack process, no libvirt
  domain, no namespace, no mount or loop device, and the host's addresses and routes as they
  were; unstack keeps the volumes' and objects' data (08 checks), clean removes it and what
  Horizon's configure made, and keeps the source trees.

Root only; slow (a cold stack of this size takes minutes). Uses the machine's libvirtd and
Open vSwitch database socket: nothing else may run them meanwhile.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from stackmagic.process_info import alive, tree
from stackmagic.catalog import loopback
from tests.conftest import mounts_under, wait_until
from tests.default_cloud import domains, engine_for, host_network, namespaces, our_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]


@pytest.fixture
def cloud(default_cloud):
    return default_cloud


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


def test_tempest_has_its_own_venv_and_a_private_conf_for_this_cloud(cloud):
    """Tempest in its own venv at the release the constraints pin, the shared venv without it;
    tempest.conf private, pointing at this cloud, local.conf's test-config section merged
    (that a nothing-changed re-run does not redo the merge, the killed-compute test's re-run
    shows: it runs only ``start n-cpu``); no stack log holds the admin password."""
    from stackmagic.catalog.tempest import Tempest

    engine = engine_for(cloud)
    data = engine.config.settings.data_dir
    tempest = data / "venv-tempest" / "bin" / "tempest"
    assert not (data / "venv" / "bin" / "tempest").exists()
    version = subprocess.run([tempest, "--version"], capture_output=True, text=True, check=True).stdout
    assert Tempest().version(engine.ctx) in version

    conf = data / "etc" / "tempest" / "tempest.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    text = conf.read_text()
    assert f"uri_v3 = http://127.0.0.1:{engine.config.settings['KEYSTONE_SERVICE_PORT']}/v3" in text
    assert re.search(r"^\[image\]\n(?:[^[].*\n)*build_timeout = 240$", text, re.M)
    image_ref = re.search(r"^image_ref = (\S+)$", text, re.M)
    assert image_ref and re.fullmatch(r"[0-9a-f-]{36}", image_ref[1])
    assert (data / "tempest" / "etc" / "tempest.conf").resolve() == conf
    password = engine.config.settings.admin_password
    logs = list((cloud["root"] / "logs" / "stack").glob("*.log"))
    assert logs and not [log for log in logs if password in log.read_text(errors="replace")]


def test_tempest_smoke_and_the_identity_and_image_api_pass_from_the_provider_namespace(cloud):
    """devstack's gate's first check, and OpenStack's own identity and image API tests, in one
    run where the guests are reachable (the APIs answer there too), with the stack's own
    tempest.conf."""
    from stackmagic import provider

    from tests import tempest_times

    engine = engine_for(cloud)
    data = engine.config.settings.data_dir
    # equal shares for the two workers (see tests/tempest_times.py)
    assert tempest_times.seed(data / "tempest", data / "venv-tempest" / "bin" / "stestr") > 80
    regex = r"\[.*\bsmoke\b.*\]|^tempest\.api\.(identity|image)\."
    done = provider.run(engine.ctx, [data / "venv-tempest" / "bin" / "tempest", "run", "--regex",
                                     regex, "--concurrency", "2"],
                        cwd=data / "tempest", capture_output=True, text=True, timeout=1200)
    totals = dict(re.findall(r"^ - (Passed|Skipped|Failed): (\d+)$", done.stdout, re.M))
    failed = re.findall(r"^\{\d+\} (\S+) \[[^]]*\] \.\.\. FAILED", done.stdout, re.M)
    assert done.returncode == 0 and totals.get("Failed") == "0", (failed, done.stdout[-3000:])
    # "{0} tempest.api.image.v2.test_images.ListImagesTest.test_list_no_params [1.2s] ... ok"
    passed = {name.split("[")[0] for name in
              re.findall(r"^\{\d+\} (\S+) \[[^]]*\] \.\.\. ok", done.stdout, re.M)}
    listed = subprocess.run([data / "venv-tempest" / "bin" / "tempest", "run", "--smoke", "--list-tests"],
                            cwd=data / "tempest", capture_output=True, text=True, timeout=300, check=True)
    smoke = {line.split("[")[0] for line in listed.stdout.split() if line.startswith("tempest.")}
    api = {name for name in passed if re.match(r"tempest\.api\.(identity|image)\.", name)}
    assert len(smoke & passed) >= 80 and len(api) >= 150, (len(smoke & passed), len(api), totals)
    # the scenarios that boot a guest and log in to it over SSH ran, and passed
    for scenario in ("test_server_basic_ops", "test_network_basic_ops"):
        assert re.search(rf"{scenario}\S* \[[^]]*\] \.\.\. ok", done.stdout), scenario


def test_killed_compute_agent_is_restored_and_the_guest_survives(cloud):
    from stackmagic import guestcheck

    engine = engine_for(cloud)
    kept = guestcheck.run(engine, keep=True)
    assert kept["ok"], guestcheck.explain(kept)
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


def test_tempest_knows_compute_network_and_validation(cloud):
    from stackmagic import ini

    conf = engine_for(cloud).config.settings.path("TEMPEST_CONFIG")
    for section, key in (("compute", "image_ref"), ("compute", "flavor_ref"),
                         ("network", "public_network_id"), ("validation", "image_ssh_user"),
                         ("validation", "connect_method"), ("service_available", "nova"),
                         ("dashboard", "dashboard_url")):
        assert ini.iniget(conf, section, key), (section, key)
    assert ini.iniget(conf, "service_available", "neutron") == "true"


@pytest.mark.unstacks
def test_the_tutorials_last_notebook_unstacks_and_cleans_leaving_nothing(cloud, tutorial_run):
    """Last in the session: 08 (%unstack --all, %stack_clean) under nbval ends the shared cloud,
    with a guest still running and a local.conf that no longer enables Swift or Cinder (unstack
    undoes what a project set up whatever the localrc says now). 08 itself checks that unstack
    keeps the volumes' and objects' data and clean removes it; here: no qemu, libvirtd,
    rabbitmq, ovs, ovn, haproxy, dnsmasq or OpenStack process, no libvirt domain, no
    namespace, no mount or loop device, the host's addresses and routes as they were, and
    clean removed what Horizon's configure made but kept the source trees."""
    from stackmagic import guestcheck
    from tests.tutorial_outputs import nbval

    kept = guestcheck.run(engine_for(cloud), keep=True)     # a guest still runs at unstack
    assert kept["ok"], guestcheck.explain(kept)
    assert domains() - cloud["before"]["domains"]
    conf = tutorial_run["work"] / "local.conf"
    if not conf.exists():           # the series did not run in this session: 06's local.conf
        from tests.default_cloud import everything_localrc

        conf.write_text("\n".join(["[[local|localrc]]", *everything_localrc(), ""]))
    conf.write_text(conf.read_text().rstrip("\n") + "\n"
                    "disable_service s-proxy s-object s-container s-account c-api c-sch c-vol c-bak\n")
    data = engine_for(cloud).config.settings.data_dir
    dest = engine_for(cloud).config.settings.dest
    drive = loopback.probe(("xfs", "ext4"))[0]          # else Swift's objects lie in a plain directory
    assert mounts_under(data / "cinder") and bool(mounts_under(data / "swift")) == bool(drive)
    horizon = [dest / "horizon" / "openstack_dashboard" / "local" / "local_settings.py",
               data / "horizon", data / "etc" / "horizon"]
    assert all(p.is_symlink() or p.exists() for p in horizon)

    proc = nbval(tutorial_run, ["08"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    before = cloud["before"]
    # devstack's cleanup_nova: the guest is destroyed and undefined, or a later stack's
    # nova-compute would refuse to start beside it
    assert domains() <= before["domains"]
    assert wait_until(lambda: not our_processes(before["pids"]), timeout=60), our_processes(before["pids"])
    assert namespaces() <= before["namespaces"]
    assert host_network() == before["network"]
    # Cinder's backing file and Swift's drive: no mount and no loop device of this stack left
    assert str(cloud["root"]) not in Path("/proc/mounts").read_text()
    assert wait_until(lambda: str(cloud["root"]) not in losetup(), 30), losetup()   # detached lazily
    assert not (data / "stackmagic" / "cinder-backing.json").exists()
    assert not (data / "stackmagic" / "swift-disk.json").exists()
    # clean: the volumes' and objects' data, what Horizon's configure made (its settings' link
    # in the kept checkout, its data and config); the source tree is kept
    assert not (data / "stack-volumes-nfs-backing-file").exists() and not (data / "swift").exists()
    assert not [p for p in horizon if p.is_symlink() or p.exists()]
    assert (dest / "horizon" / "setup.cfg").exists()


def losetup() -> str:
    """The backing files of the machine's loop devices, one per line."""
    return subprocess.run(["losetup", "-l", "-n", "-O", "BACK-FILE"], capture_output=True, text=True).stdout
