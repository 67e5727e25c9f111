"""How much memory the enabled services need, from what they were measured to use here.

``catalog/memory.txt`` holds each service's resident memory (its process and children, MiB) as
``bench/default_bench.py --write`` measured it on a running stack of devstack's default set;
``plan`` and ``stack`` add the enabled services' figures up and compare the sum with the
memory this machine has available. A service with no figure is named as not counted.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

FIGURES = Path(__file__).parent / "catalog" / "memory.txt"


def measured() -> dict[str, int]:
    """service -> MiB, as last measured."""
    if not FIGURES.exists():
        return {}
    found = {}
    for line in FIGURES.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


def write(figures: dict[str, float]) -> Path:
    """Keep ``figures`` (service -> MiB), with where and when they were measured. The figures of
    services this measurement did not cover stay as they were (Heat's, from a stack of its own)."""
    kept = {**(measured() if FIGURES.exists() else {}), **figures}
    lines = ["# resident memory per service, MiB (process and its children), measured by",
             f"# bench/default_bench.py --write on {datetime.date.today()} ({platform.machine()}, "
             f"{_meminfo('MemTotal') // 1024} GiB, {os.cpu_count()} cores); read by stackmagic.memory;",
             "# services the bench does not run keep their figures from earlier measurements",
             *(f"{name} {round(mib)}" for name, mib in sorted(kept.items()))]
    FIGURES.write_text("\n".join(lines) + "\n")
    return FIGURES


def _meminfo(key: str) -> int:
    """``key``'s figure in /proc/meminfo, MiB (0 when it is not there)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return 0


#: processes that run for an enabled service of another name (the figures are per process)
OWNERS = {"n-super-cond": "n-cond", "n-cond-cell1": "n-cond", "n-novnc-cell1": "n-novnc",
          "neutron-rpc-server": "q-svc", "neutron-periodic-workers": "q-svc",
          "neutron-ovn-maintenance-worker": "q-svc", "ovn-nb-db": "ovn-northd",
          "ovn-sb-db": "ovn-northd", "libvirtd": "n-cpu", "virtlogd": "n-cpu", "memcached": "key"}
#: enabled services that start no process of their own
NO_PROCESS = frozenset({"tempest", "placement-client"})


def estimate(services: list[str], figures: dict[str, int] | None = None) -> tuple[int, list[str]]:
    """(MiB the processes of these services used when measured, the services with no figure);
    ``figures`` are :func:`measured`'s, when the caller has read them already."""
    enabled = set(services)
    counted: set[str] = set()
    need = 0
    for process, mib in (measured() if figures is None else figures).items():
        owner = OWNERS.get(process, process)
        if owner in enabled:
            need += mib
            counted.add(owner)
    # a process counted under another service (libvirtd under n-cpu) is not missing a figure
    return need, [s for s in services if s not in counted and s not in NO_PROCESS and s not in OWNERS]


def note(services: list[str], figures: dict[str, int] | None = None) -> str | None:
    """One line for ``plan``: the estimate against what this machine has available."""
    need, unknown = estimate(services, figures)
    if not need:
        return None
    available = _meminfo("MemAvailable")
    # short enough to stay one line in a notebook (guests come on top of it)
    line = f"memory: about {need / 1024:.1f} GiB for these services, as measured; {available / 1024:.1f} GiB available"
    if unknown:
        line += f"; not measured: {', '.join(unknown)}"
    if available and need > available:
        line += (" — less than they need: disable services you do not use (disable_service ...) "
                 "or give the machine more memory")
    return line
