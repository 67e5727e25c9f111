"""The stackmagic guest (stackmagic/guest): built from Debian packages, cached by its inputs,
booted under real QEMU with software emulation on Nova's machine type ``pc``.

1. the build, and a second build is a cache hit; a changed input changes the key;
2. a boot with a config drive (ISO 9660, label config-2) and no network device: banner and
   hostname on the serial console, the login prompt, and the ACPI power button powers it off;
3. a boot on a network of its own (a namespace made by the test: tap, dnsmasq with option 121 and
   the MTU, a metadata server on 169.254.169.254): ping, ssh as cirros with the metadata's key,
   ``hostname`` and ``sudo id -u``. The namespace and every process are gone afterwards.

Building needs qemu-utils only (and apt's lists); booting needs root and qemu-system-x86,
genisoimage, dnsmasq-base, openssh-client, iproute2, iputils-ping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stackmagic import guest
from tests.conftest import wait_until
from tests.guest_lab import (
    GUEST_IP,
    MTU,
    Guest,
    Lab,
    config_drive,
    host_tools_missing,
    keypair,
    meta_data,
    monitor,
    overlay,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("qemu-img"), reason="apt-get install qemu-utils"),
]
#: booting needs root (namespaces, taps) and QEMU & co; building does not
needs_lab = [
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and taps need root"),
    pytest.mark.skipif(bool(host_tools_missing()),
                       reason=f"apt-get install {' '.join(host_tools_missing())}"),
]


def lab_test(function):
    for mark in needs_lab:
        function = mark(function)
    return function


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def image(files) -> guest.GuestImage:
    return guest.ensure(files)


def test_build_then_cache_hit(files, image, monkeypatch):
    assert image.built
    assert image.path.read_bytes()[:4] == b"QFI\xfb"                    # a qcow2
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image.path)],
                          capture_output=True, text=True, check=True).stdout
    assert '"format": "qcow2"' in info
    assert not list(image.path.parent.glob(".*.part")), "a temporary file was left behind"
    assert any(p.startswith("linux-image-") and p.endswith("-cloud-amd64") for p in image.packages)

    again = guest.ensure(files)
    assert (again.built, again.path, again.key) == (False, image.path, image.key)
    assert again.seconds < 1

    # apt's lists changed: the versions are asked again (real apt-cache), the same image stands
    monkeypatch.setattr(guest, "_apt_fingerprint", lambda: "lists updated")
    after_update = guest.ensure(files)
    assert (after_update.built, after_update.key) == (False, image.key)
    assert '"lists updated"' in (files / "guest" / "resolved.json").read_text()

    assert guest.cache_key({**image.packages, "busybox-static": "0"}) != image.key


@lab_test
def test_boot_with_config_drive_no_network(image, tmp_path):
    _key, public = keypair(tmp_path)
    # the user data does what Tempest does with a config drive: find it by label and mount it
    user_data = ("#!/bin/sh\nset -eu\ndev=$(blkid -L config-2 -o device)\nsudo mount $dev /mnt\n"
                 "echo \"user-data: $dev $(ls /mnt/openstack/latest | tr '\\n' ' ')\" > /dev/console\n"
                 "sudo umount /mnt\n")
    drive = config_drive(tmp_path, meta_data("cd-guest-7.novalocal", public), user_data)
    vm = Guest(tmp_path, overlay(tmp_path, image.path), drive)
    try:
        assert wait_until(lambda: "login:" in vm.console(), 120), vm.console()[-3000:]
        lines = vm.console().splitlines()
        assert any(guest.BANNER in line and "login as 'cirros'" in line for line in lines)
        # the host part of Nova's hostname (as cirros), on a line of its own
        assert "cd-guest-7" in [line.strip() for line in lines]
        assert "metadata from config drive" in vm.console()
        assert "1 ssh key(s)" in vm.console()
        assert "-----BEGIN SSH HOST KEY KEYS-----" in vm.console()
        assert "cd-guest-7 login:" in vm.console()
        assert wait_until(lambda: "user data exited 0" in vm.console(), 30), vm.console()[-2000:]
        assert "user-data: /dev/sr0 meta_data.json user_data" in vm.console()
        assert vm.qemu.poll() is None
        monitor(vm.monitor, "system_powerdown")                    # nova stop: the power button
        vm.qemu.wait(60)
        assert "shutting down" in vm.console()
    finally:
        vm.close()
    assert vm.qemu.poll() is not None


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


@lab_test
def test_network_dhcp_metadata_ssh(image, tmp_path):
    key, public = keypair(tmp_path)
    host_routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    lab = Lab(tmp_path, meta_data("net-guest-3.novalocal", public))
    with lab:
        assert lab.ns in _namespaces()
        lab.boot(overlay(tmp_path, image.path))
        assert wait_until(lambda: "login:" in lab.console(), 120), lab.console()[-3000:]
        assert f"has {GUEST_IP}/24 mtu {MTU}" in lab.console()
        assert "metadata from http://169.254.169.254/openstack/latest: 1 ssh key(s)" in lab.console()
        assert lab.run("ping", "-c", "1", "-W", "2", GUEST_IP, check=False).returncode == 0

        # as Tempest runs commands (its ssh_shell_prologue)
        got = lab.ssh(key, "set -eu -o pipefail; PATH=$PATH:/sbin; "
                           "hostname; sudo id -u; cat /sys/class/net/eth0/mtu; ip route")
        assert got.returncode == 0, got.stderr
        out = got.stdout.splitlines()
        assert out[:3] == ["net-guest-3", "0", str(MTU)]
        assert any(line.startswith("169.254.169.254 via 10.0.0.1") for line in out), out
        assert any(line.startswith("default via 10.0.0.1") for line in out), out

        # Tempest's checks: curl the metadata service, find the config drive (none here)
        got = lab.ssh(key, "curl http://169.254.169.254/openstack/latest/meta_data.json")
        assert '"hostname": "net-guest-3.novalocal"' in got.stdout

        # Tempest's renew_lease (udhcpc): SIGUSR1 to the pid in /var/run/udhcpc.<nic>.pid
        renew = lab.ssh(key, "sudo /bin/kill -USR1 $(cat /var/run/udhcpc.eth0.pid)")
        assert renew.returncode == 0, renew.stderr
        assert wait_until(lambda: lab.console().count(f"has {GUEST_IP}/24") == 2, 20)
        assert lab.ssh(key, "ip -4 addr show dev eth0").stdout.count(f"inet {GUEST_IP}/24") == 1

        disks = lab.ssh(key, "lsblk -lb --nodeps").stdout.splitlines()   # Tempest's get_disks
        column = disks[0].find("TYPE")
        assert any(d.startswith("vda ") and d[column:column + 4] == "disk" for d in disks), disks

        (tmp_path / "other").mkdir()
        other_key, _ = keypair(tmp_path / "other")
        assert lab.ssh(other_key, "true").returncode != 0              # a key it was not given

        askpass = tmp_path / "askpass"                                  # cirros's password works too
        askpass.write_text(f"#!/bin/sh\necho {guest.LOGIN_PASSWORD}\n")
        askpass.chmod(0o700)
        by_password = subprocess.run(
            lab.argv("ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                     "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                     "-o", "LogLevel=ERROR", f"cirros@{GUEST_IP}", "echo $USER; id -u"),
            env={**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
                 "DISPLAY": ":0"}, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
            check=False)
        assert by_password.stdout.split() == ["cirros", "0"], by_password.stderr
        qemu = lab.qemu
    assert qemu.poll() is not None
    assert all(p.poll() is not None for p in lab.procs)
    assert lab.ns not in _namespaces()
    assert subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout == host_routes


def test_a_changed_input_builds_anew(files, image, monkeypatch):
    """(Last: it replaces the image the other tests boot.)"""
    changed = dict(guest.rootfs_files(), **{"etc/motd": b"changed\n"})
    monkeypatch.setattr(guest, "rootfs_files", lambda: changed)
    rebuilt = guest.ensure(files)
    assert rebuilt.built and rebuilt.key != image.key
    assert rebuilt.path.exists()
    assert not image.path.exists(), "the superseded build was left behind"
    assert sorted(p.name for p in rebuilt.path.parent.iterdir()) == [
        rebuilt.path.with_suffix(".json").name, rebuilt.path.name]
