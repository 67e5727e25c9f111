"""A contained place to boot the stackmagic guest under plain QEMU (software emulation), shared by
tests/test_guest.py and bench/guest_bench.py.

``Lab`` makes a network namespace of its own (``sm-guest-test-<random>``) holding a tap with the
gateway address 10.0.0.1 and the metadata address 169.254.169.254, dnsmasq serving DHCP there
(option 121: the route to the metadata address; option 26: the MTU), a small HTTP server on
169.254.169.254:80 serving ``openstack/latest/meta_data.json``, and qemu attached to the tap.
Nothing touches the host's own namespace; ``close()`` stops every process it started (by pid)
and deletes the namespace. Needs root (namespaces, taps).
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

GATEWAY = "10.0.0.1"
GUEST_IP = "10.0.0.15"
GUEST_MAC = "fa:16:3e:00:00:15"
METADATA_IP = "169.254.169.254"
MTU = 1400


def host_tools_missing() -> list[str]:
    """Debian packages the lab needs that are not installed."""
    need = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
            "genisoimage": "genisoimage", "dnsmasq": "dnsmasq-base", "ssh": "openssh-client",
            "ssh-keygen": "openssh-client", "ip": "iproute2", "ping": "iputils-ping"}
    return sorted({pkg for cmd, pkg in need.items() if not shutil.which(cmd)})


def keypair(directory: Path) -> tuple[Path, str]:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@stackmagic",
                    "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def meta_data(hostname: str, public_key: str) -> dict:
    """Like Nova's openstack/latest/meta_data.json (the parts a guest reads)."""
    return {"uuid": "6f9a1c2e-0000-4000-8000-000000000001", "name": hostname.split(".")[0],
            "hostname": hostname, "launch_index": 0, "availability_zone": "nova",
            "project_id": "0" * 32, "devices": [],
            "keys": [{"name": "test", "type": "ssh", "data": public_key + "\n"}],
            "public_keys": {"test": public_key + "\n"}}


def config_drive(directory: Path, meta: dict, user_data: str | None = None) -> Path:
    """An ISO 9660 config drive labelled config-2, as Nova's genisoimage call makes it."""
    tree = directory / "config-drive"
    (tree / "openstack/latest").mkdir(parents=True)
    (tree / "openstack/latest/meta_data.json").write_text(json.dumps(meta))
    if user_data is not None:
        (tree / "openstack/latest/user_data").write_text(user_data)
    iso = directory / "config-drive.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-V", "config-2", "-J", "-R",
                    "-ldots", "-allow-lowercase", "-allow-multidot", "-l", str(tree)],
                   check=True, capture_output=True)       # (it warns about the relaxed names)
    return iso


def overlay(directory: Path, image: Path) -> Path:
    disk = directory / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2",
                    str(disk)], check=True)
    return disk


def qemu_argv(disk: Path, serial: Path, monitor: Path, *, config_drive: Path | None = None,
              tap: str | None = None, memory: int = 128) -> list[str]:
    """Nova's shape of a guest on machine type pc: virtio disk, config drive on the IDE cdrom."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-cpu", "Nehalem",
            "-m", str(memory), "-smp", "1", "-nodefaults", "-vga", "std", "-display", "none",
            "-no-reboot", "-serial", f"file:{serial}",
            "-monitor", f"unix:{monitor},server=on,wait=off",
            "-drive", f"file={disk},if=virtio,format=qcow2",
            "-device", "virtio-rng-pci"]
    if config_drive:
        argv += ["-drive", f"file={config_drive},media=cdrom,if=ide,format=raw,readonly=on"]
    if tap:
        argv += ["-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=net0,mac={GUEST_MAC}"]
    else:
        argv += ["-nic", "none"]
    return argv


def monitor(path: Path, command: str) -> None:
    """One command to qemu's human monitor (e.g. system_powerdown: the ACPI power button)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        time.sleep(0.1)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Lab:
    """A namespace with DHCP, metadata and a tap for one guest; use as a context manager."""

    def __init__(self, directory: Path, meta: dict) -> None:
        self.dir = directory
        self.ns = f"sm-guest-test-{secrets.token_hex(4)}"
        self.tap = "tap-guest"
        self.meta = meta
        self.procs: list[subprocess.Popen] = []
        self.serial = directory / "serial.log"
        self.monitor = directory / "monitor.sock"
        self.qemu: subprocess.Popen | None = None

    # -- in the namespace --------------------------------------------------------------------
    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(self, *argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=timeout,
                              check=check)

    def spawn(self, *argv: str, log: str) -> subprocess.Popen:
        out = open(self.dir / log, "wb")
        proc = subprocess.Popen(self.argv(*argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        out.close()
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Lab:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "tuntap", "add", "dev", self.tap, "mode", "tap")
        self.run("ip", "addr", "add", f"{GATEWAY}/24", "dev", self.tap)
        self.run("ip", "addr", "add", f"{METADATA_IP}/32", "dev", self.tap)
        self.run("ip", "link", "set", self.tap, "up")
        www = self.dir / "www" / "openstack" / "latest"
        www.mkdir(parents=True)
        (www / "meta_data.json").write_text(json.dumps(self.meta))
        self.dnsmasq = self.spawn(
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
            f"--interface={self.tap}", "--bind-interfaces", "--log-dhcp", "--log-facility=-",
            f"--dhcp-leasefile={self.dir / 'leases'}",
            f"--dhcp-range={GUEST_IP},{GUEST_IP},255.255.255.0,1h",
            f"--dhcp-host={GUEST_MAC},{GUEST_IP}",
            f"--dhcp-option=121,{METADATA_IP}/32,{GATEWAY},0.0.0.0/0,{GATEWAY}",
            f"--dhcp-option=26,{MTU}", log="dnsmasq.log")
        self.http = self.spawn("python3", "-m", "http.server", "--bind", METADATA_IP,
                               "--directory", str(self.dir / "www"), "80", log="metadata.log")

    def boot(self, disk: Path, **kwargs) -> subprocess.Popen:
        self.qemu = self.spawn(*qemu_argv(disk, self.serial, self.monitor, tap=self.tap, **kwargs),
                               log="qemu.log")
        return self.qemu

    def console(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def ssh(self, key: Path, command: str, *, timeout: float = 20) -> subprocess.CompletedProcess:
        return self.run("ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                        "-o", "LogLevel=ERROR", f"cirros@{GUEST_IP}", command,
                        timeout=timeout, check=False)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)


class Guest:
    """The guest with no network: qemu in the host's namespace but with no NIC at all."""

    def __init__(self, directory: Path, disk: Path, drive: Path | None) -> None:
        self.dir = directory
        self.serial = directory / "serial.log"
        self.monitor = directory / "monitor.sock"
        out = open(directory / "qemu.log", "wb")
        self.qemu = subprocess.Popen(qemu_argv(disk, self.serial, self.monitor, config_drive=drive),
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

    def console(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def close(self) -> None:
        stop(self.qemu)
