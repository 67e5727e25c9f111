"""libvirt and QEMU: the hypervisor Nova's n-cpu drives (devstack's lib/nova_plugins/
hypervisor-libvirt and functions-libvirt), from Debian's packages, started here as root without
systemd.

The project has no service name of its own: n-cpu brings it (``Need("hypervisor",
before="start", services=("n-cpu",))``) when ``VIRT_DRIVER`` is ``libvirt`` (the default) and
stackmagic runs as root. It runs two processes in the foreground of their windows, each reading
a config file of ours under ``$STACK_CONF_DIR/libvirt`` (``-f``), so Debian's
``/etc/libvirt/libvirtd.conf`` and ``virtlogd.conf`` stay as the package left them:

- ``virtlogd``: keeps the guests' serial console logs (Nova's ``console.log``); healthy when
  ``virt-admin -c virtlogd:///system version`` answers.
- ``libvirtd`` (Debian 12's monolithic daemon): healthy when ``virsh -c qemu:///system
  version`` answers. Both log warnings and errors to their window (``$LOGDIR/<service>.log``);
  ``DEBUG_LIBVIRT=True`` gives devstack's debug filters.

What configure changes outside our own files, and why:

- ``/dev/kvm`` gets group ``kvm`` and mode 0660, what Debian's udev rules give it (there is no
  udev here: it is 0600 root), in configure and again just before libvirtd starts. libvirtd probes QEMU as ``libvirt-qemu`` (a member of ``kvm``);
  when that user cannot open /dev/kvm, libvirtd throws its QEMU capability cache away and
  probes again at every start: ~12 s before it answers, 0.2 s once the device is readable.
  This changes nothing the KVM probe below decides (it runs as root).
- The autostart link of libvirt's ``default`` network is removed if the package made one, so
  virbr0 and 192.168.122.0/24 never appear in the host's namespace. Nova does not use it.
- With Neutron enabled, devstack's ``cgroup_device_acl`` (with ``/dev/net/tun``) is appended to
  ``/etc/libvirt/qemu.conf`` once, between marker lines that cleanup removes again.

LIBVIRT_TYPE is decided by a probe, not by the presence of /dev/kvm (see :func:`virt_type`):
some machines have a /dev/kvm from PVM (``kvm_pvm``), which runs only PVM-enabled guest
kernels; a Debian guest under it crawls and then dies. The probe boots a few bytes of machine
code under ``qemu -accel kvm`` that go from real mode to 64-bit mode and run ``lock
cmpxchg16b`` (what a Debian kernel died on), then report through QEMU's isa-debug-exit port.

Nova's module uses :func:`virt_type` and :func:`cpu_options` in its configure (nova-cpu.conf's
``[libvirt]`` virt_type, cpu_mode, cpu_models), :func:`why_unavailable` for a clear error, and
:func:`unreachable_by_qemu` to check that guests' files can be reached. ``Libvirt.plan_notes``
gives the line ``plan`` shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

QEMU = "/usr/bin/qemu-system-x86_64"
KVM_DEVICE = Path("/dev/kvm")
PVM_MODULE = Path("/sys/module/kvm_pvm")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
DEFAULT_NETWORK_AUTOSTART = Path("/etc/libvirt/qemu/networks/autostart/default.xml")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
QEMU_PIDS = Path("/run/libvirt/qemu")       # <domain>.pid of every qemu libvirtd started
PROBE_TIMEOUT = 2.0                          # seconds for the test guest under -accel kvm
TYPES = ("kvm", "qemu")

# -- the probe's test guest --------------------------------------------------------------------
# A 64 KiB -bios image. At the reset vector (offset 0xfff0) a far jump to f000:0000 (the ROM's
# alias below 1 MiB, so the code stays addressable once paging is on). The code there, assembled
# with GNU as (``.code16``, then ``.code64`` from long64):
#
#     cli; ds = es = ss = 0; sp = 0x7000
#     out 'R' to 0x3f8                         serial: real mode runs
#     zero 0x1000-0x3fff; PML4[0] = 0x2003; PDPT[0] = 0x3003; PD[0] = 0x83 (2 MiB identity page)
#     lgdt (a null and a 64-bit code descriptor); cr3 = 0x1000; cr4.PAE = 1
#     EFER.LME = 1 (wrmsr 0xc0000080); cr0 |= PG | PE; ljmpl $0x08, $long64
#   long64:
#     out 'L' to 0x3f8                         64-bit mode runs
#     [0x5000] = 0 (16 bytes); rdx:rax = 0; rcx:rbx = 1; lock cmpxchg16b [0x5000]
#     if ZF and [0x5000] == 1: out 'K' to 0x3f8; out 0x10 to 0xf4   (QEMU exits with 33)
#     out 0x11 to 0xf4                         (QEMU exits with 35)
#     hlt
#
# Under TCG or working KVM this prints "RLK" and QEMU exits 33 within milliseconds of starting.
# Under PVM it prints "R" and never gets further (measured: nothing more in 30 s).
_PROBE_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc0070baf803b052eefcbf0010b9001831c0f3ab66c70600100320000066c706002003"
    "30000066c706003083000000b800f08ed8660f0116d80031c08ed866b8001000000f22d80f20e06683c820"
    "0f22e066b9800000c00f32660d000100000f300f20c0660d010000800f22c066ea7e000f00080066baf803"
    "b04ceebf0050000048c7070000000048c747080000000031c031d2bb0100000031c9f0480fc70f75144883"
    "3f01750e66baf803b04bee66baf400b010ee66baf400b011eef4900000000000000000ffff0000009aaf00"
    "0f00c8000f00"
)
_STAGES = {"": "never started", "R": "stopped in real mode, before 64-bit mode",
           "RL": "stopped in 64-bit mode at lock cmpxchg16b"}
PROBE_SERIAL = "RLK"        # what the test guest writes when every stage ran
PROBE_EXIT = 33             # (0x10 << 1) | 1: isa-debug-exit's status for "passed"


def probe_image() -> bytes:
    """The 64 KiB ``-bios`` image of the probe's test guest (see above)."""
    image = bytearray(b"\xf4" * 0x10000)                 # hlt everywhere else
    image[:len(_PROBE_CODE)] = _PROBE_CODE
    image[0xfff0:0xfff5] = bytes([0xea, 0x00, 0x00, 0x00, 0xf0])   # jmp far f000:0000
    return bytes(image)


