#!/usr/bin/env python3
"""Figures for reading a configuration and planning it (what `plan`, `%%localrc` and every
`stack` pay before any step runs), and for a mirror call that finds its repository made.

Prints, in one run: the median time to evaluate a one-line localrc with bash, to load the
shipped quickstart sample, to build its plan (the catalog discovered, every project's steps and
edges), and, when a PyPI sdist is at hand in the uv/pip cache or the network, a second
`mirror_project` call for os-service-types (a no-op). The tests keep no wall-clock limits;
these figures are where the speed is watched.

usage: python bench/config_bench.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.samples import sample_path

    with tempfile.TemporaryDirectory(prefix="stackmagic-config-bench-") as tmp:
        root = Path(tmp)
        localrc = root / "localrc"
        localrc.write_text(f"DEST={root}/dest\nenable_service s-proxy\n")
        quickstart = sample_path("quickstart")
        rows = [
            ("evaluate a one-line localrc (bash)", timed(lambda: load_config(localrc), args.repeat)),
            ("load the quickstart sample", timed(lambda: load_config(quickstart), args.repeat)),
        ]
        config = load_config(quickstart)
        rows.append(("plan the quickstart (catalog, steps, edges)",
                     timed(lambda: Engine(config).plan(), args.repeat)))
        try:
            from stackmagic.mirror import mirror_project

            mirrors, cache = root / "mirror", root / "sdists"
            mirror_project("os-service-types", "1.7.0", "os-service-types", mirrors, cache=cache)
            rows.append(("mirror_project again (repository made)", timed(
                lambda: mirror_project("os-service-types", "1.7.0", "os-service-types", mirrors,
                                       cache=root / "empty"), args.repeat)))
        except Exception as err:  # noqa: BLE001 - the figure is skipped, the others stand
            rows.append((f"mirror_project skipped ({type(err).__name__}: {err})", float("nan")))
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
