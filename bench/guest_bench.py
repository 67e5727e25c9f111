#!/usr/bin/env python3
"""Figures for the stackmagic guest (stackmagic/guest): how long its image takes to build from
Debian packages (cold: nothing cached; with the .deb files cached; from the image cache), how big
it is, and how soon a guest booted under plain QEMU with software emulation (machine type pc,
128 MiB) shows its first line, takes DHCP and metadata, prints the banner with its hostname and
answers SSH. The network boots run in a namespace of their own (tests/guest_lab.py); one boot
with a config drive and no network device is timed too. Repeated --rounds times; medians.

Needs root and qemu-system-x86, qemu-utils, genisoimage, dnsmasq-base, openssh-client.

usage: python bench/guest_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stackmagic import guest
from tests.guest_lab import (
    Guest,
    Lab,
    config_drive,
    host_tools_missing,
    keypair,
    meta_data,
    overlay,
)


def until(predicate, timeout: float = 180.0, step: float = 0.02) -> float | None:
    """Seconds until predicate() is true (polled every ``step``), None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


def build_figures(work: Path) -> tuple[guest.GuestImage, dict[str, float]]:
    files = work / "files"
    cold = guest.ensure(files)
    cold_s = cold.seconds
    for leftover in cold.path.parent.glob(f"{cold.path.stem}.*"):
        leftover.unlink()
    warm = guest.ensure(files)                  # the .deb files are cached, the image is not
    cached = guest.ensure(files)
    assert not cached.built
    return cached, {"cold (download + build)": cold_s, "build, .deb files cached": warm.seconds,
                    "cached (image already built)": cached.seconds}


def boot_network(work: Path, image: Path, key: Path, public: str) -> dict[str, float | None]:
    lab = Lab(work, meta_data("bench-guest.novalocal", public))
    with lab:
        t0 = time.monotonic()
        lab.boot(overlay(work, image))
        marks = {}
        for name, text in (("first line of the guest's init", f"{guest.BANNER}: booting"),
                           ("DHCP lease", " has 10.0.0.15/"),
                           ("metadata read", "metadata from http"),
                           ("banner + hostname", "bench-guest.novalocal\n")):
            took = until(lambda t=text: t in lab.console())
            marks[name] = None if took is None else time.monotonic() - t0
        took = until(lambda: lab.ssh(key, "true", timeout=10).returncode == 0, step=0.2)
        marks["SSH answers (ssh true)"] = None if took is None else time.monotonic() - t0
        rss = Path(f"/proc/{_qemu_pid(lab)}/status").read_text() if _qemu_pid(lab) else ""
        marks["qemu RSS MiB"] = next((int(line.split()[1]) / 1024 for line in rss.splitlines()
                                      if line.startswith("VmRSS:")), None)
    return marks


def _qemu_pid(lab: Lab) -> int | None:
    """qemu runs under `ip netns exec`, which execs it: the Popen's pid is qemu's."""
    return lab.qemu.pid if lab.qemu and lab.qemu.poll() is None else None


def boot_config_drive(work: Path, image: Path, public: str) -> dict[str, float | None]:
    drive = config_drive(work, meta_data("bench-cd.novalocal", public))
    disk = overlay(work, image)
    vm = Guest(work, disk, drive)
    try:
        took = until(lambda: "bench-cd.novalocal\n" in vm.console())
        return {"banner + hostname (config drive, no NIC)": took}
    finally:
        vm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = host_tools_missing()
    if missing:
        sys.exit(f"install first: apt-get install {' '.join(missing)}")
    work = Path(tempfile.mkdtemp(prefix="guest-bench-"))
    try:
        image, builds = build_figures(work)
        print("image build (seconds):")
        for name, secs in builds.items():
            print(f"  {name:40s} {secs:6.2f}")
        meta = json.loads(image.path.with_suffix(".json").read_text())
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image.path)],
                                         capture_output=True, text=True, check=True).stdout)
        print("image:")
        print(f"  {image.path.name}: {image.path.stat().st_size / 2**20:.1f} MiB qcow2, "
              f"{info['virtual-size'] / 2**20:.0f} MiB virtual; kernel {meta['kernel']} "
              f"{meta['kernel_bytes'] / 2**20:.1f} MiB, "
              f"initramfs {meta['initrd_bytes'] / 2**20:.1f} MiB")
        rows: dict[str, list[float]] = {}
        failed = 0
        for n in range(args.rounds):
            round_dir = work / f"round{n}"
            round_dir.mkdir()
            key, public = keypair(round_dir)
            net_dir, cd_dir = round_dir / "net", round_dir / "cd"
            net_dir.mkdir()
            cd_dir.mkdir()
            for marks in (boot_network(net_dir, image.path, key, public),
                          boot_config_drive(cd_dir, image.path, public)):
                for name, value in marks.items():
                    if value is None:
                        failed += 1
                    else:
                        rows.setdefault(name, []).append(value)
        print(f"boot under qemu -accel tcg -machine pc, 128 MiB (seconds from qemu start; "
              f"median of {args.rounds}):")
        for name, values in rows.items():
            unit = "" if "MiB" in name else " s"
            print(f"  {name:42s} {statistics.median(values):6.1f}{unit}   "
                  f"(min {min(values):.1f}, max {max(values):.1f})")
        if failed:
            print(f"  {failed} mark(s) never reached (timed out)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