def run_test_guest(accel: str, image: Path, timeout: float = PROBE_TIMEOUT,
                   qemu: str = QEMU) -> tuple[bool, str, float]:
    """Boot the test guest under ``-accel accel``: (it passed, what happened, seconds)."""
    argv = [qemu, "-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults", "-display", "none",
            "-monitor", "none", "-no-reboot", "-bios", str(image), "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        seconds = time.monotonic() - start
        out = (err.stdout or b"").decode(errors="replace")
        return False, f"{_STAGES.get(out, 'misbehaved')} (nothing more within {timeout:g} s)", seconds
    except OSError as err:
        return False, f"could not run {qemu}: {err}", time.monotonic() - start
    seconds = time.monotonic() - start
    out = proc.stdout.decode(errors="replace")
    if proc.returncode == PROBE_EXIT and out == PROBE_SERIAL:
        return True, f"reached 64-bit mode and ran lock cmpxchg16b in {seconds:.2f} s", seconds
    err_line = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:160]
    return False, (f"exited with status {proc.returncode} (serial: {out!r}"
                   + (f"; {err_line}" if err_line else "") + ")"), seconds


# -- facts about this machine -------------------------------------------------------------------
def cpu_flags() -> set[str]:
    """The hardware virtualization flags of the first CPU in /proc/cpuinfo (vmx, svm)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split()) & {"vmx", "svm"}
    return set()


def qemu_version(qemu: str = QEMU) -> str | None:
    """``QEMU emulator version ...``, or None when QEMU is not installed."""
    if not os.access(qemu, os.X_OK):
        return None
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.strip().splitlines() or [""])[0] or None


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


def probe(cache: Path | None = None, qemu: str = QEMU) -> dict:
    """Whether KVM runs an ordinary guest here: ``{"type", "reason", "seconds", "probed"}``.

    ``probed`` is false when QEMU is not installed yet: the answer then rests on the machine's
    facts alone (certain when it says qemu). A real probe's answer is kept in ``cache`` for this
    boot and this QEMU (keyed on the boot id and ``qemu --version``).
    """
    version = qemu_version(qemu)
    key = {"boot_id": _boot_id(), "qemu": version}
    if cache is not None and version is not None:
        try:
            kept = json.loads(cache.read_text())
            if kept.get("key") == key:
                return {**kept["result"], "cached": True}
        except (OSError, ValueError, KeyError, AttributeError):
            pass
    pvm = PVM_MODULE.exists()
    flags = cpu_flags()
    what = ("/dev/kvm is PVM (kvm_pvm), which runs only PVM-enabled guest kernels"
            if pvm else "no hardware virtualization (no vmx/svm in /proc/cpuinfo)"
            if not flags else None)
    if not KVM_DEVICE.exists():
        return _result("qemu", "qemu: there is no /dev/kvm; software emulation (TCG)", 0.0, False)
    if version is None:
        if what:
            return _result("qemu", f"qemu: {what}; software emulation (TCG)", 0.0, False)
        return _result("kvm", f"kvm: /dev/kvm and {'/'.join(sorted(flags))}; the boot test runs "
                       "once QEMU is installed", 0.0, False)
    image = (cache.parent if cache is not None else Path("/tmp")) / f"kvm-probe-{os.getpid()}.bin"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(probe_image())
    try:
        ok, detail, seconds = run_test_guest("kvm", image, qemu=qemu)
        if ok and not pvm:
            result = _result("kvm", f"kvm: a test guest under -accel kvm {detail}", seconds, True)
        else:
            # the same guest under TCG tells a broken KVM from a QEMU that cannot run at all
            # (or a machine too busy to start it in time): then the answer is not kept
            tcg_ok, tcg_detail, tcg_seconds = run_test_guest("tcg", image, qemu=qemu)
            seconds += tcg_seconds
            why = what or "KVM cannot run an ordinary guest"
            result = _result("qemu", f"qemu: {why}: a test guest under -accel kvm {detail}; "
                             "software emulation (TCG)", seconds, tcg_ok)
            if not tcg_ok:
                result["reason"] += f" (the same guest under TCG also failed: {tcg_detail})"
    finally:
        image.unlink(missing_ok=True)
    if cache is not None and result["probed"]:
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.write_text(json.dumps({"key": key, "result": result}))
        os.replace(tmp, cache)
    return result


def _result(kind: str, reason: str, seconds: float, probed: bool) -> dict:
    return {"type": kind, "reason": reason, "seconds": round(seconds, 3), "probed": probed,
            "cached": False}


def probe_cache(ctx: "Context") -> Path | None:
    """Where the probe's answer is kept: ``$DATA_DIR/stackmagic/kvm-probe.json``; None while
    DATA_DIR does not exist (``plan`` makes nothing)."""
    data = ctx.settings.data_dir
    if not data.is_dir():
        return None
    return ctx.stack_dir / "kvm-probe.json"


# -- what Nova asks -----------------------------------------------------------------------------
def virt_driver(ctx: "Context") -> str:
    return ctx.settings.get("VIRT_DRIVER") or "libvirt"


def why_unavailable(ctx: "Context") -> str | None:
    """None when libvirt can run here; else why not, as a sentence that says what to change."""
    driver = virt_driver(ctx)
    if driver != "libvirt":
        return f"VIRT_DRIVER={driver}: libvirt is not used"
    if os.geteuid() != 0:
        return ("libvirtd and virtlogd run only as root here (no systemd to start them): run "
                "stack as root, or set VIRT_DRIVER=fake")
    return None


def virt_type(ctx: "Context") -> tuple[str, str]:
    """nova-cpu.conf's ``[libvirt] virt_type`` and a one-line reason.

    An explicit ``LIBVIRT_TYPE=qemu`` is honoured; ``LIBVIRT_TYPE=kvm`` where the probe finds
    that KVM cannot run an ordinary guest is an error that says why. Otherwise the probe decides.
    Raises ConfigError for a LIBVIRT_TYPE other than kvm or qemu.
    """
    asked = (ctx.settings.get("LIBVIRT_TYPE") or "").strip()
    if asked and asked not in TYPES:
        raise ConfigError(f"LIBVIRT_TYPE={asked} is not supported here; use kvm or qemu, or leave "
                          "it unset to let the KVM probe decide")
    if ctx.shared.get("kvm-probe") is None:
        ctx.shared["kvm-probe"] = probe(probe_cache(ctx))
    found = ctx.shared["kvm-probe"]
    if asked == "qemu":
        note = "" if found["type"] == "qemu" else " (the probe found KVM usable)"
        return "qemu", f"qemu: LIBVIRT_TYPE=qemu in the configuration{note}; software emulation"
    if asked == "kvm":
        if found["type"] != "kvm":
            raise ConfigError(f"LIBVIRT_TYPE=kvm, but KVM cannot run an ordinary guest here: "
                              f"{found['reason'].removeprefix('qemu: ')}. Remove LIBVIRT_TYPE (the "
                              "probe then picks qemu) or set LIBVIRT_TYPE=qemu")
        return "kvm", f"kvm: LIBVIRT_TYPE=kvm in the configuration, and {found['reason'][5:]}"
    return found["type"], found["reason"]


def cpu_options(ctx: "Context") -> dict[str, str]:
    """nova-cpu.conf's ``[libvirt]`` CPU options: ``cpu_mode`` and, for ``custom``, ``cpu_models``
    (absent otherwise: Nova refuses cpu_models with another mode, so remove it then).

    devstack's defaults (LIBVIRT_CPU_MODE=custom, LIBVIRT_CPU_MODEL=Nehalem) under kvm and
    whatever the configuration says; under qemu (TCG) host-passthrough and host-model cannot
    work, so custom Nehalem is used with a warning.
    """
    kind, _ = virt_type(ctx)
    mode = ctx.settings.get("LIBVIRT_CPU_MODE") or "custom"
    model = ctx.settings.get("LIBVIRT_CPU_MODEL") or "Nehalem"
    if kind == "qemu" and mode in ("host-passthrough", "host-model"):
        ctx.warn(f"LIBVIRT_CPU_MODE={mode} cannot work under software emulation (virt_type "
                 "qemu); using cpu_mode=custom, cpu_models=Nehalem")
        mode, model = "custom", "Nehalem"
    if mode == "custom":
        return {"cpu_mode": "custom", "cpu_models": model}
    return {"cpu_mode": mode}


def unreachable_by_qemu(path: Path, user: str = "libvirt-qemu") -> Path | None:
    """The first directory on the way to ``path`` that QEMU's account cannot pass through, or
    None. QEMU runs as libvirt-qemu; libvirt hands it the disks and kernels it names (chowning
    the files), but the directories above them must let it through: a stack under a 0700
    directory (pytest's tmp dirs, a home) cannot boot guests from its instances path."""
    import grp
    import pwd

    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return None
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for directory in [*reversed(Path(path).absolute().parents), Path(path).absolute()]:
        try:
            st = directory.stat()
        except OSError:
            return None          # what does not exist yet is made later, by whoever needs it
        if not directory.is_dir():
            continue
        bit = (0o100 if st.st_uid == account.pw_uid else 0o010 if st.st_gid in groups else 0o001)
        if not st.st_mode & bit:
            return directory
    return None


# -- the project ----------------------------------------------------------------------------------
_ACL_BEGIN = "# stackmagic: cgroup_device_acl (devstack's configure_libvirt)"
_ACL_END = "# stackmagic: end"
_ACL = """cgroup_device_acl = [
    "/dev/null", "/dev/full", "/dev/zero",
    "/dev/random", "/dev/urandom",
    "/dev/ptmx", "/dev/kvm", "/dev/kqemu",
    "/dev/rtc", "/dev/hpet", "/dev/net/tun",
    "/dev/vfio/vfio",
]"""
_DEBUG_FILTERS = "1:libvirt 1:qemu 1:conf 1:security 3:object 3:event 3:json 3:file 1:util 1:cpu"


class Libvirt(Project):
    name = "libvirt"
    services = {"virtlogd": "libvirt's log daemon (guest consoles)",
                "libvirtd": "libvirt daemon (QEMU/KVM guests)"}
    provides = {"hypervisor": "start"}
    when_needed = True                  # n-cpu's Need("hypervisor") brings it
    system_packages = (
        "libvirt-daemon-system-sysv", "libvirt-daemon-system",  # sysv together: else apt picks systemd
        "libvirt-clients", "libvirt-daemon-driver-qemu", "qemu-system-x86", "qemu-utils",
        "genisoimage",                  # config drives
        "libvirt-dev", "pkg-config", "gcc",                     # to build libvirt-python
    )
    requirements = ("libvirt-python",)  # built from its sdist against Debian's libvirt

    def available(self, ctx: "Context") -> bool:
        return why_unavailable(ctx) is None

    def packages(self, ctx: "Context") -> tuple[str, ...]:
        """The packages, and Debian's Python headers when the venv's Python has none of its own
        (libvirt-python compiles against them)."""
        include = Path(sysconfig.get_paths()["include"]) / "Python.h"
        return self.system_packages + (() if include.exists() else ("python3-dev",))

    def plan_notes(self, ctx: "Context") -> list[str]:
        """Lines for ``stackmagic plan`` and the summary: the hypervisor type and why."""
        why = why_unavailable(ctx)
        if why is not None:
            return [f"hypervisor: libvirt not available: {why}"]
        try:
            _, reason = virt_type(ctx)
        except ConfigError as err:
            return [f"hypervisor: error: {err}"]
        return [f"hypervisor: libvirt, virt_type {reason}"]

    def conf(self, ctx: "Context") -> Path:
        return ctx.conf_dir("libvirt")

    def configure(self, ctx: "Context") -> None:
        s = ctx.settings
        _, reason = virt_type(ctx)              # a LIBVIRT_TYPE that cannot work stops here
        ctx.log(f"hypervisor: {reason}")
        foreign = foreign_daemons(ctx)
        if foreign:
            service, pid = foreign[0]
            raise StackError(
                f"{service} (pid {pid}) already runs and this stack did not start it (Debian's init "
                f"script starts it when the package is installed where no policy-rc.d forbids "
                f"it). Stop it (/etc/init.d/{service} stop), then run stack again")
        conf = self.conf(ctx)
        debug = s.bool("DEBUG_LIBVIRT", False)
        libvirtd = ['log_outputs="1:stderr"' if debug else 'log_outputs="3:stderr"']
        if debug:
            libvirtd.append(f'log_filters="{_DEBUG_FILTERS}"')
        ctx.write_file(conf / "libvirtd.conf", "# libvirtd -f: written by stackmagic\n"
                       + "\n".join(libvirtd) + "\n")
        ctx.write_file(conf / "virtlogd.conf", "# virtlogd -f: written by stackmagic\n"
                       'log_outputs="3:stderr"\n')
        self._kvm_device(ctx)
        if DEFAULT_NETWORK_AUTOSTART.is_symlink() or DEFAULT_NETWORK_AUTOSTART.exists():
            DEFAULT_NETWORK_AUTOSTART.unlink()
            ctx.log(f"removed {DEFAULT_NETWORK_AUTOSTART}: libvirt's default network (virbr0) "
                    "must never start in the host's namespace")
        neutron = ctx.config.is_service_enabled("q-svc") or ctx.config.is_service_enabled("neutron-api")
        _set_acl(ctx, neutron)

    @staticmethod
    def _kvm_device(ctx: "Context") -> None:
        import grp

        if not KVM_DEVICE.exists():
            return
        try:
            kvm = grp.getgrnam("kvm").gr_gid
        except KeyError:
            return
        st = KVM_DEVICE.stat()
        if st.st_gid != kvm or (st.st_mode & 0o777) != 0o660:
            os.chown(KVM_DEVICE, 0, kvm)
            os.chmod(KVM_DEVICE, 0o660)
            ctx.log("/dev/kvm: group kvm, mode 0660 (as Debian's udev rules make it), so that "
                    "libvirtd keeps its QEMU capability cache instead of probing again at every start")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        conf = self.conf(ctx)
        cwd = ctx.settings.data_dir
        yield Process("virtlogd", [shutil.which("virtlogd") or "/usr/sbin/virtlogd", "-f",
                                   str(conf / "virtlogd.conf")], cwd=cwd, needs_root=True,
                      health=CommandCheck(("virt-admin", "-c", "virtlogd:///system", "version"),
                                          timeout=5),
                      timeout=30)
        argv = [shutil.which("libvirtd") or "/usr/sbin/libvirtd", "-f", str(conf / "libvirtd.conf")]
        if KVM_DEVICE.exists():
            # /dev/kvm is 0600 again after a reboot, and configure does not run again then
            argv = ["/bin/sh", "-c", f"chgrp kvm {KVM_DEVICE} && chmod 0660 {KVM_DEVICE}; "
                    'exec "$0" "$@"', *argv]
        yield Process("libvirtd", argv, cwd=cwd, needs_root=True,
                      after=("virtlogd",), endpoint="qemu:///system",
                      health=CommandCheck(("virsh", "-c", "qemu:///system", "version"), timeout=5),
                      timeout=90, stop_timeout=20)

    def unstack(self, ctx: "Context") -> None:
        """libvirtd leaves its guests running when it stops: stop their qemu processes too."""
        for pid, name in guests():
            ctx.log(f"stopping guest {name} (qemu pid {pid})")
            _stop(pid)

    def cleanup(self, ctx: "Context") -> None:
        shutil.rmtree(self.conf(ctx), ignore_errors=True)
        _set_acl(ctx, False)


DAEMON_PIDFILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}


