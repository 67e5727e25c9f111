#!/usr/bin/env python3
"""Figures for devstack's default set from an empty localrc (issue 12), in one run:

  1. `stack` of an empty localrc (plus MIRROR_FROM_PYPI, the sources from PyPI), cold: empty
     DEST/DATA_DIR, with pip/uv caches, Debian packages and the guest image's .debs warm, on
     free ports; the time of each phase and the slowest steps;
  2. the same again with nothing changed;
  3. verify's guest (key pair, ACTIVE, console, floating IP, ping, SSH, a Cinder volume seen
     inside), each stage in seconds from the create call;
  4. the resident memory of every service (process and its children) and the total.

``--write`` keeps the per-service memory in ``stackmagic/catalog/memory.txt``, which ``plan``
reads for its estimate. Root only (libvirtd, OVS); nothing else may run them meanwhile.

usage: python bench/default_bench.py [--write] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compute_bench import CACHE, cold_and_again, guest_stages, rss_table, teardown  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="keep the memory figures for plan")
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("default_bench: run as root (libvirtd and Open vSwitch run as root)")
    from stackmagic import memory
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="sm-bench-default-"))
    root.chmod(0o755)               # rabbitmq and qemu run as their own users
    conf = root / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, "default-bench"),
                               f"FILES={CACHE}/files", "MIRROR_FROM_PYPI=True", ""]))
    kept = False
    try:
        cold_and_again(conf, "empty localrc", slowest=10)
        guest_stages(conf)
        services = Engine(load_config(conf)).status()
        print("\nresident memory after the guest check (process and its children):")
        rss_table(services)
        if args.write:
            path = memory.write({s.service: (s.rss_kib or 0) / 1024 for s in services if s.rss_kib})
            print(f"\nwrote {path}")
        kept = args.keep
        if kept:
            print(f"\nkept running: stackmagic status -c {conf}")
    finally:
        if not kept:
            teardown(conf, root)


if __name__ == "__main__":
    main()
