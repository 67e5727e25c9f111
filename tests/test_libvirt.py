"""libvirt as n-cpu's hypervisor: the KVM probe, LIBVIRT_TYPE, and a real libvirtd and virtlogd
started by a sandbox stack, with a real guest defined and started through libvirt-python from the
stack's venv. Root only (libvirtd runs only as root here), and QEMU must be installed for the
probe tests (the stack test installs what it needs through the packages step)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from stackmagic.catalog import enabled_projects
from stackmagic.catalog import libvirt as lv
from stackmagic.config import load_config
from stackmagic.engine import Engine, StepError
from stackmagic.errors import ConfigError
from stackmagic.process_info import alive
from tests.conftest import wait_until

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and the KVM probe need root")
needs_qemu = pytest.mark.skipif(not os.access(lv.QEMU, os.X_OK), reason="qemu-system-x86 is not installed")

#: A fixture project standing in for n-cpu: it needs the hypervisor before its start, and its
#: process opens qemu:///system with libvirt-python from the stack's venv.
USER_MODULE = '''
import sys
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.health import CommandCheck

SCRIPT = ("import libvirt, time; c = libvirt.open('qemu:///system'); "
          "print('libvirt-python', libvirt.getVersion(), 'talks to', c.getType(), flush=True); "
          "time.sleep(100000)")

class FakeHypervisorUser(Project):
    name = "fakehvuser"
    services = {"fake-hv-user": "needs the hypervisor before it starts"}
    requires = (Need("hypervisor", before="start", services=("fake-hv-user",), optional=%(optional)s),)

    def processes(self, ctx):
        yield Process("fake-hv-user", [str(ctx.venv.python), "-c", SCRIPT], cwd=ctx.settings.data_dir,
                      health=CommandCheck(("grep", "-q", "talks to QEMU",
                                           str(ctx.settings.logdir / "fake-hv-user.log"))),
                      timeout=30)
'''

#: A multiboot "kernel" (QEMU loads it with -kernel, libvirt with <kernel>): 32-bit code that
#: writes a banner to the serial port and halts. Assembled with GNU as from:
#:   header: .long 0x1badb002, 0x00010000, -(0x1badb002 + 0x00010000)   (a.out kludge)
#:           .long 0x100000, 0x100000, 0, 0, 0x100000 + (entry - header)
#:   entry:  mov $0x3f8, %dx; mov $msg, %esi
#:   1:      lodsb; test %al, %al; jz 2f; out %al, %dx; jmp 1b
#:   2:      cli; hlt; jmp 2b
#:   msg:    .asciz "stackmagic test guest: up\r\n"
GUEST_KERNEL = bytes.fromhex(
    "02b0ad1b00000100fe4f51e4000010000000100000000000000000002000100066baf803be35001000ac84c0"
    "7403eeebf8faf4ebfc737461636b6d6167696320746573742067756573743a2075700d0a00")
BANNER = "stackmagic test guest: up"

DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>Nehalem</model></cpu>
  <devices>
    <serial type='pty'><log file='{console}' append='off'/><target port='0'/></serial>
  </devices>
</domain>
"""

#: run with the stack venv's python: start the domain (transient) and say how it runs
START_GUEST = """
import sys, libvirt
conn = libvirt.open("qemu:///system")
dom = conn.createXML(open(sys.argv[1]).read(), 0)
state, _ = dom.state()
print(dom.name(), "running" if state == libvirt.VIR_DOMAIN_RUNNING else state)
"""


# -- the probe -------------------------------------------------------------------------------
@root_only
@needs_qemu
def test_the_probe_guest_runs_to_the_end_under_software_emulation(tmp_path):
    image = tmp_path / "probe.bin"
    image.write_bytes(lv.probe_image())
    assert image.stat().st_size == 65536
    ok, detail, seconds = lv.run_test_guest("tcg", image)
    assert ok, detail
    assert "64-bit mode" in detail and seconds < lv.PROBE_TIMEOUT
    # a guest that cannot reach its end is told apart: the same code with its last stage cut
    broken = bytearray(lv.probe_image())
    at = broken.find(bytes.fromhex("f0480fc70f"))          # lock cmpxchg16b (%rdi)
    broken[at:at + 5] = b"\xf4" * 5                         # hlt there instead
    image.write_bytes(bytes(broken))
    ok, detail, _ = lv.run_test_guest("tcg", image, timeout=1.0)
    assert not ok and "64-bit mode at lock cmpxchg16b" in detail


