#!/usr/bin/env python3
"""Figures for the seed post's "everything" localrc next to devstack's default set (issue 13),
in one run, each stack cold on free ports with the caches warm (pip/uv, Debian packages, FILES):

  1. the default set (an empty localrc plus MIRROR_FROM_PYPI): cold ``stack``, the resident
     memory of every service, unstack;
  2. the post's everything localrc (``stackmagic/samples/blog-everything.localrc`` with
     MIRROR_FROM_PYPI, Cinder's backing file at the defaults' size as the tests run it): cold
     ``stack``, again with nothing changed (the post's RECLONE=yes fetches and resets every
     checkout on each run), the memory of every service;
  3. side by side: seconds, services, total RSS, and the post's "8 GB for everything".

Root only (libvirtd, OVS); nothing else may run them meanwhile.

usage: python bench/everything_bench.py [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compute_bench import CACHE, rss_table, teardown, timed_stack  # noqa: E402

#: what the everything stack adds to the post's lines (tests/default_cloud.py's ADDED, the same)
EVERYTHING = ["VOLUME_BACKING_FILE_SIZE=30G"]


def measure(label: str, added: list[str], *, again: bool) -> dict:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    root = Path(tempfile.mkdtemp(prefix=f"sm-bench-{label}-"))
    root.chmod(0o755)               # rabbitmq and qemu run as their own users
    conf = root / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, label), f"FILES={CACHE}/files",
                               "MIRROR_FROM_PYPI=True", *added, ""]))
    try:
        secs, cold = timed_stack(conf)
        sick = [s.service for s in cold.services if not s.healthy]
        print(f"\n{label}, cold: {secs:.1f} s ({len(cold.ran)} steps; {len(cold.services)} services, "
              f"unhealthy: {sick or 'none'})")
        for result in sorted(cold.ran, key=lambda r: -r.seconds)[:6]:
            print(f"    slowest: {result.step:<40} {result.seconds:6.1f} s")
        out = {"cold": secs, "services": len(cold.services)}
        if again:
            secs, warm = timed_stack(conf)
            print(f"{label}, nothing changed: {secs:.2f} s ({len(warm.ran)} steps ran)")
            out["again"] = secs
        services = Engine(load_config(conf)).status()
        print(f"{label}: resident memory (process and its children):")
        rss_table(services)
        out["rss"] = {s.service: (s.rss_kib or 0) / 1024 for s in services if s.rss_kib}
        return out
    finally:
        teardown(conf, root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="keep the new services' memory figures for plan")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("everything_bench: run as root (libvirtd and Open vSwitch run as root)")
    from stackmagic import memory
    from stackmagic.samples import sample_path

    CACHE.mkdir(parents=True, exist_ok=True)
    default = measure("default", [], again=False)
    everything = measure("everything", [f"source {sample_path('blog-everything')}", *EVERYTHING],
                         again=True)
    print("\n                          default set   everything")
    print(f"cold stack, s             {default['cold']:11.1f}   {everything['cold']:10.1f}")
    print(f"services                  {default['services']:11d}   {everything['services']:10d}")
    d, e = sum(default["rss"].values()), sum(everything["rss"].values())
    print(f"RSS total, MiB            {d:11.0f}   {e:10.0f}   (the post: 8 GB = 8192 MiB)")
    added = {k: v for k, v in everything["rss"].items() if k not in default["rss"]}
    print(f"the everything stack's own services: {sum(added.values()):.0f} MiB: "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(added.items(), key=lambda kv: -kv[1])))
    if args.write:
        print(f"wrote {memory.write(added)}")


if __name__ == "__main__":
    main()
