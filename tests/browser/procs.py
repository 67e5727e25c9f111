"""Process bookkeeping from /proc: what a process started, and which of a set is still alive."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process this machine shows in /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children ...), not ``pid`` itself."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The ones of ``pids`` that still run (a zombie waiting for its parent counts as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def tmux_tree(socket: str) -> set[int]:
    """The tmux server on ``socket`` and everything it runs (empty when no server answers)."""
    out = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{pid}"],
                         capture_output=True, text=True)
    servers = {int(line) for line in out.stdout.split()} if out.returncode == 0 else set()
    return servers | {pid for server in servers for pid in descendants(server)}
