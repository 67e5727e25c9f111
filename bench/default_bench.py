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

``--fresh-machine PACKAGES`` measures what a fresh machine's first ``stack`` costs: PACKAGES
lists the Debian packages of a fresh machine of this kind (one name per line, or the workplace's
``apt<TAB>name<TAB>version`` lines); the bench first purges the Debian packages the default set
installs that are not among them (with what they alone pulled in), and runs the stack with
empty apt archives, uv and pip caches and FILES, so every .deb, wheel, sdist and guest package
is downloaded again. The packages stay installed afterwards (the stack installs them).

usage: python bench/default_bench.py [--write] [--keep] [--fresh-machine PACKAGES]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compute_bench import CACHE, cold_and_again, guest_stages, rss_table, teardown  # noqa: E402


def fresh_machine(conf: Path, base_list: Path, caches: Path) -> None:
    """Make this machine look fresh to ``stack`` of ``conf`` (see --fresh-machine)."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    base = set()
    for line in base_list.read_text().splitlines():
        fields = line.split("\t")
        name = fields[1] if len(fields) > 1 and fields[0] == "apt" else fields[0].strip()
        base.add(name.split(":")[0])
    engine = Engine(load_config(conf))
    wanted = next(step.inputs(engine.ctx)["packages"] for step in engine.plan().steps
                  if step.id == "packages")
    installed = set(subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n"],
                                   capture_output=True, text=True).stdout.split("\n"))
    purge = [p for p in wanted if p not in base and f"{p} installed" in installed]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if purge:
        t0 = time.perf_counter()
        subprocess.run(["apt-get", "purge", "-y", "-q", "--autoremove", *purge], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"purged {len(purge)} Debian packages (and what they alone pulled in) in "
              f"{time.perf_counter() - t0:.1f} s: {' '.join(purge)}")
    (caches / "apt-archives" / "partial").mkdir(parents=True)
    (caches / "apt.conf").write_text(f'Dir::Cache::Archives "{caches}/apt-archives/";\n')
    os.environ.update(APT_CONFIG=str(caches / "apt.conf"), UV_CACHE_DIR=str(caches / "uv"),
                      PIP_CACHE_DIR=str(caches / "pip"))
    print(f"empty apt archives, uv and pip caches and FILES under {caches}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="keep the memory figures for plan")
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    ap.add_argument("--fresh-machine", type=Path, metavar="PACKAGES",
                    help="first purge the Debian packages a fresh machine lacks; empty caches")
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
    files = root / "caches" / "files" if args.fresh_machine else CACHE / "files"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, "default-bench"),
                               f"FILES={files}", "MIRROR_FROM_PYPI=True", ""]))
    kept = False
    try:
        if args.fresh_machine:
            fresh_machine(conf, args.fresh_machine, root / "caches")
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
