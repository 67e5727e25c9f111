#!/usr/bin/env python3
"""Figures for the first-tier stack (issue: real OpenStack, first tier), all in one run:

  1. bench/plain_stack.sh — a plain sequential shell script doing the same installs, db syncs,
     starts, accounts and image upload — with pip (what devstack uses) and with uv;
  2. `stackmagic stack` of the quickstart sample, cold (empty DEST and DATA_DIR; the pip/uv
     caches and the downloaded sdists are warm), on free ports;
  3. the same `stack` again with nothing changed;
  4. the resident memory of every service process after start (process and its children).

usage: python bench/stack_bench.py [--skip-plain]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path.home() / ".cache" / "stackmagic-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain(installer: str) -> tuple[float, str]:
    ports = ",".join(str(free_port()) for _ in range(3))
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(ROOT / "bench" / "plain_stack.sh"), "--installer", installer,
                           "--ports", ports], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return seconds, "FAILED: " + (proc.stdout + proc.stderr)[-600:]
    phases = [line for line in proc.stdout.splitlines() if re.search(r"\d+(\.\d+)? ?s\b", line)]
    return seconds, "\n".join("    " + p for p in phases[-12:])


def stackmagic_runs() -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sample_path, sandbox

    root = Path(tempfile.mkdtemp(prefix="stackmagic-bench-"))
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]", *sandbox(root, "bench"), f"FILES={CACHE}/files",
        f"source {sample_path('quickstart')}", ""]))
    try:
        t0 = time.perf_counter()
        cold = Engine(load_config(conf)).stack()
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = Engine(load_config(conf)).stack()
        warm_s = time.perf_counter() - t0
        print(f"stackmagic stack, cold (quickstart)        {cold_s:7.1f} s  ({len(cold.ran)} steps)")
        for phase, secs in cold.by_phase().items():
            print(f"    {phase:<14} {secs:6.1f} s (sum of its steps; they overlap)")
        print(f"stackmagic stack, nothing changed          {warm_s:7.2f} s  ({len(warm.ran)} steps ran)")
        print("\nresident memory after start (process and its children):")
        print(f"    {'service':<16} {'pid':>7} {'RSS MiB':>8}")
        total = 0
        for s in warm.services:
            mib = (s.rss_kib or 0) / 1024
            total += mib
            print(f"    {s.service:<16} {s.pid or 0:>7} {mib:8.0f}")
        print(f"    {'total':<16} {'':>7} {total:8.0f}")
    finally:
        Engine(load_config(conf)).unstack(all=True)
        sock = load_config(conf).settings["TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-plain", action="store_true")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    if not args.skip_plain:
        for installer in ("pip", "uv"):
            secs, detail = plain(installer)
            print(f"plain_stack.sh --installer {installer:<4}            {secs:7.1f} s")
            print(detail)
    stackmagic_runs()


if __name__ == "__main__":
    main()
