#!/usr/bin/env python3
"""Figures for Cinder (catalog/cinder.py), all in one run, as root:

  1. `stackmagic stack` cold (empty DEST and DATA_DIR; pip/uv caches, downloaded sdists and the
     Debian packages warm) of key, MariaDB, rabbit, etcd3 and c-api, c-sch, c-vol (``--backup``
     adds c-bak), on free ports, with devstack's VOLUME_BACKING_FILE_SIZE; the time of each of
     Cinder's steps;
  2. the same `stack` again with nothing changed;
  3. `unstack` (which unmounts and detaches the backing file) and `stack` again;
  4. the resident memory of every Cinder process (window process and its children: gunicorn
     master + workers, a service and its privsep helper);
  5. the time from `volume create --size 1` to available.

usage: python bench/cinder_bench.py [--backup]
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


def timed(what):
    t0 = time.perf_counter()
    result = what()
    return result, time.perf_counter() - t0


def main() -> None:
    import openstack.config
    from openstack.connection import Connection

    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    ap = argparse.ArgumentParser()
    ap.add_argument("--backup", action="store_true", help="run c-bak too")
    args = ap.parse_args()
    services = "key mysql rabbit etcd3 c-api c-sch c-vol" + (" c-bak" if args.backup else "")
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stackmagic-cinder-bench-"))
    root.chmod(0o755)               # MariaDB, RabbitMQ and etcd run as their own accounts
    localrc = root / "localrc"
    localrc.write_text("\n".join([*sandbox(root, "cinderbench"), f"FILES={CACHE}/files",
                                  "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
                                  "disable_all_services", f"enable_service {services}", ""]))
    stack = lambda: Engine(load_config(localrc)).stack()  # noqa: E731
    try:
        cold, cold_s = timed(stack)
        warm, warm_s = timed(stack)
        _, down_s = timed(lambda: Engine(load_config(localrc)).unstack())
        again, again_s = timed(stack)
        print(f"stackmagic stack, cold              {cold_s:7.1f} s  ({len(cold.ran)} steps)")
        for phase, secs in cold.by_phase().items():
            print(f"    {phase:<14} {secs:6.1f} s (sum of its steps; they overlap)")
        print("  Cinder's steps:")
        for r in cold.ran:
            if r.project == "cinder" or r.step == "clone cinder":
                print(f"    {r.step:<24} {r.seconds:6.1f} s")
        print(f"stackmagic stack, nothing changed   {warm_s:7.2f} s  ({len(warm.ran)} steps ran)")
        print(f"stackmagic unstack                  {down_s:7.2f} s  (unmounts, detaches)")
        print(f"stackmagic stack after unstack      {again_s:7.1f} s  ({len(again.ran)} steps ran: "
              + ", ".join(r.step for r in again.ran if r.project == "cinder") + ")")
        print("\nresident memory after start (process and its children):")
        print(f"    {'service':<16} {'pid':>7} {'RSS MiB':>8}")
        total = 0.0
        for s in again.services:
            if s.project == "cinder":
                mib = (s.rss_kib or 0) / 1024
                total += mib
                print(f"    {s.service:<16} {s.pid or 0:>7} {mib:8.0f}")
        print(f"    {'Cinder in total':<16} {'':>7} {total:8.0f}")
        config = openstack.config.OpenStackConfig(config_files=[str(root / "clouds.yaml")])
        bs = Connection(config=config.get_one(cloud="devstack-admin")).block_storage
        t0 = time.perf_counter()
        volume = bs.create_volume(size=1, name="bench")
        while bs.get_volume(volume.id).status != "available":
            time.sleep(0.1)
        print(f"\nvolume create --size 1 -> available {time.perf_counter() - t0:7.2f} s")
        backing = root / "data" / "stack-volumes-nfs-backing-file"
        if backing.exists():
            print(f"backing file {backing.stat().st_size >> 30} GiB apparent, "
                  f"{backing.stat().st_blocks * 512 >> 20} MiB on disk")
    finally:
        Engine(load_config(localrc)).clean()
        sock = load_config(localrc).settings["TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{sock}").unlink(missing_ok=True)
        if (root / "data" / "stackmagic" / "cinder-backing.json").exists():
            print(f"kept {root}: something there is still mounted (see its record)")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
