r"""Run Tempest's identity and image API tests against a fresh first-tier stack and print the counts.

Brings up key + g-api + placement-api + tempest (the quickstart sample: SQLite, sources mirrored
from PyPI) in a temporary directory on free ports with its own tmux socket, runs ``tempest run``
from the workspace the tempest service made, prints passed / skipped / failed and the timings,
then unstacks and removes the directory (``--keep`` keeps it, with the stack stopped).

``--line`` adds a localrc line (repeat it); devstack's ``TEMPEST_PLUGINS`` names Tempest
plugins for its venv. Swift's object-storage API tests and heat-tempest-plugin's orchestration
API tests, for example::

    python bench/tempest_run.py --line DATABASE_TYPE=mysql --line "enable_service mysql rabbit" \
        --line "enable_service s-proxy s-object s-container s-account" \
        --line "enable_plugin heat https://opendev.org/openstack/heat" --line MIRROR_FROM_PYPI=True \
        --line TEMPEST_PLUGINS=heat-tempest-plugin \
        --regex '^(tempest\.api\.object_storage|heat_tempest_plugin\.tests\.api)'

    python bench/tempest_run.py [--regex R] [--exclude-regex R] [--concurrency N] [--line L] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackmagic.config import load_config  # noqa: E402
from stackmagic.engine import Engine  # noqa: E402
from stackmagic.samples import sample_path, sandbox  # noqa: E402

REGEX = r"^tempest\.api\.(identity|image)"
_COUNT = re.compile(r"^ - (Passed|Skipped|Failed|Expected Fail|Unexpected Success): (\d+)$", re.M)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(root: Path, lines: list[str]) -> Path:
    """A local.conf for the quickstart services plus tempest and ``lines``, everything under ``root``."""
    conf = root / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]",
        *sandbox(root, "tempest"),
        f"source {sample_path('quickstart')}",
        "enable_service tempest",
        *lines,
    ]) + "\n")
    return conf


def counts(output: str) -> dict[str, int]:
    """The totals ``tempest run`` prints at the end: {"Passed": n, "Skipped": n, "Failed": n, ...}."""
    return {name: int(n) for name, n in _COUNT.findall(output)}


def run_tempest(data_dir: Path, regex: str, exclude: str | None, concurrency: int) -> tuple[int, str]:
    """``tempest run`` from the workspace; its exit status and output."""
    argv = [str(data_dir / "venv-tempest" / "bin" / "tempest"), "run", "--regex", regex,
            "--concurrency", str(concurrency)]
    if exclude:
        argv += ["--exclude-regex", exclude]
    proc = subprocess.run(argv, cwd=data_dir / "tempest", capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regex", default=REGEX)
    parser.add_argument("--exclude-regex", default=None)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--line", action="append", default=[], help="a localrc line to add (repeat it)")
    parser.add_argument("--keep", action="store_true", help="keep the directory (stack stopped)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stackmagic-tempest-"))
    root.chmod(0o755)           # a database server's own user enters DATA_DIR
    conf = write_conf(root, args.line)
    engine = Engine(load_config(conf))
    try:
        start = time.monotonic()
        engine.stack()
        stacked = time.monotonic() - start
        start = time.monotonic()
        code, output = run_tempest(root / "data", args.regex, args.exclude_regex, args.concurrency)
        ran = time.monotonic() - start
        for line in output.splitlines():
            if re.search(r"\.\.\. FAILED|^\{\d+\} .* FAILED", line):
                print(line)
        found = counts(output)
        print(f"stack: {stacked:.0f} s; tempest run: {ran:.0f} s (exit status {code})")
        print("  ".join(f"{k}: {v}" for k, v in found.items()))
        return 0 if code == 0 and found.get("Failed", 1) == 0 else 1
    finally:
        Engine(load_config(conf)).unstack(all=True)
        socket_name = engine.tmux.server.socket_name
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
