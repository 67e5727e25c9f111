"""Loop-mounted backing files (devstack's create_disk / destroy_disk, and lib/lvm's loop device):
a sparse file, optionally holding a filesystem, attached to a loop device and mounted, with every
device and mount recorded so that ``unstack`` undoes exactly those and nothing else.

It is no project: :mod:`.cinder_backends` (Cinder's volume files) and :mod:`.swift` (Swift's
drive) use it. Each keeps its own record file under ``$DATA_DIR/stackmagic``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.context import Context

MIB, GIB = 1 << 20, 1 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}


def parse_size(text: str, setting: str, default: str) -> int:
    """Bytes in a ``truncate -s`` size (``30G``, ``16M``, ``1100MiB``, ``2GB``) that ``setting``
    holds; a value that is no size is refused naming the setting and its default."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGTP]?)(I?B)?\s*", text or "", re.IGNORECASE)
    if not m:
        raise ConfigError(f"{setting}={text!r} is not a size; write a number "
                          f"with K, M or G (devstack's default is {default})")
    unit = m[2].upper() + ("B" if (m[3] or "").upper() == "B" else "")
    return int(m[1]) * _UNITS[unit]


# -- can it work here ---------------------------------------------------------------------
def probe(filesystems: tuple[str, ...] = ("ext4",)) -> tuple[str | None, str]:
    """(filesystem, why): the first of ``filesystems`` a loop-mounted file can hold here, or
    None and the reason none can (not root, no loop devices, no such filesystem in the kernel)."""
    if os.geteuid() != 0:
        return None, "loop devices and mounts need root"
    if not Path("/dev/loop-control").exists():
        return None, "this machine has no loop devices (/dev/loop-control is missing)"
    missing = [tool for tool in ("losetup", "mount", "umount") if not _which(tool)]
    if missing:
        return None, f"{', '.join(missing)} is missing"
    try:
        known = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines() if line.split()}
    except OSError:
        known = set()
    for fs in filesystems:
        if fs in known:
            return fs, f"root, loop devices and {fs} are here"
    return None, f"the kernel has none of {', '.join(filesystems)} (/proc/filesystems)"


def _which(tool: str) -> str | None:
    path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return shutil.which(tool, path=path)


# -- what is mounted ----------------------------------------------------------------------
def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), path)


def mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point (bind mounts within one filesystem too, which
    os.path.ismount does not see)."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as fh:
        return any(_unescape(line.split()[4]) == want for line in fh)


def loop_file(device: str) -> str | None:
    """The file loop ``device`` serves now (None when it serves none)."""
    try:
        text = (Path("/sys/block") / Path(device).name / "loop" / "backing_file").read_text()
    except OSError:
        return None
    return text.strip().removesuffix(" (deleted)")


class Record:
    """What one user of this module made: loop devices (device -> file) and mounts, in the
    order made, kept in the JSON file ``path``."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        self.loops: dict[str, str] = dict(data.get("loops", {}))
        self.mounts: list[str] = list(data.get("mounts", []))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"loops": self.loops, "mounts": self.mounts}, indent=1))
        os.replace(tmp, self.path)


# -- making it ------------------------------------------------------------------------------
def make_file(ctx: "Context", path: Path, size: int, setting: str,
              mkfs: list[str] | None = None) -> Path:
    """The sparse file ``path`` of ``size`` bytes, with a filesystem made by ``mkfs`` (the
    command, the file appended), made once: an existing one is kept, whatever its size
    (``setting``, where the size came from, applies when the file is made, as in devstack)."""
    if path.exists():
        if path.stat().st_size != size:
            ctx.log(f"kept {path} ({path.stat().st_size // MIB} MiB): {setting} applies when the "
                    "file is made (clean removes it), as in devstack")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    with open(tmp, "wb") as fh:
        fh.truncate(size)
    if mkfs:
        ctx.run(*mkfs, tmp, timeout=600)
    os.replace(tmp, path)
    ctx.log(f"made {path}: {size // MIB} MiB, sparse")
    return path


def attach(ctx: "Context", record: Record, path: Path) -> str:
    """A loop device over ``path``: the one already serving it, or a new one (recorded)."""
    for device, file in record.loops.items():
        if file == str(path) and loop_file(device) == str(path):
            return device
    out = ctx.run("losetup", "--list", "--noheadings", "--output", "NAME", "--associated", path,
                  quiet=True).split()
    device = out[0] if out else ctx.run("losetup", "--find", "--show", "--direct-io=on", path,
                                        timeout=60).strip()
    record.loops[device] = str(path)
    record.save()
    return device


def mount(ctx: "Context", record: Record, target: Path, *args: str) -> None:
    """``mount args... target`` unless something is mounted there already; recorded either way."""
    target.mkdir(parents=True, exist_ok=True)
    if not mounted(target):
        ctx.run("mount", *args, target, timeout=120)
    if str(target) not in record.mounts:
        record.mounts.append(str(target))
        record.save()


def release(ctx: "Context", record: Record,
            before_detach: Callable[[str], None] | None = None) -> list[str]:
    """Undo what ``record`` holds: unmount newest first, then detach each loop device that still
    serves its recorded file (``before_detach(device)`` first: Cinder deactivates its volume
    groups there). Returns what it undid; what it could not (a mount in use) stays recorded,
    with a warning, and then no loop device is detached."""
    done: list[str] = []
    for target in reversed(list(record.mounts)):
        if mounted(Path(target)):
            result = ctx.run("umount", target, check=False, timeout=120)
            if mounted(Path(target)):
                ctx.warn(f"could not unmount {target}: {result.strip()[-200:]}")
                continue
            done.append(f"unmounted {target}")
        record.mounts.remove(target)
        record.save()
    if record.mounts:
        return done                    # the loop devices are still in use
    for device, file in list(record.loops.items()):
        if loop_file(device) == file:
            if before_detach is not None:
                before_detach(device)
            ctx.run("losetup", "--detach", device, timeout=60)
            done.append(f"detached {device} ({file})")
        del record.loops[device]
        record.save()
    if not record.loops:
        record.path.unlink(missing_ok=True)
    return done
