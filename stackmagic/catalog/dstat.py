"""dstat: the machine's resource usage, second by second, while the stack runs (devstack's
lib/dstat and tools/dstat.sh).

Debian's ``dstat`` (bookworm ships the original, 0.7.4, run by Python 3.11) in tmux window
``dstat``, its table in ``$LOGDIR/dstat.log`` (the window's log): time, CPU, memory, network,
disk, I/O, system, load, processes, paging, the top CPU, I/O and memory process, swap and TCP
sockets, with devstack's options. It runs as the user who stacks (root is not needed) and is
healthy while the log gets a line every second.

Two things differ from devstack's tools/dstat.sh, both because of bugs of Debian's dstat 0.7.4 on
Python 3 (measured here):

- No ``$LOGDIR/dstat-csv.log``: ``--output`` fails at its first sample (it still names the
  Python 2 ``types.ListType``).
- The network columns are per interface, ``lo`` (where every service of the stack talks) and the
  machine's physical interfaces, instead of the total over all: when an interface disappears
  (a bridge, tap or veth the stack or another program removes) the total shrinks, and dstat
  ends with "cannot convert float infinity to integer" (its ``maxint`` is infinite on Python 3).

pcp's ``pcp-dstat`` (which replaces dstat in later releases) needs the ``pmcd`` daemon, and the
``pcp`` package cannot even be installed on a machine without systemd (its maintainer scripts
call systemctl).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic.catalog.base import Process, Project
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

# tools/dstat.sh's DSTAT_OPTS (DSTAT_TOP_OPTS included), with -N (see above)
OPTIONS = ("-tcmndrylpg", "--top-cpu-adv", "--top-io-adv", "--top-mem", "--swap", "--tcp")

# Healthy: the log got a line (one a second) within the last 5 seconds.
_FRESH = ('f=$1; [ -s "$f" ] && [ $(( $(date +%s) - $(stat -c %Y "$f") )) -lt 5 ] '
          '|| { echo "no sample in $f for 5 s"; exit 1; }')


def interfaces(net: Path = Path("/sys/class/net")) -> list[str]:
    """``lo`` and the physical interfaces (those backed by a device): they do not come and go."""
    found = sorted(p.name for p in net.iterdir() if (p / "device").exists()) if net.is_dir() else []
    return ["lo", *found]


class Dstat(Project):
    name = "dstat"
    services = {"dstat": "resource usage log (dstat)"}
    system_packages = ("dstat",)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        s = ctx.settings
        program = shutil.which("dstat") or "/usr/bin/dstat"
        log = str(s.logdir / "dstat.log")
        # dstat imports ``imp``: Python 3.11 warns about it at every start
        env = {"PYTHONWARNINGS": "ignore::DeprecationWarning"}
        yield Process("dstat", [program, *OPTIONS, "-N", ",".join(interfaces())], cwd=s.logdir,
                      env=env, stop_timeout=5, timeout=30,
                      health=CommandCheck(("/bin/bash", "-c", _FRESH, "dstat-health", log)))
