#!/usr/bin/env python3
"""Figures for the notebook front end (issue #5): how long ``%services`` and ``%screen_tail`` take
with K fixture services running (targets: under 150 ms and under 100 ms for K = 25).

Reuses bench/engine_bench.py's generated echo plugins (each a tiny HTTP service on its own port),
stacks them on a tmux socket of its own, then times each magic in a real IPython InteractiveShell
(median and worst of --runs calls), and stops everything at the end.

usage: python bench/magics_bench.py [--plugins 25] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import localrc, make_plugin, run_stack, teardown  # noqa: E402

TARGETS = {"%services": 0.150, "%screen_tail echo1-api -n 20": 0.100}


def time_magic(shell, line: str, runs: int) -> list[float]:
    """Seconds taken by each of ``runs`` calls of the line magic ``line``."""
    name, _, rest = line.lstrip("%").partition(" ")
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        shell.run_line_magic(name, rest)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugins", type=int, default=25)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    from IPython.core.interactiveshell import InteractiveShell

    work = Path(tempfile.mkdtemp(prefix="stackmagic-magics-bench-"))
    os.environ["XDG_STATE_HOME"] = str(work / "xdg")
    sock = f"stackmagic-bench-{uuid.uuid4().hex[:8]}"
    repos = [make_plugin(n, work / "repos" / f"echo{n}") for n in range(1, args.plugins + 1)]
    root = work / "stack"
    root.mkdir()
    rc = localrc(root, repos, sock, 8, 0, "hello")
    try:
        cold, summary = run_stack(rc)
        healthy = sum(1 for s in summary.services if s.healthy)
        print(f"{args.plugins} echo services stacked in {cold:.1f} s, {healthy} healthy")
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "stackmagic")
        shell.run_line_magic("config", f"StackMagics.localrc_path = {str(rc)!r}")
        print(f"{'magic':<32} {'median ms':>10} {'worst ms':>9} {'target ms':>10}")
        for line, target in TARGETS.items():
            times = time_magic(shell, line, args.runs)
            verdict = "ok" if statistics.median(times) < target else "OVER"
            print(f"{line:<32} {statistics.median(times) * 1000:10.1f} {max(times) * 1000:9.1f} "
                  f"{target * 1000:10.0f}  {verdict}")
    finally:
        teardown(rc, sock)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
