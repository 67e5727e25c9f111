#!/usr/bin/env python3
"""Figures for the infrastructure servers of the catalog: rabbit, etcd3 and dstat, in one sandbox
stack of the three (packages already installed).

Prints, per service: the start step's time from an empty DATA_DIR (first boot: RabbitMQ makes its
mnesia database, etcd its member), the time of a restart after a SIGKILL of the service's window
family (the next `stack` notices and restarts it), one health probe, and the resident memory of the
service and its children. Then the nothing-changed re-run and `unstack --all`.

usage: sudo python bench/infra_bench.py [--services rabbit,etcd3,dstat]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.health import from_dict
    from stackmagic.samples import sandbox
    from stackmagic.tmux import family

    parser = argparse.ArgumentParser()
    parser.add_argument("--services", default="rabbit,etcd3,dstat")
    args = parser.parse_args()
    services = args.services.split(",")

    root = Path(tempfile.mkdtemp(prefix="sminfra-", dir="/tmp"))
    root.chmod(0o755)                   # the rabbitmq and etcd accounts enter it
    lines = sandbox(root, f"infra-{uuid.uuid4().hex[:6]}")
    socket_name = next(line.split("=", 1)[1] for line in lines if line.startswith("TMUX_SOCKET="))
    localrc = root / "localrc"
    localrc.write_text("\n".join([*lines, "disable_all_services", f"enable_service {' '.join(services)}"]) + "\n")

    def engine() -> Engine:
        return Engine(load_config(localrc))

    try:
        summary = engine().stack()
        cold = {r.step.removeprefix("start "): r.seconds for r in summary.ran if r.phase == "start"}
        rss = {s.service: s.rss_kib for s in summary.services}

        e = engine()
        restart, probe = {}, {}
        for service in services:
            check = from_dict(e.state.processes[service].health)
            t0 = time.perf_counter()
            check.probe() if check else None
            probe[service] = time.perf_counter() - t0
            for pid in family([e.tmux.pid(service)]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # one stack restarts them all (side by side, as a real restore does)
        time.sleep(0.5)
        again = engine().stack()
        restart = {r.step.removeprefix("start "): r.seconds for r in again.ran if r.phase == "start"}

        t0 = time.perf_counter()
        rerun = engine().stack()
        rerun_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine().unstack(all=True)
        unstack_s = time.perf_counter() - t0

        print(f"{'service':10} {'cold start':>11} {'restart':>9} {'probe':>7} {'RSS':>9}")
        for service in services:
            kib = rss.get(service)
            print(f"{service:10} {cold.get(service, 0):10.1f}s {restart.get(service, 0):8.1f}s "
                  f"{probe[service]:6.2f}s {kib / 1024 if kib else 0:7.0f} MiB")
        print(f"nothing-changed re-run: {rerun_s:.2f} s ({len(rerun.ran)} steps ran)")
        print(f"unstack --all: {unstack_s:.2f} s")
    finally:
        try:
            engine().clean()
        finally:
            subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, check=False)
            Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
