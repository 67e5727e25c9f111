#!/usr/bin/env python3
"""Figures for Open vSwitch and OVN as stackmagic runs them (root only): a sandbox stack of
ovsdb-server, ovs-vswitchd, ovn-northd (with its NB and SB databases) and ovn-controller, with
the datapath the probe picks (the userspace one on these machines, with userspace TSO).

Prints: the cold stack time (after clean) and each start step's time, every daemon's RSS (from
its own pid file), ping round trips and TCP throughput through OVN between two namespaces on one
logical switch, and the same from the provider namespace through br-ex to a port on the public
network (a localnet port), as floating IPs are reached. Everything stays on loopback and in
namespaces made here; unstack --all and clean at the end.

usage: python bench/network_bench.py [--rounds 3] [--megabytes 256]
"""

from __future__ import annotations

import argparse
import json
import re
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

SINK = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9000)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if t0 is None: t0 = time.perf_counter()
    if not b: break
    n += len(b)
print(n, time.perf_counter() - t0, flush=True)
"""
SOURCE = """
import socket, sys
total = int(sys.argv[2]) << 20; chunk = b"x" * (1 << 20)
c = socket.create_connection((sys.argv[1], 9000), timeout=30)
for _ in range(total >> 20): c.sendall(chunk)
c.close()
"""


def sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def rss_mib(pidfile: Path) -> float | None:
    try:
        pid = int(pidfile.read_text().split()[0])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def plug(ns: str, host_end: str, mac: str, cidr: str, bridge: str, vsctl: list[str], iface: str) -> None:
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "link", "set", "dev", host_end, "addrgenmode", "none")
    sh("ip", "link", "set", "dev", host_end, "up")
    sh("ip", "-n", ns, "link", "set", "dev", "eth0", "address", mac)
    sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "dev", "eth0", "up")
    sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
    sh(*vsctl, "add-port", bridge, host_end, "--", "set", "Interface", host_end,
       f"external_ids:iface-id={iface}")


def ping(client_ns: str, address: str, count: int = 20) -> str:
    for _ in range(100):           # the first answer: flows are installed
        if subprocess.run(["ip", "netns", "exec", client_ns, "ping", "-c1", "-W1", address],
                          capture_output=True).returncode == 0:
            break
    out = sh("ip", "netns", "exec", client_ns, "ping", "-q", "-c", str(count), "-i", "0.05", address)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", out)
    return f"min/avg/max {m.group(1)}/{m.group(2)}/{m.group(3)} ms" if m else out


def throughput(client_ns: str, server_ns: str, address: str, megabytes: int) -> str:
    sink = subprocess.Popen(["ip", "netns", "exec", server_ns, sys.executable, "-c", SINK, address],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        sh("ip", "netns", "exec", client_ns, sys.executable, "-c", SOURCE, address, str(megabytes))
        got, seconds = sink.stdout.readline().split()
        wall = time.perf_counter() - t0
    finally:
        sink.kill()
        sink.wait()
    mb = int(got) / (1 << 20)
    return f"{mb:.0f} MiB in {wall:.2f} s: {mb * 8 / float(seconds):.0f} Mbit/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--megabytes", type=int, default=256)
    args = ap.parse_args()
    from stackmagic.catalog import openvswitch as ovs
    from stackmagic.catalog import ovn
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    work = Path(tempfile.mkdtemp(prefix="stackmagic-network-bench-"))
    tag = uuid.uuid4().hex[:6]
    names = {"OVS_BRIDGE": f"bbi{tag}", "PUBLIC_BRIDGE": f"bbe{tag}",
             "PROVIDER_NAMESPACE": f"smbench-provider-{tag}", "PROVIDER_VETH": f"bpv{tag}"}
    conf = work / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]", *sandbox(work, "netbench"), "disable_all_services",
        "enable_service ovsdb-server ovs-vswitchd ovn-northd ovn-controller",
        f"OVS_RUNDIR={work}/run/openvswitch", f"OVN_RUNDIR={work}/run/ovn",
        *(f"{k}={v}" for k, v in names.items())]) + "\n")
    namespaces = [f"smbench-{tag}-{i}" for i in (1, 2, 3)]
    try:
        totals, starts = [], {}
        for _ in range(args.rounds):
            Engine(load_config(conf)).clean()
            t0 = time.perf_counter()
            summary = Engine(load_config(conf)).stack()
            totals.append(time.perf_counter() - t0)
            assert all(s.healthy for s in summary.services), summary.services
            for r in summary.ran:
                if r.phase in ("init", "start", "data"):
                    starts.setdefault(r.step, []).append(r.seconds)
        engine = Engine(load_config(conf))
        ctx = engine.ctx
        kind, why = ovs.datapath(ctx)
        print(f"datapath: {kind} ({why})")
        print(f"cold stack (after clean, packages installed): median {statistics.median(totals):.2f} s "
              f"of {args.rounds}: {', '.join(f'{t:.2f}' for t in totals)}")
        for step, secs in starts.items():
            print(f"  {step:<22} median {statistics.median(secs):.2f} s")
        run_ovs, run_ovn = ovs.rundir(ctx), ovn.rundir(ctx)
        pidfiles = {"ovsdb-server": run_ovs / "ovsdb-server.pid", "ovs-vswitchd": run_ovs / "ovs-vswitchd.pid",
                    "ovn-nb-db": run_ovn / "ovnnb_db.pid", "ovn-sb-db": run_ovn / "ovnsb_db.pid",
                    "ovn-northd": run_ovn / "ovn-northd.pid", "ovn-controller": run_ovn / "ovn-controller.pid"}
        vsctl, nbctl = ovs.vsctl_argv(ctx), ovn.nbctl_argv(ctx)

        ns1, ns2, ns3 = namespaces
        sh(*nbctl, "ls-add", f"bls{tag}")
        for i, ns in ((1, ns1), (2, ns2)):
            sh(*nbctl, "lsp-add", f"bls{tag}", f"blp{tag}{i}", "--", "lsp-set-addresses",
               f"blp{tag}{i}", f"52:54:00:00:00:0{i} 10.77.0.1{i}")
            plug(ns, f"bv{tag}{i}", f"52:54:00:00:00:0{i}", f"10.77.0.1{i}/24", names["OVS_BRIDGE"],
                 vsctl, f"blp{tag}{i}")
        sh(*nbctl, "ls-add", f"bpub{tag}", "--", "lsp-add", f"bpub{tag}", f"bln{tag}", "--",
           "lsp-set-type", f"bln{tag}", "localnet", "--", "lsp-set-addresses", f"bln{tag}", "unknown",
           "--", "lsp-set-options", f"bln{tag}", "network_name=public", "--",
           "lsp-add", f"bpub{tag}", f"blp{tag}3", "--",
           "lsp-set-addresses", f"blp{tag}3", "52:54:00:00:01:10 172.24.4.10")
        plug(ns3, f"bv{tag}3", "52:54:00:00:01:10", "172.24.4.10/24", names["OVS_BRIDGE"], vsctl, f"blp{tag}3")
        print(f"ping through OVN (logical switch, two namespaces): {ping(ns1, '10.77.0.12')}")
        print(f"TCP through OVN (logical switch): {throughput(ns1, ns2, '10.77.0.12', args.megabytes)}")
        provider_ns = names["PROVIDER_NAMESPACE"]
        print(f"ping provider namespace -> public port (br-ex, localnet): {ping(provider_ns, '172.24.4.10')}")
        print(f"TCP provider namespace -> public port: "
              f"{throughput(provider_ns, ns3, '172.24.4.10', args.megabytes)}")
        print("RSS after the traffic:")
        for service, pidfile in pidfiles.items():
            rss = rss_mib(pidfile)
            print(f"  {service:<15} {rss:.1f} MiB" if rss is not None else f"  {service:<15} ?")
    finally:
        for i, ns in enumerate(namespaces, 1):
            subprocess.run(["ip", "link", "del", f"bv{tag}{i}"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        Engine(load_config(conf)).unstack(all=True)
        Engine(load_config(conf)).clean()
        left = json.loads(sh("ip", "-j", "netns", "list") or "[]")
        assert not [n for n in left if n["name"] == names["PROVIDER_NAMESPACE"]]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
