"""Regenerate a series' constraints files by resolving with ``uv pip compile``.

Writes ``<series>.txt`` (upper constraints in the style of openstack/requirements: one
``name===version`` a line, without the servers that are installed from git checkouts) and
``<series>-releases.txt`` (the server releases, for the mirror and for installs from PyPI).

The resolution starts from an ``upper-constraints.txt`` of openstack/requirements (the versions
the gate tested); a pin that conflicts with a server release is dropped and left to the resolver,
and the file's own pin of a release named on the command line gives way to it (the file pins
``horizon`` as a library for dashboard plugins, one release behind at that commit).
The command that made ``2026.2.txt``::

    git -C requirements show 3353677727f8351bc58ba98efafe6bc884a0257c:upper-constraints.txt >/tmp/upper-constraints@3353677.txt
    python -m stackmagic.constraints.compile 2026.2 /tmp/upper-constraints@3353677.txt keystone==30.0.0 glance==33.0.0 \\
        openstack-placement==16.0.0 nova==34.0.0 neutron==29.0.0 horizon==27.0.0 cinder==29.0.0

which runs, until it resolves::

    uv pip compile req.in -c seed.txt --python-version 3.11 \\
        --python-platform x86_64-manylinux_2_28 --no-header --no-annotate -o out.txt
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from stackmagic.constraints import HERE, normalize

#: The libraries and tools every stack installs next to the servers (etcd3gw: tooz's etcd3
#: driver, which devstack's install_libs always adds and Cinder's coordination uses).
EXTRAS = ("python-openstackclient", "openstacksdk", "gunicorn", "PyMySQL", "psycopg2-binary",
          "python-memcached", "pymemcache", "etcd3gw")
#: Never pinned, as in openstack/requirements.
UNPINNED = frozenset({"setuptools", "pip", "wheel"})


def _pins(text: str) -> dict[str, tuple[str, str]]:
    """``normalized name -> (spelling, version)`` of the ``name===version`` or ``==`` lines."""
    pins: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)===?([^;\s]+)", line)
        if m:
            pins[normalize(m[1])] = (m[1], m[2])
    return pins


def _compile(work: Path, seed: dict[str, tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    (work / "seed.txt").write_text("".join(f"{s}=={v}\n" for s, v in seed.values()))
    return subprocess.run(
        ["uv", "pip", "compile", str(work / "req.in"), "-c", str(work / "seed.txt"),
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
         "--no-header", "--no-annotate", "-o", str(work / "out.txt")],
        capture_output=True, text=True, check=False)


def resolve(uc_text: str, releases: list[str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Resolve the releases plus :data:`EXTRAS`; return the pins and the seed pins dropped."""
    spelling = _pins(uc_text)
    top = {normalize(re.split(r"[=<>!~]", r)[0]) for r in [*releases, *EXTRAS]}
    named = {normalize(re.split(r"[=<>!~]", r)[0]) for r in releases}
    seed = {n: pin for n, pin in spelling.items() if n not in named}
    dropped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "req.in").write_text("\n".join([*releases, *EXTRAS]) + "\n")
        while (run := _compile(work, seed)).returncode != 0:
            named = [normalize(n) for n in re.findall(r"([A-Za-z0-9._-]+)==[0-9]", run.stderr)]
            culprits = [n for n in named if n in seed and n not in top]
            if not culprits:
                raise SystemExit(run.stderr)
            dropped.append("{}==={}".format(*seed.pop(culprits[0])))
        resolved = _pins((work / "out.txt").read_text())
    return {n: (spelling.get(n, (s, v))[0], v) for n, (s, v) in resolved.items()}, dropped


def _write(path: Path, header: list[str], pins: dict[str, tuple[str, str]]) -> None:
    lines = sorted((f"{s}==={v}" for s, v in pins.values()), key=str.lower)
    path.write_text("".join(f"# {h}\n" for h in header) + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``SERIES UPPER_CONSTRAINTS RELEASE==VERSION...``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("series")
    ap.add_argument("upper_constraints", type=Path)
    ap.add_argument("releases", nargs="+")
    args = ap.parse_args(argv)
    pins, dropped = resolve(args.upper_constraints.read_text(), args.releases)
    servers = {normalize(r.split("==")[0]) for r in args.releases}
    header = [f"OpenStack {args.series}, resolved for Python 3.11 on Linux by "
              "`python -m stackmagic.constraints.compile` (see its docstring for the command)",
              f"from {args.upper_constraints.name} of openstack/requirements and: {' '.join(args.releases)}"]
    if dropped:
        header.append(f"seed pins the releases need newer than: {' '.join(dropped)}")
    _write(HERE / f"{args.series}.txt",
           [*header, "servers installed from git checkouts are not pinned here (edit-constraints)"],
           {n: p for n, p in pins.items() if n not in servers and n not in UNPINNED})
    _write(HERE / f"{args.series}-releases.txt",
           [*header, "the server releases: mirror these, or add with -c when installing from PyPI"],
           {n: p for n, p in pins.items() if n in servers})


if __name__ == "__main__":
    main()
