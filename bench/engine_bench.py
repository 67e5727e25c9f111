#!/usr/bin/env python3
"""Figures for the engine on a fixture stack (issue: the engine).

Builds K copies of the test suite's echo plugin as local git repos (each a tiny HTTP service with
its own port and an init that takes INIT_SLEEP seconds), then measures in one run:
  1. cold `stack` (clone, venv + install, configure, init, start),
  2. a re-run with nothing changed (target: under 2 s),
  3. a re-run after one setting changed (one plugin's message),
  4. the same plan from scratch with STACK_PARALLEL=1 versus the default, for the speed-up.
Everything runs on its own tmux socket and ports, and is stopped at the end.

usage: python bench/engine_bench.py [--plugins 4] [--init-sleep 1.0]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests" / "fixtures" / "echo-plugin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_plugin(n: int, dest: Path) -> Path:
    import git

    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    plugin = dest / "stackmagic_plugin.py"
    text = plugin.read_text().replace('"echo-api"', f'"echo{n}-api"').replace('"echo"', f'"echo{n}"')
    plugin.write_text(text.replace("ECHO_", f"ECHO{n}_"))
    pyproject = dest / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("stackmagic-echo", f"stackmagic-echo{n}"))
    repo = git.Repo.init(dest, initial_branch="master")
    repo.git.add(A=True)
    repo.index.commit("echo plugin", author=git.Actor("bench", "bench@example.invalid"),
                      committer=git.Actor("bench", "bench@example.invalid"))
    return dest


PORTS: dict[int, int] = {}


def localrc(root: Path, repos: list[Path], sock: str, parallel: int, sleep: float, message: str) -> Path:
    lines = [f"DEST={root}/dest", f"DATA_DIR={root}/data", f"LOGDIR={root}/logs",
             f"TMUX_SOCKET={sock}", "USE_CONSTRAINTS=False", f"STACK_PARALLEL={parallel}",
             "disable_all_services"]
    for n, repo in enumerate(repos, 1):
        lines += [f"enable_plugin echo{n} {repo.as_uri()}", f"enable_service echo{n}-api",
                  f"ECHO{n}_PORT={PORTS.setdefault(n, free_port())}", f"ECHO{n}_INIT_SLEEP={sleep:g}"]
    lines.append(f"ECHO1_MESSAGE={message}")
    path = root / "localrc"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_stack(path: Path):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    t0 = time.perf_counter()
    summary = Engine(load_config(path)).stack()
    return time.perf_counter() - t0, summary


def teardown(path: Path, sock: str) -> None:
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    Engine(load_config(path)).unstack()
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugins", type=int, default=4)
    ap.add_argument("--init-sleep", type=float, default=1.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stackmagic-bench-"))
    repos = [make_plugin(n, work / "repos" / f"echo{n}") for n in range(1, args.plugins + 1)]
    rows = []
    try:
        for parallel in (4, 1):
            root = work / f"stack-p{parallel}"
            root.mkdir()
            sock = f"stackmagic-bench-{uuid.uuid4().hex[:8]}"
            rc = localrc(root, repos, sock, parallel, args.init_sleep, "hello")
            try:
                cold, s = run_stack(rc)
                rows.append((f"cold stack, STACK_PARALLEL={parallel}", cold, len(s.ran)))
                for phase, secs in s.by_phase().items():
                    rows.append((f"  {phase} (sum of step times)", secs, 0))
                if parallel == 4:
                    warm, s = run_stack(rc)
                    rows.append(("re-run, nothing changed", warm, len(s.ran)))
                    localrc(root, repos, sock, parallel, args.init_sleep, "bonjour")
                    changed, s = run_stack(rc)
                    rows.append(("re-run, ECHO1_MESSAGE changed", changed, len(s.ran)))
                    rows.append(("  steps it re-ran: " + ", ".join(r.step for r in s.ran), 0, 0))
            finally:
                teardown(rc, sock)
        cold = {r[0]: r[1] for r in rows}
        par, seq = cold["cold stack, STACK_PARALLEL=4"], cold["cold stack, STACK_PARALLEL=1"]
        print(f"fixture stack: {args.plugins} echo plugins, init {args.init_sleep:g} s each")
        print(f"{'what':<45} {'seconds':>8} {'steps run':>10}")
        for what, secs, n in rows:
            print(f"{what:<45} {secs:8.2f} {n:10d}" if n else f"{what:<45} {secs:8.2f}" if secs else what)
        print(f"parallel speed-up of the cold stack: {seq / par:.2f}x ({seq:.2f} s -> {par:.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
