#!/usr/bin/env python3
"""Figures for a service that dies and a stack that restores it (issue: nothing lost, nothing
wedged), on the test suite's echo plugin: real git, venv, tmux and HTTP on loopback.

Prints, in one run: how long after a SIGKILL of the service `status` sees it down (polled every
10 ms), the `stack` that restores it (and the steps it ran), the same after `tmux kill-server`
(status still sees the service, running without a window; stack gives it one back), and a
`stack` with nothing to do, for comparison. Repeated --rounds times; medians.

usage: python bench/restore_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import free_port, make_plugin  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.process_info import alive

    work = Path(tempfile.mkdtemp(prefix="stackmagic-restore-bench-"))
    sock = f"stackmagic-bench-{uuid.uuid4().hex[:8]}"
    repo = make_plugin(1, work / "repos" / "echo1")
    rc = work / "localrc"
    rc.write_text("\n".join([f"DEST={work}/dest", f"DATA_DIR={work}/data", f"LOGDIR={work}/logs",
                             f"TMUX_SOCKET={sock}", "USE_CONSTRAINTS=False", "disable_all_services",
                             f"enable_plugin echo1 {repo.as_uri()}", "enable_service echo1-api",
                             f"ECHO1_PORT={free_port()}"]) + "\n")

    def engine() -> Engine:
        return Engine(load_config(rc))

    def timed_stack() -> tuple[float, list[str]]:
        t0 = time.perf_counter()
        summary = engine().stack()
        return time.perf_counter() - t0, [r.step for r in summary.ran]

    def status() -> dict:
        return {s.service: s for s in engine().status()}

    figures: dict[str, list[float]] = {}
    ran: dict[str, list[str]] = {}
    try:
        timed_stack()
        for _ in range(args.rounds):
            pid = status()["echo1-api"].pid
            os.kill(pid, signal.SIGKILL)
            t0 = time.perf_counter()
            while status()["echo1-api"].running:
                time.sleep(0.01)
            figures.setdefault("SIGKILL -> status sees it down", []).append(time.perf_counter() - t0)
            seconds, ran["stack restores it"] = timed_stack()
            figures.setdefault("stack restores it", []).append(seconds)
            assert status()["echo1-api"].healthy and not alive(pid)

            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=True)
            t0 = time.perf_counter()
            seen = status()["echo1-api"]
            figures.setdefault("status after tmux kill-server (one call)", []).append(time.perf_counter() - t0)
            assert seen.running, seen
            seconds, ran["stack gives the window back"] = timed_stack()
            figures.setdefault("stack gives the window back", []).append(seconds)
            seconds, ran["stack, nothing to do"] = timed_stack()
            figures.setdefault("stack, nothing to do", []).append(seconds)
        width = max(map(len, figures))
        print(f"echo plugin stack, {args.rounds} rounds, medians")
        for what, values in figures.items():
            steps = f"  (ran: {', '.join(ran[what]) or 'nothing'})" if what in ran else ""
            print(f"{what:<{width}}  {statistics.median(values) * 1000:8.1f} ms{steps}")
    finally:
        try:
            engine().unstack(all=True)
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
