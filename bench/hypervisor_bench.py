#!/usr/bin/env python3
"""Figures for the hypervisor (stackmagic/catalog/libvirt.py): the KVM probe, libvirtd's start,
libvirt-python's build, and a tiny guest through libvirt. Root only; nothing else may run
libvirtd on the machine meanwhile.

Prints, in one run:
- the probe: uncached (the test guest under -accel kvm, and under TCG when KVM fails), cached,
  and the test guest alone under TCG;
- a sandbox stack whose only project needs the hypervisor (so it brings libvirt): the seconds of
  its steps (install and configure run in the first round only: the venv's install builds
  libvirt-python unless uv's cache has the wheel), then `unstack --all`; --rounds times;
- libvirtd alone from its start to `virsh version` answering, with /dev/kvm as configure leaves
  it (root:kvm 0660) and, with --kvm-0600, as it is without udev (root 0600; put back after);
- libvirt-python built from its sdist into a fresh uv venv, with no cache (--build);
- a guest (a few bytes of multiboot code that print a banner) from `virsh create` to its banner
  on the serial console, and `virsh destroy`.

usage: python bench/hypervisor_bench.py [--rounds 3] [--kvm-0600] [--build]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stackmagic.catalog import libvirt as lv  # noqa: E402
from tests.test_libvirt import BANNER, DOMAIN, GUEST_KERNEL, USER_MODULE  # noqa: E402

VIRSH = ["virsh", "-c", "qemu:///system"]


def median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s" + (f"  (of {len(values)}: "
                                                   + ", ".join(f"{v:.2f}" for v in values) + ")"
                                                   if len(values) > 1 else "")


def bench_probe(work: Path) -> None:
    cache = work / "probe" / "kvm-probe.json"
    t0 = time.perf_counter()
    found = lv.probe(cache)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    lv.probe(cache)
    warm = time.perf_counter() - t0
    image = work / "probe.bin"
    image.write_bytes(lv.probe_image())
    tcg = [lv.run_test_guest("tcg", image)[2] for _ in range(3)]
    print(f"probe, uncached          {cold:6.2f} s  -> {found['type']}")
    print(f"probe, cached            {warm:6.3f} s  (qemu --version and the cache file)")
    print(f"test guest under TCG     {median(tcg)}")
    print(f"  reason: {found['reason']}")


def bench_stack(work: Path, rounds: int) -> None:
    import stackmagic.catalog as catalog
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    folder = work / "catalog"
    folder.mkdir()
    (folder / "fakehvuser.py").write_text(USER_MODULE % {"optional": False})
    catalog.__path__.append(str(folder))
    sock = f"stackmagic-hvbench-{uuid.uuid4().hex[:8]}"
    rc = work / "localrc"
    rc.write_text("\n".join([f"DEST={work}/dest", f"DATA_DIR={work}/data", f"LOGDIR={work}/logs",
                             f"TMUX_SOCKET={sock}", "USE_CONSTRAINTS=False", "disable_all_services",
                             "enable_service fake-hv-user"]) + "\n")
    steps: dict[str, list[float]] = {}
    totals = []
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            summary = Engine(load_config(rc)).stack()
            totals.append(time.perf_counter() - t0)
            for r in summary.ran:
                if r.project == "libvirt" or r.step == "install":
                    steps.setdefault(r.step, []).append(r.seconds)
            Engine(load_config(rc)).unstack(all=True)     # the next round starts them again
    finally:
        try:
            Engine(load_config(rc)).unstack(all=True)
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
            catalog.__path__.remove(str(folder))
    print(f"sandbox stack (fake-hv-user + libvirt), whole   {median(totals)}")
    for step, values in steps.items():
        print(f"  {step:42s} {median(values)}")


def start_libvirtd(conf: Path) -> tuple[float, subprocess.Popen, subprocess.Popen]:
    logd = subprocess.Popen(["virtlogd", "-f", str(conf / "virtlogd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    daemon = subprocess.Popen(["libvirtd", "-f", str(conf / "libvirtd.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while subprocess.run([*VIRSH, "version"], capture_output=True).returncode != 0:
        if daemon.poll() is not None:
            raise SystemExit("libvirtd exited (is another one running?)")
        time.sleep(0.05)
    return time.perf_counter() - t0, daemon, logd


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def bench_daemon(work: Path, rounds: int, kvm_0600: bool) -> None:
    conf = work / "conf"
    conf.mkdir()
    (conf / "libvirtd.conf").write_text('log_outputs="3:stderr"\n')
    (conf / "virtlogd.conf").write_text('log_outputs="3:stderr"\n')
    modes = [("root:kvm 0660", None)]
    if kvm_0600 and lv.KVM_DEVICE.exists():
        modes.append(("root:root 0600", 0o600))
    st = lv.KVM_DEVICE.stat() if lv.KVM_DEVICE.exists() else None
    for label, mode in modes:
        times = []
        try:
            if mode is not None:
                os.chown(lv.KVM_DEVICE, 0, 0)
                os.chmod(lv.KVM_DEVICE, mode)
            for _ in range(rounds):
                seconds, daemon, logd = start_libvirtd(conf)
                times.append(seconds)
                stop(daemon, logd)
        finally:
            if st is not None:
                os.chown(lv.KVM_DEVICE, 0, st.st_gid)
                os.chmod(lv.KVM_DEVICE, st.st_mode & 0o777)
        print(f"libvirtd to virsh version, /dev/kvm {label:15s} {median(times)}")


def bench_guest(work: Path) -> None:
    guest = Path(tempfile.mkdtemp(prefix="stackmagic-hvbench-guest-"))
    guest.chmod(0o711)
    conf = work / "conf"
    _, daemon, logd = start_libvirtd(conf)
    try:
        kernel = guest / "kernel"
        kernel.write_bytes(GUEST_KERNEL)
        kernel.chmod(0o644)
        times, destroy = [], []
        for _ in range(3):
            name = f"stackmagic-hvbench-{uuid.uuid4().hex[:8]}"
            console = guest / f"{name}.log"
            xml = guest / "domain.xml"
            xml.write_text(DOMAIN.format(name=name, kernel=kernel, console=console))
            t0 = time.perf_counter()
            subprocess.run([*VIRSH, "create", str(xml)], capture_output=True, check=True)
            while not (console.exists() and BANNER in console.read_text()):
                time.sleep(0.01)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([*VIRSH, "destroy", name], capture_output=True, check=True)
            destroy.append(time.perf_counter() - t0)
        print(f"virsh create to banner   {median(times)}")
        print(f"virsh destroy            {median(destroy)}")
    finally:
        stop(daemon, logd)
        shutil.rmtree(guest, ignore_errors=True)


def bench_build(work: Path) -> None:
    from stackmagic.python import find_uv

    uv = find_uv()
    if uv is None:
        print("libvirt-python build: no uv")
        return
    venv = work / "buildvenv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    t0 = time.perf_counter()
    subprocess.run([str(uv), "pip", "install", "-q", "--no-cache", "--python", str(venv / "bin" / "python"),
                    "libvirt-python"], check=True)
    seconds = time.perf_counter() - t0
    version = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import libvirt; print(libvirt.getVersion())"],
                             capture_output=True, text=True).stdout.strip()
    print(f"libvirt-python from sdist, no cache  {seconds:6.2f} s  (runs against libvirt {version})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kvm-0600", action="store_true", help="also time libvirtd with /dev/kvm 0600")
    ap.add_argument("--build", action="store_true", help="also time libvirt-python's build")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: libvirtd runs only as root here")
    work = Path(tempfile.mkdtemp(prefix="stackmagic-hvbench-"))
    try:
        bench_probe(work)
        bench_stack(work, args.rounds)
        bench_daemon(work, args.rounds, args.kvm_0600)
        bench_guest(work)
        if args.build:
            bench_build(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
