#!/usr/bin/env python3
"""Figures for Neutron's two layouts (issue 11), in one run, side by side:

  1. the seed post's first localrc (its two lines on devstack's defaults: ML2/Open vSwitch with
     q-agt, q-dhcp, q-l3, q-meta), plus what this machine needs, cold (empty DEST/DATA_DIR;
     pip/uv caches, Debian packages and the guest image warm);
  2. the same services with devstack's default layout (ML2/OVN: ovn-northd, ovn-controller,
     q-ovn-agent), cold the same way;
  3. for each: a real guest (verify's guest check) from the create call to ACTIVE, banner,
     ping and SSH through a floating IP; and the resident memory of every Neutron process
     (process and children: dnsmasq and haproxy count with the agent that started them only
     when they are its children, so the namespaces' processes are listed apart).

Root only (libvirtd, OVS); nothing else may run them meanwhile.

usage: python bench/agents_bench.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compute_bench import CACHE, teardown  # noqa: E402  (the same caches and teardown)

#: beside the post's lines: what this machine needs, and what these figures do not need
MACHINE = ["MIRROR_FROM_PYPI=True", "disable_service c-sch c-api c-vol horizon tempest"]
NEUTRON = ("q-svc", "neutron-rpc-server", "neutron-periodic-workers", "neutron-ovn-maintenance-worker",
           "q-agt", "q-dhcp", "q-l3", "q-meta", "q-ovn-agent", "ovn-nb-db", "ovn-sb-db", "ovn-northd",
           "ovn-controller", "ovsdb-server", "ovs-vswitchd")


def conf_for(root: Path, agents: bool) -> Path:
    from stackmagic.samples import sample_path, sandbox

    post = [f"source {sample_path('blog-neutron')}"] if agents else []
    conf = root / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(root, "agents-bench"), f"FILES={CACHE}/files",
                               *post, *MACHINE, ""]))
    return conf


def in_namespaces(prefixes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(namespace, command, RSS MiB) of every process in our qdhcp-/qrouter-/ovnmeta- namespaces."""
    out = []
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    for line in names:
        ns = line.split(" ")[0]
        if not ns.startswith(prefixes):
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                rss = next(int(l.split()[1]) for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if l.startswith("VmRSS:"))
            except (OSError, StopIteration, ValueError):
                continue
            out.append((ns.split("-")[0], comm, rss // 1024))
    return out


def one(agents: bool) -> None:
    from stackmagic import guestcheck
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    label = "agents (ML2/Open vSwitch)" if agents else "OVN (ML2/OVN)"
    root = Path(tempfile.mkdtemp(prefix="sm-bench-agents-"))
    root.chmod(0o755)                     # rabbitmq and qemu run as their own users
    conf = conf_for(root, agents)
    try:
        t0 = time.perf_counter()
        summary = Engine(load_config(conf)).stack()
        print(f"{label}: cold stack {time.perf_counter() - t0:7.1f} s ({len(summary.ran)} steps)")
        t0 = time.perf_counter()
        found = guestcheck.run(Engine(load_config(conf)))
        stages = ", ".join(f"{st['stage']} {st['seconds']:.1f}" for st in found["stages"])
        print(f"    guest {'ok' if found['ok'] else 'FAILED'}: {stages} s from the create call")
        services = {s.service: s for s in Engine(load_config(conf)).status()}
        total = 0.0
        for name in NEUTRON:
            if name in services and services[name].rss_kib:
                mib = services[name].rss_kib / 1024
                total += mib
                print(f"    {name:<32} {mib:6.0f} MiB")
        for ns, comm, mib in in_namespaces(("qdhcp-", "qrouter-", "ovnmeta-")):
            total += mib
            print(f"    {comm + ' in ' + ns + '-*':<32} {mib:6.0f} MiB")
        print(f"    {'network total':<32} {total:6.0f} MiB")
    finally:
        teardown(conf, root)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("agents_bench: run as root (libvirtd and Open vSwitch run as root)")
    CACHE.mkdir(parents=True, exist_ok=True)
    one(agents=True)
    one(agents=False)


if __name__ == "__main__":
    main()
