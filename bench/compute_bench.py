#!/usr/bin/env python3
"""Figures for the reachable-guest stack (issue 10), in one run, next to the quickstart:

  1. `stackmagic stack --sample quickstart`, cold (empty DEST/DATA_DIR; pip/uv caches, Debian
     packages and the guest image's .debs warm), on free ports;
  2. `stackmagic stack` of the compute sample (Keystone, Glance, Placement, RabbitMQ, MariaDB,
     Nova on libvirt/QEMU, OVS/OVN, Neutron), cold the same way, and the time of each phase;
  3. the same again with nothing changed;
  4. a real guest (verify's guest check): create -> ACTIVE -> banner on the console -> ping ->
     SSH, each in seconds from the create call;
  5. the resident memory of every service (process and its children) and of the guest's qemu.

Root only (libvirtd, OVS). The quickstart runs in its own sandbox; the compute stack uses the
machine's one libvirtd and Open vSwitch, so nothing else may run them meanwhile.

usage: python bench/compute_bench.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path.home() / ".cache" / "stackmagic-bench"


def conf_for(root: Path, sample: str) -> Path:
    from stackmagic.samples import sample_path, sandbox

    conf = root / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, sample), f"FILES={CACHE}/files",
                               f"source {sample_path(sample)}", ""]))
    return conf


def timed_stack(conf: Path):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    t0 = time.perf_counter()
    summary = Engine(load_config(conf)).stack()
    return time.perf_counter() - t0, summary


def teardown(conf: Path, root: Path) -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    engine = Engine(load_config(conf))
    engine.unstack(all=True)
    engine.clean()
    sock = load_config(conf).settings["TMUX_SOCKET"]
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def rss_table(services) -> None:
    print(f"    {'service':<32} {'pid':>7} {'RSS MiB':>8}")
    total = 0.0
    for s in services:
        mib = (s.rss_kib or 0) / 1024
        total += mib
        print(f"    {s.service:<32} {s.pid or 0:>7} {mib:8.0f}")
    print(f"    {'total':<32} {'':>7} {total:8.0f}")


def cold_and_again(conf: Path, label: str, slowest: int = 8):
    """``stack`` cold then with nothing changed, printing the times, phases and slowest steps."""
    secs, cold = timed_stack(conf)
    print(f"{label + ', cold':<41}{secs:7.1f} s  ({len(cold.ran)} steps)")
    for phase, phase_secs in cold.by_phase().items():
        print(f"    {phase:<14} {phase_secs:6.1f} s (sum of its steps; they overlap)")
    for result in sorted(cold.ran, key=lambda r: -r.seconds)[:slowest]:
        print(f"    slowest: {result.step:<40} {result.seconds:6.1f} s")
    unhealthy = [s.service for s in cold.services if not s.healthy]
    print(f"    services: {len(cold.services)}, unhealthy: {unhealthy or 'none'}")
    secs, warm = timed_stack(conf)
    print(f"{label + ', nothing changed':<41}{secs:7.2f} s  ({len(warm.ran)} steps ran)")
    return cold, warm


def guest_stages(conf: Path) -> dict:
    """verify's guest check, each stage in seconds from the create call."""
    from stackmagic import guestcheck
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    found = guestcheck.run(Engine(load_config(conf)))
    print(f"guest check ({'ok' if found['ok'] else 'FAILED'}), from the create call:")
    for stage in found["stages"]:
        print(f"    {stage['stage']:<12} {stage['seconds']:6.1f} s {'' if stage['ok'] else stage}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true", help="leave the compute stack running")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("compute_bench: run as root (libvirtd and Open vSwitch run as root)")
    CACHE.mkdir(parents=True, exist_ok=True)

    quick = Path(tempfile.mkdtemp(prefix="sm-bench-quick-"))
    qconf = conf_for(quick, "quickstart")
    try:
        secs, summary = timed_stack(qconf)
        print(f"quickstart, cold                         {secs:7.1f} s  ({len(summary.ran)} steps)")
    finally:
        teardown(qconf, quick)

    # not 0700 like mkdtemp makes it: rabbitmq and qemu run as their own users and must enter it
    root = Path(tempfile.mkdtemp(prefix="sm-bench-compute-"))
    root.chmod(0o755)
    conf = conf_for(root, "compute")
    kept = False
    try:
        _, warm = cold_and_again(conf, "compute sample")
        found = guest_stages(conf)
        print("\nresident memory after start (process and its children):")
        rss_table(warm.services)
        ssh = next((st for st in found["stages"] if st["stage"] == "ssh"), {})
        print(f"    {'qemu of the guest':<32} {'':>7} {ssh.get('qemu_rss_mib') or 0:8.0f}")
        kept = args.keep
        if kept:
            print(f"\nkept running: stackmagic status -c {conf}")
    finally:
        if not kept:
            teardown(conf, root)


if __name__ == "__main__":
    main()
