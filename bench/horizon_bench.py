#!/usr/bin/env python3
"""Figures for Horizon (catalog/horizon.py): what the dashboard adds to a cold stack, and what it
costs to run.

Two cold sandbox stacks from PyPI-sdist mirrors on SQLite, same uv and pip caches: ``key`` alone,
then ``key horizon``. Prints the horizon steps of the second (clone = mirror build + clone,
configure = compilemessages + local_settings, init = collectstatic + compress, start = gunicorn
until the login page answers), the shared install step of both (the difference is Horizon's
share), collectstatic and compress timed again on their own from an empty STATIC_ROOT, the
nothing-changed re-run, and the resident memory of gunicorn's master and each worker: idle after
start, and after demo logged in and opened a few pages (workers import the dashboards lazily).

usage: python bench/horizon_bench.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ("identity/", "identity/users/", "project/api_access/", "settings/", "project/")


def cold_stack(services: str, tag: str):
    """A cold sandbox stack of ``services``: (localrc, summary, wall seconds, tmux socket)."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sandbox

    root = Path(tempfile.mkdtemp(prefix=f"smhz-{tag}-", dir="/tmp"))
    lines = sandbox(root, f"hzbench-{uuid.uuid4().hex[:6]}")
    socket_name = next(line.split("=", 1)[1] for line in lines if line.startswith("TMUX_SOCKET="))
    localrc = root / "localrc"
    localrc.write_text("\n".join([*lines, "MIRROR_FROM_PYPI=True", "DATABASE_TYPE=sqlite",
                                  "disable_all_services", f"enable_service {services}"]) + "\n")
    t0 = time.perf_counter()
    summary = Engine(load_config(localrc)).stack()
    return localrc, summary, time.perf_counter() - t0, socket_name


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gunicorns(window_pid: int) -> dict[int, float]:
    """RSS (MiB) of every gunicorn process below the window (the master first)."""
    from stackmagic.process_info import tree

    def is_gunicorn(pid: int) -> bool:        # not the window's launcher, whose arguments name it
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return len(argv) > 1 and argv[1].endswith(b"/gunicorn")

    procs = [p for p in tree(window_pid) if is_gunicorn(p)]
    return {p: rss_mib(p) for p in sorted(procs)}


def tear_down(localrc: Path, socket_name: str) -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    try:
        Engine(load_config(localrc)).clean()
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
        shutil.rmtree(localrc.parent, ignore_errors=True)


def main() -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from tests.test_horizon import Stack, login

    rc, alone, alone_wall, sock = cold_stack("key", "key")
    tear_down(rc, sock)
    rc, summary, wall, sock = cold_stack("key horizon", "horizon")
    try:
        steps = {r.step: r.seconds for r in summary.ran}
        print(f"cold stack, key alone:    {alone_wall:6.1f} s (install step {_step(alone, 'install'):.1f} s)")
        print(f"cold stack, key horizon:  {wall:6.1f} s (install step {steps['install']:.1f} s, "
              f"Horizon's share {steps['install'] - _step(alone, 'install'):+.1f} s)")
        for step in ("clone horizon", "configure horizon", "init horizon", "start horizon"):
            print(f"  {step:<20} {steps[step]:6.1f} s")

        settings = Stack(rc).settings
        venv, src = settings.data_dir / "venv", settings.dest / "horizon"
        static = settings.data_dir / "horizon" / "static"
        env = {"DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings", "PATH": "/usr/bin:/bin"}
        for name, argv in (("compilemessages", ["compilemessages", "--ignore", "doc", "--ignore", "releasenotes"]),
                           ("collectstatic (empty STATIC_ROOT)", ["collectstatic", "--noinput"]),
                           ("compress --force", ["compress", "--force"])):
            if name == "compilemessages":        # the sdist ships no .mo: all are configure's
                for mo in src.rglob("*.mo"):
                    mo.unlink()
            if name.startswith("collectstatic"):
                shutil.rmtree(static)
            t0 = time.perf_counter()
            subprocess.run([str(venv / "bin" / "django-admin"), *argv], cwd=src, check=True,
                           capture_output=True, env=env if name != "compilemessages" else {"PATH": env["PATH"]})
            print(f"  {name:<34} {time.perf_counter() - t0:5.1f} s")
        size = sum(f.stat().st_size for f in static.rglob("*") if f.is_file())
        print(f"  STATIC_ROOT: {sum(1 for f in static.rglob('*') if f.is_file())} files, {size / 2**20:.0f} MiB")

        t0 = time.perf_counter()
        rerun = Engine(load_config(rc)).stack()
        print(f"nothing-changed re-run:   {time.perf_counter() - t0:6.1f} s ({len(rerun.ran)} steps ran)")

        status = {s.service: s for s in Engine(load_config(rc)).status()}
        idle = gunicorns(status["horizon"].pid)
        session, _ = login(Stack(rc).url, "demo", settings.admin_password)
        timings = []
        for page in PAGES:
            t0 = time.perf_counter()
            session.get(Stack(rc).url + page, timeout=60)
            timings.append(f"{page} {1000 * (time.perf_counter() - t0):.0f} ms")
        used = gunicorns(status["horizon"].pid)
        print("pages as demo: " + ", ".join(timings))
        for label, rss in (("idle after start", idle), ("after demo's pages", used)):
            values = list(rss.values())
            print(f"RSS {label:<19} master {values[0]:.0f} MiB, workers "
                  + " + ".join(f"{v:.0f}" for v in values[1:]) + f" MiB, total {sum(values):.0f} MiB")
        log = (settings.logdir / "horizon.log").read_text()
        print(f"horizon.log: {len(re.findall(r'Traceback', log))} tracebacks")
    finally:
        tear_down(rc, sock)


def _step(summary, step: str) -> float:
    return next(r.seconds for r in summary.ran if r.step == step)


if __name__ == "__main__":
    main()
