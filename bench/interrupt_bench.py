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

With ``--kernel``, the notebook's stop button too: a stackmagic kernel runs ``%stack`` and gets
SIGINT (jupyter_client's interrupt, to the kernel's process alone) at the same moments.

usage: python bench/interrupt_bench.py [--code DIR] [--phases clone,install,...] [--seconds 8]
                                       [--kernel]
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
    log = open(root / "interrupted.log", "w")
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen(cli, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
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
        again = subprocess.run(cli, capture_output=True, text=True, env=base, timeout=600, cwd=root)
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
                       capture_output=True, timeout=120, cwd=root)
        sd.teardown()
    return row


def stop_button(code: Path, phase: str, seconds: float, work: Path, repo: Path) -> float | str:
    """The notebook's stop button (SIGINT to the kernel alone) during ``phase``: seconds from
    the interrupt to the cell's end."""
    from jupyter_client.manager import start_new_kernel

    from tests.test_kernel import execute

    root = Path(tempfile.mkdtemp(prefix=f"kernel-{phase}-", dir=work))
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    sd = StackDir(root, repo.as_uri(), uv_cache)
    prepare(sd)
    prefix = root / "prefix"
    subprocess.run([sys.executable, "-m", "stackmagic", "kernel", "install", "--prefix", str(prefix)],
                   capture_output=True, check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(code)})
    env = {**slow_env(sd, repo, phase), "PYTHONPATH": str(code), "ECHO_SLOW_SECONDS": f"{seconds:g}",
           "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    km, kc = start_new_kernel(kernel_name="stackmagic", cwd=str(root), env=env,
                              stderr=subprocess.DEVNULL)
    sent: list[float] = []
    try:
        execute(kc, "%%localrc\n" + sd.localrc.read_text())

        def poll() -> None:
            if not sent and at_the_moment(sd, phase):
                sent.append(time.monotonic())
                # the kernel's process alone (jupyter_client's interrupt_kernel() signals its
                # group, which the commands of stackmagic are not part of either)
                os.kill(km.provisioner.process.pid, signal.SIGINT)

        messages = execute(kc, "%stack", poll=poll, timeout=300)
        if os.environ.get("BENCH_DEBUG"):
            from tests.test_kernel import text_of
            print(text_of(messages)[-1500:])
        return time.monotonic() - sent[0] if sent else "never reached the phase"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        subprocess.run([sys.executable, "-m", "stackmagic", "unstack", "--all", "--config", str(sd.localrc)],
                       env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, timeout=120, cwd=root)
        sd.teardown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="where the stackmagic package to run is")
    parser.add_argument("--phases", default=",".join(STEPS))
    parser.add_argument("--signals", default="SIGINT,SIGKILL")
    parser.add_argument("--seconds", type=float, default=8, help="how long the slow phase waits")
    parser.add_argument("--kernel", action="store_true",
                        help="also the notebook's stop button in a stackmagic kernel, per phase")
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
        if args.kernel:
            print(f"\n{'phase':<10} {'stop button s':>14}")
            for phase in args.phases.split(","):
                took = stop_button(args.code, phase, args.seconds, work, repo)
                print(f"{phase:<10} {took:>14.2f}" if isinstance(took, float) else f"{phase:<10} {took}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