def foreign_daemons(ctx: "Context") -> list[tuple[str, int]]:
    """(service, pid) of a live virtlogd or libvirtd that this stack did not start: each takes
    its pid file under /run, so a second one cannot start."""
    out = []
    for service, pidfile in DAEMON_PIDFILES.items():
        try:
            pid = int(pidfile.read_text().split()[0])
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except (OSError, ValueError, IndexError):
            continue
        if exe == service and service not in ctx.state.processes:
            out.append((service, pid))
    return out


def remove_domains(ctx: "Context", prefix: str) -> list[str]:
    """Destroy and undefine every domain of libvirtd whose name starts with ``prefix``; the
    names removed. Nothing when this stack's libvirtd does not run."""
    if not ctx.tmux.is_running("libvirtd"):
        return []
    virsh = ["virsh", "-q", "-c", "qemu:///system"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*virsh, *args], capture_output=True, text=True, timeout=60)

    listed = run("list", "--all", "--name")
    if listed.returncode != 0:
        raise StackError(f"virsh list failed: {listed.stderr.strip()}")
    names = [n for n in listed.stdout.split() if n.startswith(prefix)]
    for name in names:
        run("destroy", name)                      # fails harmlessly when it is shut off
        if run("undefine", "--managed-save", "--nvram", name).returncode != 0:
            run("undefine", "--managed-save", name)
    return names