@root_only
@needs_qemu
def test_the_probe_decides_as_the_machine_is_and_keeps_its_answer_for_this_boot(tmp_path):
    cache = tmp_path / "kvm-probe.json"
    found = lv.probe(cache)
    assert found["probed"] and not found["cached"]
    if lv.PVM_MODULE.exists():
        assert found["type"] == "qemu" and "kvm_pvm" in found["reason"]
    elif not lv.KVM_DEVICE.exists():
        assert found["type"] == "qemu" and "no /dev/kvm" in found["reason"]
    else:   # an ordinary /dev/kvm: the decision is what the test guest did under it
        image = tmp_path / "probe.bin"
        image.write_bytes(lv.probe_image())
        assert found["type"] == ("kvm" if lv.run_test_guest("kvm", image)[0] else "qemu")
    assert found["reason"].startswith(found["type"] + ": ")
    kept = json.loads(cache.read_text())
    assert kept["key"]["boot_id"] == lv.BOOT_ID.read_text().strip()
    assert lv.probe(cache) == {**found, "cached": True}
    # another boot (or another QEMU) probes again
    kept["key"]["boot_id"] = "another-boot"
    cache.write_text(json.dumps(kept))
    assert lv.probe(cache)["cached"] is False


def _engine(tmp_path: Path, *lines: str) -> Engine:
    (tmp_path / "data").mkdir(exist_ok=True)        # the probe's answer is kept there
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([f"DEST={tmp_path}/dest", f"DATA_DIR={tmp_path}/data",
                                  f"LOGDIR={tmp_path}/logs", "disable_all_services", *lines]) + "\n")
    return Engine(load_config(localrc))


@root_only
@needs_qemu
def test_libvirt_type_from_the_configuration_is_honoured_or_refused_with_the_reason(tmp_path):
    ctx = _engine(tmp_path, "LIBVIRT_TYPE=qemu").ctx
    found = lv.probe(lv.probe_cache(ctx))
    assert lv.virt_type(ctx)[0] == "qemu" and "LIBVIRT_TYPE=qemu" in lv.virt_type(ctx)[1]
    assert lv.cpu_options(ctx) == {"cpu_mode": "custom", "cpu_models": "Nehalem"}
    ctx = _engine(tmp_path, "LIBVIRT_TYPE=qemu", "LIBVIRT_CPU_MODE=host-passthrough").ctx
    assert lv.cpu_options(ctx) == {"cpu_mode": "custom", "cpu_models": "Nehalem"}
    ctx = _engine(tmp_path, "LIBVIRT_TYPE=lxc").ctx
    with pytest.raises(ConfigError, match="LIBVIRT_TYPE=lxc is not supported"):
        lv.virt_type(ctx)
    ctx = _engine(tmp_path, "LIBVIRT_TYPE=kvm").ctx
    if found["type"] == "kvm":
        assert lv.virt_type(ctx)[0] == "kvm"
    else:
        with pytest.raises(ConfigError, match="KVM cannot run an ordinary guest here") as err:
            lv.virt_type(ctx)
        assert "set LIBVIRT_TYPE=qemu" in str(err.value)
        assert Libvirt().plan_notes(ctx)[0].startswith("hypervisor: error: LIBVIRT_TYPE=kvm")
    ctx = _engine(tmp_path).ctx
    assert lv.virt_type(ctx)[0] == found["type"]
    assert Libvirt().plan_notes(ctx) == [f"hypervisor: libvirt, virt_type {found['reason']}"]


Libvirt = lv.Libvirt


def test_with_the_fake_driver_nothing_of_libvirt_comes(tmp_path, catalog_dir):
    (catalog_dir / "fakehvuser.py").write_text(USER_MODULE % {"optional": True})
    engine = _engine(tmp_path, "VIRT_DRIVER=fake", "enable_service fake-hv-user")
    projects, _ = enabled_projects(engine.ctx, [])
    assert [p.name for p in projects] == ["fakehvuser"]
    assert "VIRT_DRIVER=fake" in lv.why_unavailable(engine.ctx)
    assert not any("libvirt" in step.id for step in engine.plan())
    assert "libvirt not available" in Libvirt().plan_notes(engine.ctx)[0]
    # the same optional need with the default driver brings libvirt, as root
    if os.geteuid() == 0:
        engine = _engine(tmp_path, "enable_service fake-hv-user")
        assert [p.name for p in enabled_projects(engine.ctx, [])[0]] == ["libvirt", "fakehvuser"]
        assert any(step.id == "start libvirtd" for step in engine.plan())


