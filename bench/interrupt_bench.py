#!/usr/bin/env python3
"""Figures for interrupts and kills (issue 16): how fast SIGINT stops a running ``stack``, and
how long the next ``stack`` takes to finish the job, at a moment of every phase.

Uses the fault suite's fixture stack (tests/test_interrupts.py: the echo plugin plus echo-extra,
``$ECHO_SLOW`` making one phase wait in a command of ECHO_SLOW_SECONDS). For each phase and
signal: a fresh stack in a tmp dir is started with ``python -m stackmagic stack``; at the moment
the phase waits, the process alone gets SIGINT (as the notebook's stop button sends) or SIGKILL;
then ``stack`` runs again without the slow phase. Printed per case:

  stop s      signal -> exit of the interrupted stack (SIGINT only)
  resume s    wall time of the next stack
  resume      its exit status and how many steps it ran / skipped
  after       processes of the interrupted run still there 0.5 s after it exited
  left        ... and after the resume

``--code DIR`` runs the stackmagic package found in DIR (e.g. /work/main for the code before
this change); the fixtures always come from this checkout.

usage: python bench/interrupt_bench.py [--code DIR] [--phases clone,install,...] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURES, StackDir, make_repo, wait_until  # noqa: E402
from tests.test_interrupts import STEPS, at_the_moment, leftovers, prepare, slow_env  # noqa: E402


def one(code: Path, phase: str, sig: int, seconds: float, work: Path, repo: Path) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"{phase}-", dir=work))
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    sd = StackDir(root, repo.as_uri(), uv_cache)
    prepare(sd)
    cli = [sys.executable, "-m", "stackmagic", "stack", "--config", str(sd.localrc)]
    base = {**os.environ, "PYTHONPATH": str(code), "XDG_STATE_HOME": str(root / "xdg")}
    env = {**slow_env(sd, repo, phase), "PYTHONPATH": str(code), "ECHO_SLOW_SECONDS": f"{seconds:g}"}
    row: dict = {"phase": phase, "signal": signal.Signals(sig).name}
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        if not wait_until(lambda: at_the_moment(sd, phase) or proc.poll() is not None, timeout=180) \
                or proc.poll() is not None:
            row["error"] = "never reached the phase"
            return row
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=120)
        row["stop"] = time.monotonic() - sent
        row["rc"] = proc.returncode
        time.sleep(0.5)                   # what is still there half a second after the exit
        row["after"] = len(leftovers(sd))
        t0 = time.monotonic()
        again = subprocess.run(cli, capture_output=True, text=True, env=base, timeout=600)
        row["resume"] = time.monotonic() - t0
        row["resume_rc"] = again.returncode
        counts = re.search(r"(\d+) steps? ran, (\d+) skipped", again.stdout)
        row["ran_skipped"] = f"{counts[1]}/{counts[2]}" if counts else "-"
        if again.returncode:
            row["error"] = (again.stderr.strip().splitlines() or ["?"])[-1][:100]
        row["left"] = len(leftovers(sd))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(cli[:3] + ["unstack", "--all", "--config", str(sd.localrc)], env=base,
                       capture_output=True, timeout=120)
        sd.teardown()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="where the stackmagic package to run is")
    parser.add_argument("--phases", default=",".join(STEPS))
    parser.add_argument("--signals", default="SIGINT,SIGKILL")
    parser.add_argument("--seconds", type=float, default=8, help="how long the slow phase waits")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="interrupt-bench-"))
    repo = make_repo(FIXTURES / "echo-plugin", work / "repos" / "echo-plugin")
    print(f"code: {args.code}  slow phase: {args.seconds:g} s  (stop = signal -> exit)")
    print(f"{'phase':<10} {'signal':<8} {'stop s':>7} {'resume s':>9} {'resume':>7} {'ran/skip':>9} {'after':>6} {'left':>5}")
    try:
        for phase in args.phases.split(","):
            for name in args.signals.split(","):
                row = one(args.code, phase, getattr(signal, name), args.seconds, work, repo)
                stop = f"{row['stop']:.2f}" if "stop" in row and name == "SIGINT" else "-"
                resume = f"{row['resume']:.2f}" if "resume" in row else "-"
                print(f"{phase:<10} {name:<8} {stop:>7} {resume:>9} {row.get('resume_rc', '-'):>7} "
                      f"{row.get('ran_skipped', '-'):>9} {row.get('after', '-'):>6} {row.get('left', '-'):>5}"
                      + (f"  {row['error']}" if "error" in row else ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