def guests() -> list[tuple[int, str]]:
    """(pid, domain name) of every live qemu that libvirtd started (its pid files)."""
    out = []
    for pidfile in sorted(QEMU_PIDS.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().split()[0])
            exe = os.readlink(f"/proc/{pid}/exe")
        except (OSError, ValueError, IndexError):
            continue
        if os.path.basename(exe).startswith("qemu-system"):
            out.append((pid, pidfile.stem))
    return out


def _stop(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _set_acl(ctx: "Context", wanted: bool) -> None:
    """devstack's cgroup_device_acl in qemu.conf (with /dev/net/tun) while Neutron is enabled."""
    try:
        text = QEMU_CONF.read_text()
    except OSError:
        return
    ours = re.compile(rf"\n?{re.escape(_ACL_BEGIN)}\n.*?{re.escape(_ACL_END)}\n", re.S)
    has = bool(ours.search(text))
    if wanted and not has:
        if re.search(r"^cgroup_device_acl", text, re.M):
            return                       # the administrator set one: theirs stands
        QEMU_CONF.write_text(text.rstrip("\n") + f"\n{_ACL_BEGIN}\n{_ACL}\n{_ACL_END}\n")
        ctx.log(f"{QEMU_CONF}: added devstack's cgroup_device_acl (with /dev/net/tun)")
    elif not wanted and has:
        QEMU_CONF.write_text(ours.sub("\n", text, count=1))
        ctx.log(f"{QEMU_CONF}: removed stackmagic's cgroup_device_acl")
