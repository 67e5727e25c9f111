#!/usr/bin/env python3
"""Figures for Nova (catalog/nova.py), all in one run:

  1. `stackmagic stack` cold (empty DEST and DATA_DIR; pip/uv caches, downloaded sdists and the
     Debian packages warm) of key, placement-api, rabbit and every Nova service, MariaDB,
     VIRT_DRIVER=fake, devstack's superconductor layout, on free ports; the time of each Nova step;
  2. the same `stack` again with nothing changed;
  3. the resident memory of every Nova process (window process and its children: gunicorn
     master + workers, a service and its worker processes).

usage: python bench/nova_bench.py [--single]   (--single: CELLSV2_SETUP=singleconductor)
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
SERVICES = "key placement-api rabbit n-api n-api-meta n-cond n-sch n-cpu n-novnc"


def main() -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    ap = argparse.ArgumentParser()
    ap.add_argument("--single", action="store_true", help="CELLSV2_SETUP=singleconductor")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stackmagic-nova-bench-"))
    root.chmod(0o755)               # MariaDB and RabbitMQ run as their own accounts
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]", *sandbox(root, "novabench"), f"FILES={CACHE}/files",
        "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True", "VIRT_DRIVER=fake",
        *(["CELLSV2_SETUP=singleconductor"] if args.single else []),
        "disable_all_services", f"enable_service {SERVICES}", ""]))
    try:
        t0 = time.perf_counter()
        cold = Engine(load_config(conf)).stack()
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = Engine(load_config(conf)).stack()
        warm_s = time.perf_counter() - t0
        layout = "singleconductor" if args.single else "superconductor"
        print(f"stackmagic stack, cold ({layout})   {cold_s:7.1f} s  ({len(cold.ran)} steps)")
        for phase, secs in cold.by_phase().items():
            print(f"    {phase:<14} {secs:6.1f} s (sum of its steps; they overlap)")
        print("  Nova's steps:")
        for r in cold.ran:
            if r.project == "nova":
                print(f"    {r.step:<24} {r.seconds:6.1f} s")
        print(f"stackmagic stack, nothing changed  {warm_s:7.2f} s  ({len(warm.ran)} steps ran)")
        print("\nresident memory after start (process and its children):")
        print(f"    {'service':<16} {'pid':>7} {'RSS MiB':>8}")
        total = 0.0
        for s in warm.services:
            if s.project != "nova":
                continue
            mib = (s.rss_kib or 0) / 1024
            total += mib
            print(f"    {s.service:<16} {s.pid or 0:>7} {mib:8.0f}")
        print(f"    {'Nova in total':<16} {'':>7} {total:8.0f}")
    finally:
        Engine(load_config(conf)).unstack(all=True)
        sock = load_config(conf).settings["TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{sock}").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