def test_devstacks_device_acl_is_added_with_neutron_and_removed_again(tmp_path, monkeypatch):
    conf = tmp_path / "qemu.conf"
    original = '# a comment\nuser = "libvirt-qemu"\n'
    conf.write_text(original)
    monkeypatch.setattr(lv, "QEMU_CONF", conf)
    ctx = _engine(tmp_path).ctx
    lv._set_acl(ctx, True)
    lv._set_acl(ctx, True)                                  # once only
    text = conf.read_text()
    assert text.startswith(original) and text.count("\ncgroup_device_acl =") == 1
    assert '"/dev/net/tun"' in text
    lv._set_acl(ctx, False)
    assert conf.read_text() == original
    # an administrator's own acl stands, and is not removed
    own = original + 'cgroup_device_acl = [ "/dev/null" ]\n'
    conf.write_text(own)
    lv._set_acl(ctx, True)
    lv._set_acl(ctx, False)
    assert conf.read_text() == own


@root_only
def test_a_directory_qemu_cannot_pass_is_named(guest_dir):
    import grp
    import pwd

    if "libvirt-qemu" not in {p.pw_name for p in pwd.getpwall()}:
        pytest.skip("no libvirt-qemu account (libvirt-daemon-system is not installed)")
    inner = guest_dir / "a" / "b"
    inner.mkdir(parents=True)
    for d in (guest_dir, guest_dir / "a", inner):
        d.chmod(0o755)
    assert lv.unreachable_by_qemu(inner / "disk") is None
    (guest_dir / "a").chmod(0o700)
    assert lv.unreachable_by_qemu(inner / "disk") == guest_dir / "a"
    os.chown(guest_dir / "a", 0, grp.getgrnam("kvm").gr_gid)      # libvirt-qemu is in kvm
    (guest_dir / "a").chmod(0o710)
    assert lv.unreachable_by_qemu(inner / "disk") is None
    (guest_dir / "a").chmod(0o700)
    os.chown(guest_dir / "a", pwd.getpwnam("libvirt-qemu").pw_uid, 0)
    assert lv.unreachable_by_qemu(inner / "disk") is None
    os.chown(guest_dir / "a", 0, 0)


# -- a real libvirtd ----------------------------------------------------------------------------
def _live(names: tuple[str, ...]) -> dict[int, str]:
    """pid -> program of every live (not zombie) process whose program is one of ``names``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(entry / "exe"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(exe.startswith(n) for n in names):
            out[int(entry.name)] = exe
    return out


def _host_network() -> dict:
    """The host namespace's IPv4 routes, its non-link-local addresses and its firewall rules."""
    addrs = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, check=True).stdout)
    firewall = ""
    if shutil.which("iptables-save"):
        out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        firewall = "\n".join(re.sub(r"\[\d+:\d+\]", "", line) for line in out.splitlines()
                             if not line.startswith("#"))
    return {
        "addresses": sorted((a["ifname"], i["local"], i["prefixlen"]) for a in addrs
                            for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in routes),
        "firewall": firewall,
    }


