"""How long each of Tempest's smoke tests took here, seeded into the stack's stestr repository
before the smoke run, so that its two workers get equal shares.

With no times recorded, stestr deals the test classes out round-robin: one worker got the
guest-booting scenarios and the classes that make servers in their setup, and ran 7-9 minutes
while the other idled after 4. With times, it gives each class to the worker with the least
work so far. A test's seconds here are its class's wall time on one worker (its setup
included: that is where most of the servers are made) shared among the class's tests. Times the
repository already has (a run before) are left as they are.

Regenerate the figures from a smoke run's subunit stream (with the Tempest venv's python, which
has python-subunit)::

    $DATA_DIR/venv-tempest/bin/python tests/tempest_times.py $DATA_DIR/tempest/.stestr/0 \\
        > tests/fixtures/tempest-smoke-seconds.txt
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

TIMES = Path(__file__).parent / "fixtures" / "tempest-smoke-seconds.txt"


def seed(workspace: Path, stestr: Path) -> int:
    """Put the recorded seconds into ``workspace``'s stestr repository (made when missing);
    the number of tests seeded."""
    import dbm.dumb

    repo = workspace / ".stestr"
    if not repo.is_dir():
        subprocess.run([str(stestr), "init"], cwd=workspace, check=True, capture_output=True)
    seeded = 0
    with contextlib.closing(dbm.dumb.open(str(repo / "times.dbm"), "c")) as db:
        for line in TIMES.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            seconds, test_id = line.split()
            if test_id not in db:
                db[test_id] = seconds
                seeded += 1
    return seeded


def _class_seconds(stream: Path) -> list[tuple[float, str]]:
    """(seconds, test id) from a stestr subunit stream: per worker, a class takes from the end of
    the previous class's last test (the run's start, for the first) to the end of its own last
    test."""
    import collections

    import subunit
    import testtools

    events = []

    def on_test(test):
        start, end = test["timestamps"]
        if start is None or end is None or " " in test["id"]:   # "setUpClass (...)": skipped
            return
        worker = next((t for t in test["tags"] if t.startswith("worker-")), "worker-0")
        events.append((worker, start, end, test["id"].split("[")[0]))

    with open(stream, "rb") as fh:           # stestr keeps its streams in subunit v1
        result = testtools.ExtendedToStreamDecorator(testtools.StreamToDict(on_test))
        result.startTestRun()
        subunit.ProtocolTestCase(fh).run(result)
        result.stopTestRun()
    out = []
    by_worker = collections.defaultdict(list)
    for event in events:
        by_worker[event[0]].append(event)
    began = min(e[1] for e in events)        # the workers start together, with a class's setup
    for runs in by_worker.values():
        runs.sort(key=lambda e: e[1])
        classes: dict[str, list] = {}
        for _worker, start, end, test_id in runs:
            classes.setdefault(test_id.rsplit(".", 1)[0], []).append((start, end, test_id))
        previous = began
        for tests in classes.values():
            end = max(e for _, e, _ in tests)
            share = max((end - previous).total_seconds(), 0.0) / len(tests)
            previous = end
            out += [(share, test_id) for _, _, test_id in tests]
    return sorted(out, reverse=True)


if __name__ == "__main__":
    print("# seconds per smoke test: its class's wall time (setup included) shared among its tests;")
    print("# made by tests/tempest_times.py from a smoke run of the shared default cloud")
    for seconds, test_id in _class_seconds(Path(sys.argv[1])):
        print(f"{seconds:.1f} {test_id}")