@pytest.fixture
def guest_dir():
    """A directory libvirt-qemu can reach (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="stackmagic-libvirt-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@root_only
def test_libvirt_brings_a_real_guest_up_and_unstack_leaves_nothing(tmp_path, catalog_dir, guest_dir,
                                                                   monkeypatch):
    if _live(("libvirtd", "virtlogd")):
        pytest.skip(f"a libvirtd or virtlogd already runs here: {_live(('libvirtd', 'virtlogd'))}")
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    (catalog_dir / "fakehvuser.py").write_text(USER_MODULE % {"optional": False})
    socket = f"stackmagic-libvirt-{uuid.uuid4().hex[:8]}"
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([
        f"DEST={tmp_path}/dest", f"DATA_DIR={tmp_path}/data", f"LOGDIR={tmp_path}/logs",
        f"TMUX_SOCKET={socket}", "USE_CONSTRAINTS=False",
        "disable_all_services", "enable_service fake-hv-user"]) + "\n")

    def engine() -> Engine:
        return Engine(load_config(localrc))

    host_before = _host_network()
    name = f"stackmagic-test-{uuid.uuid4().hex[:8]}"
    guest_pid = None
    # as libvirt-daemon-config-network's postinst leaves it on some machines: configure removes it
    link = lv.DEFAULT_NETWORK_AUTOSTART
    made_link = not link.is_symlink()
    try:
        if made_link:
            link.symlink_to("../default.xml")
        # configure alone first: were the link kept, no libvirtd has started with it yet
        lv.Libvirt().configure(engine().ctx)
        assert not link.is_symlink()
        # a virtlogd this stack did not start (as Debian's init script would): a clear error
        conf = tmp_path / "foreign.conf"
        conf.write_text('log_outputs="3:stderr"\n')
        foreign = subprocess.Popen(["virtlogd", "-f", str(conf)], stderr=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: lv.foreign_daemons(engine().ctx) != [])
            with pytest.raises(StepError, match="configure libvirt") as err:
                engine().stack()
            assert f"virtlogd (pid {foreign.pid}) already runs and this stack did not start it" in str(err.value)
            assert "/etc/init.d/virtlogd stop" in str(err.value)
        finally:
            foreign.terminate()
            foreign.wait(10)

        summary = engine().stack()
        status = {s.service: s for s in summary.services}
        assert set(status) == {"virtlogd", "libvirtd", "fake-hv-user"}
        assert all(s.healthy for s in status.values()), status
        # libvirtd answers, and came up before the service that needs it
        version = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True,
                                 text=True, check=True).stdout
        assert "Running hypervisor: QEMU" in version
        assert "talks to QEMU" in (tmp_path / "logs" / "fake-hv-user.log").read_text()
        # the probe's decision, consistent with the machine, in the configure log
        kind, reason = lv.virt_type(engine().ctx)
        if lv.PVM_MODULE.exists():
            assert kind == "qemu" and "kvm_pvm" in reason
        configure_log = next((tmp_path / "logs" / "stack").glob("configure*libvirt*.log")).read_text()
        assert f"hypervisor: {reason}" in configure_log
        assert (tmp_path / "data" / "stackmagic" / "kvm-probe.json").exists()
        if lv.KVM_DEVICE.exists():
            st = lv.KVM_DEVICE.stat()
            assert oct(st.st_mode & 0o777) == oct(0o660) and st.st_gid == __import__("grp").getgrnam("kvm").gr_gid

        # a real guest, through libvirt-python from the stack's venv
        kernel = guest_dir / "kernel"
        kernel.write_bytes(GUEST_KERNEL)
        kernel.chmod(0o644)
        console = guest_dir / "console.log"
        xml = guest_dir / "domain.xml"
        xml.write_text(DOMAIN.format(name=name, kernel=kernel, console=console))
        python = engine().ctx.venv.python
        out = subprocess.run([str(python), "-c", START_GUEST, str(xml)], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [name, "running"]
        assert wait_until(lambda: console.exists() and BANNER in console.read_text(), timeout=30)
        guests = {n: p for p, n in lv.guests()}
        guest_pid = guests[name]
        cmdline = Path(f"/proc/{guest_pid}/cmdline").read_bytes().decode().split("\0")
        assert "accel=tcg" in " ".join(cmdline) or "tcg" in cmdline
        state = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", name], capture_output=True,
                               text=True, check=True).stdout.strip()
        assert state == "running"

        # libvirtd killed: the guest runs on, and the next stack brings a libvirtd that finds it
        daemon = int(lv.DAEMON_PIDFILES["libvirtd"].read_text().split()[0])
        assert os.path.basename(os.readlink(f"/proc/{daemon}/exe")) == "libvirtd"
        os.kill(daemon, signal.SIGKILL)
        assert wait_until(lambda: not alive(daemon))
        if lv.KVM_DEVICE.exists():          # as after a reboot: start puts the mode back
            lv.KVM_DEVICE.chmod(0o600)
        again = engine().stack()
        assert "start libvirtd" in [r.step for r in again.ran]
        if lv.KVM_DEVICE.exists():
            assert lv.KVM_DEVICE.stat().st_mode & 0o777 == 0o660
        assert {s.service: s for s in again.services}["libvirtd"].healthy
        assert alive(guest_pid)
        state = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", name], capture_output=True,
                               text=True, check=True).stdout.strip()
        assert state == "running"

        # nothing of libvirt's own network
        active = subprocess.run(["virsh", "-c", "qemu:///system", "net-list", "--name"],
                                capture_output=True, text=True, check=True).stdout.split()
        assert "default" not in active
        assert not lv.DEFAULT_NETWORK_AUTOSTART.exists()
        links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
        assert not [link["ifname"] for link in links if link["ifname"].startswith("virbr")]
        assert _host_network() == host_before

        # unstack --all: no libvirtd, virtlogd or guest of ours is left
        stopped = engine().unstack(all=True)
        assert {"libvirtd", "virtlogd", "fake-hv-user"} <= set(stopped)
        assert wait_until(lambda: not alive(guest_pid), timeout=15)
        assert not _live(("libvirtd", "virtlogd"))
        assert not [pid for pid, _ in lv.guests()]
        assert _host_network() == host_before
    finally:
        try:
            engine().unstack(all=True)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
            if made_link and link.is_symlink():
                link.unlink()               # never leave the default network set to autostart
    assert guest_pid is None or not alive(guest_pid)
