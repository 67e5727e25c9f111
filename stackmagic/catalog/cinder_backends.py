"""Where Cinder keeps its volumes (devstack's lib/lvm and lib/cinder_backends/{lvm,nfs}), chosen
by a probe of this machine. :mod:`stackmagic.catalog.cinder` uses it; it is no project itself.

**devstack's default**, ``CINDER_ENABLED_BACKENDS=lvm:lvmdriver-1``: an LVM volume group
``$VOLUME_GROUP_NAME-lvmdriver-1`` on a loop device over a sparse file of
``VOLUME_BACKING_FILE_SIZE`` (``$DATA_DIR/stack-volumes-lvmdriver-1-backing-file``), volumes
exported over iSCSI by LIO (``lioadm``). LVM activates volumes through device-mapper, and LIO
lives in configfs: where both are here, stackmagic builds exactly that.

**Where they are not** (these machines: no ``/dev/mapper/control``, no configfs, no NFS in the
kernel, but loop devices and mounts), the volumes still live in a sparse backing file of
``VOLUME_BACKING_FILE_SIZE``, as files, through Cinder's upstream NFS driver
(``cinder.volume.drivers.nfs.NfsDriver``; backend ``nfs:nfs`` as devstack-plugin-nfs names it):

- the backing file holds an ext4 filesystem, loop-mounted at the share's export directory
  ``$CINDER_STATE_PATH/exports/<backend>``; the share is ``localhost:<that directory>``, what a
  kernel NFS server would export;
- that directory is bind-mounted where the NFS client would have mounted the share,
  ``<nfs_mount_point_base>/<md5 of the share>`` (``$CINDER_STATE_PATH/mnt/...``). os-brick's
  ``RemoteFsClient.mount`` finds it in /proc/mounts and mounts nothing, so no NFS is needed;
- Nova's libvirt NFS volume driver looks for the same share under ``[libvirt]
  nfs_mount_point_base`` (set to the same directory in nova-cpu.conf, :func:`nova_options`),
  finds it mounted and hands the volume's file to QEMU as a disk;
- Nova unmounts a share when its last attachment goes (``_HostMountState.umount``); the next
  attach would then run ``mount -t nfs``, which cannot work here. So a directory
  ``.keep-mounted`` inside the mount point is bind-mounted onto itself: that unmount fails
  ("target is busy"), Nova logs it and keeps the share, and every later attach finds it mounted.

Every loop device and mount made is recorded (``$DATA_DIR/stackmagic/cinder-backing.json``);
:func:`release` (unstack) undoes exactly those, newest first, and detaches a loop device only
while it still serves the recorded file. :func:`remove_files` (clean) deletes the backing files.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic.catalog import loopback
from stackmagic.catalog.loopback import MIB
from stackmagic.errors import ConfigError, StackError

if TYPE_CHECKING:
    from stackmagic.context import Context

#: stackrc's VOLUME_BACKING_FILE_SIZE
DEFAULT_SIZE = "30G"
#: The smallest backing file that holds one 1 GiB volume (volumes are whole GiB). ext4 made as
#: here (no reserved blocks, one inode per MiB) on 1100 MiB leaves 1048 MiB free once mounted
#: (measured); an LVM physical volume keeps 1 MiB of metadata and 4 MiB extents.
MIN_SIZE = {"nfs": 1100 * MIB, "lvm": 1028 * MIB}
KINDS = ("lvm", "nfs")
KEEP = ".keep-mounted"
NFS_DRIVER = "cinder.volume.drivers.nfs.NfsDriver"
LVM_DRIVER = "cinder.volume.drivers.lvm.LVMVolumeDriver"


@dataclass(frozen=True)
class Backend:
    """One entry of CINDER_ENABLED_BACKENDS, ``kind:name`` (``nfs:nfs``, ``lvm:lvmdriver-1``)."""

    kind: str
    name: str


# -- the choice -----------------------------------------------------------------------------
def _module(name: str) -> bool:
    """Whether the running kernel has module ``name`` built in or loadable."""
    base = Path("/lib/modules") / os.uname().release
    wanted = {name.replace("-", "_"), name.replace("_", "-")}
    for index in ("modules.builtin", "modules.dep"):
        try:
            text = (base / index).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            stem = line.split(":")[0].rsplit("/", 1)[-1].split(".ko")[0]
            if stem in wanted:
                return True
    return False


def probe() -> tuple[str, str]:
    """(kind, why): ``lvm`` where LVM and an iSCSI target can work, else ``nfs`` (file-backed)."""
    if not (Path("/dev/mapper/control").exists() or _module("dm-mod")):
        return "nfs", ("no device-mapper here (/dev/mapper/control is missing), so LVM cannot "
                       "activate volumes")
    if not (Path("/sys/kernel/config/target").is_dir() or _module("target_core_mod")):
        return "nfs", "device-mapper is here, but no LIO iSCSI target (no target in configfs)"
    return "lvm", "device-mapper and the LIO iSCSI target are here (devstack's default)"


def backends(ctx: "Context") -> tuple[list[Backend], str]:
    """The enabled backends and why: CINDER_ENABLED_BACKENDS as the user wrote it, else the
    probe's choice (``lvm:lvmdriver-1`` as devstack, or ``nfs:nfs``)."""
    text = ctx.settings.get("CINDER_ENABLED_BACKENDS") or ""
    if not text.strip():
        kind, why = probe()
        return [Backend(kind, "lvmdriver-1" if kind == "lvm" else "nfs")], why
    found: list[Backend] = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        kind, _, name = item.partition(":")
        if kind not in KINDS or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
            raise ConfigError(f"CINDER_ENABLED_BACKENDS: {item!r} is not one stackmagic can run; "
                              "write type:name with type lvm or nfs (e.g. nfs:nfs), or leave it "
                              "unset to let stackmagic choose")
        if name in {b.name for b in found}:
            raise ConfigError(f"CINDER_ENABLED_BACKENDS names backend {name!r} twice")
        found.append(Backend(kind, name))
    if any(b.kind == "lvm" for b in found):
        kind, why = probe()
        if kind != "lvm":
            raise ConfigError(f"CINDER_ENABLED_BACKENDS asks for LVM, but {why}; use nfs:nfs "
                              "(volumes as files in the backing file) or leave it unset")
    return found, "as CINDER_ENABLED_BACKENDS says"


def parse_size(text: str) -> int:
    """Bytes in a ``truncate -s`` size (``30G``, ``16M``, ``1100MiB``, ``2GB``)."""
    return loopback.parse_size(text, "VOLUME_BACKING_FILE_SIZE", DEFAULT_SIZE)


def size(ctx: "Context") -> int:
    return parse_size(ctx.settings.get("VOLUME_BACKING_FILE_SIZE") or DEFAULT_SIZE)


def smallest(found: list[Backend]) -> int:
    """The smallest VOLUME_BACKING_FILE_SIZE that holds one volume on each of ``found``."""
    return max(MIN_SIZE[b.kind] for b in found)


def check_size(ctx: "Context", found: list[Backend]) -> None:
    """Refuse a backing file that cannot hold one volume, naming the smallest that can."""
    text = ctx.settings.get("VOLUME_BACKING_FILE_SIZE") or DEFAULT_SIZE
    least = smallest(found)
    if size(ctx) < least:
        raise ConfigError(
            f"VOLUME_BACKING_FILE_SIZE={text} is too small for one Cinder volume: volumes are "
            f"whole GiB, and the backing file also keeps its "
            f"{'filesystem' if least == MIN_SIZE['nfs'] else 'volume group'}'s own data. "
            f"The smallest size that works is {least // MIB}M; devstack's default is "
            f"{DEFAULT_SIZE} (the file is sparse: it takes only what the volumes use). Or "
            "disable_service c-vol.")


# -- where things are -----------------------------------------------------------------------
def state_path(ctx: "Context") -> Path:
    return ctx.settings.path("CINDER_STATE_PATH", ctx.settings.data_dir / "cinder")


def volume_group(ctx: "Context", be: Backend) -> str:
    return f"{ctx.settings.get('VOLUME_GROUP_NAME') or 'stack-volumes'}-{be.name}"


def backing_file(ctx: "Context", be: Backend) -> Path:
    """devstack's ``$DATA_DIR/$vg$BACKING_FILE_SUFFIX``, for either kind."""
    return ctx.settings.data_dir / f"{volume_group(ctx, be)}-backing-file"


def mount_base(ctx: "Context") -> Path:
    """The NFS driver's ``nfs_mount_point_base`` (its default, ``$state_path/mnt``), and Nova's."""
    return state_path(ctx) / "mnt"


def export_dir(ctx: "Context", be: Backend) -> Path:
    return state_path(ctx) / "exports" / be.name


def share(ctx: "Context", be: Backend) -> str:
    return f"localhost:{export_dir(ctx, be)}"


def share_mount(ctx: "Context", be: Backend) -> Path:
    """Where the NFS driver (os-brick's RemoteFsClient) and Nova expect the share mounted."""
    digest = hashlib.md5(share(ctx, be).encode(), usedforsecurity=False).hexdigest()
    return mount_base(ctx) / digest


def record_file(ctx: "Context") -> Path:
    return ctx.stack_dir / "cinder-backing.json"


# -- cinder.conf, nova-cpu.conf, tempest ----------------------------------------------------
def conf_options(ctx: "Context", be: Backend, shares_config: Path) -> list[tuple[str, str]]:
    """The backend's section of cinder.conf (configure_cinder_backend_<kind>)."""
    s = ctx.settings
    if be.kind == "lvm":
        return [("volume_backend_name", be.name), ("volume_driver", LVM_DRIVER),
                ("volume_group", volume_group(ctx, be)),
                ("target_helper", s.get("CINDER_TARGET_HELPER") or "lioadm"),
                ("target_protocol", s.get("CINDER_TARGET_PROTOCOL") or "iscsi"),
                ("target_port", s.get("CINDER_TARGET_PORT") or "3260"),
                ("target_prefix", s.get("CINDER_TARGET_PREFIX") or "iqn.2010-10.org.openstack:"),
                ("lvm_type", s.get("CINDER_LVM_TYPE") or "auto"),
                ("volume_clear", (s.get("CINDER_VOLUME_CLEAR") or "zero").lower())]
    secure = {key: "true" if s.bool(setting, False) else "false" for key, setting in (
        ("nas_secure_file_operations", "NFS_SECURE_FILE_OPERATIONS"),
        ("nas_secure_file_permissions", "NFS_SECURE_FILE_PERMISSIONS"))}
    return [("volume_backend_name", be.name), ("volume_driver", NFS_DRIVER),
            ("nfs_shares_config", str(shares_config)), ("nas_host", "localhost"),
            ("nas_share_path", str(export_dir(ctx, be))), *secure.items(),
            ("nfs_snapshot_support", "true"), ("nfs_mount_point_base", str(mount_base(ctx)))]


def nova_options(ctx: "Context") -> list[tuple[str, str, str]]:
    """What nova.conf (and so nova-cpu.conf) needs to attach Cinder's volumes: os-brick's lock
    path (devstack's init_os_brick) and, for the nfs backend, ``[libvirt]
    nfs_mount_point_base``: Nova's NFS volume driver looks for the share's mount there, so it is
    the directory stackmagic mounts the share in."""
    opts = [("os_brick", "lock_path", str(ctx.settings.data_dir / "os_brick"))]
    if any(b.kind == "nfs" for b in backends(ctx)[0]):
        opts.append(("libvirt", "nfs_mount_point_base", str(mount_base(ctx))))
    return opts


def packages(found: list[Backend]) -> tuple[str, ...]:
    """Debian packages: the NFS driver checks that mount.nfs exists (nfs-common) though it never
    runs it here; qemu-img reads and resizes the volume files and makes snapshot overlays."""
    out = ["qemu-utils"]
    if any(b.kind == "nfs" for b in found):
        out += ["nfs-common", "e2fsprogs"]
    if any(b.kind == "lvm" for b in found):
        out += ["lvm2", "targetcli-fb"]
    return tuple(out)


# -- making it ------------------------------------------------------------------------------
#: the file loop device ``device`` serves now (None when it serves none)
_loop_file = loopback.loop_file


class Record(loopback.Record):
    """What this stack made for Cinder: loop devices (device -> file) and mounts, in the order made."""

    def __init__(self, ctx: "Context"):
        super().__init__(record_file(ctx))


def _make_file(ctx: "Context", be: Backend) -> Path:
    """The sparse backing file (and for nfs its ext4), made once; an existing one is kept."""
    # for nfs: no reserved blocks (Cinder writes as root), one inode per MiB (few large files),
    # and the journal left unwritten: the new file reads as zeros already, and stays sparse
    # (30G: 5 MiB on disk instead of 133)
    mkfs = (["mkfs.ext4", "-q", "-F", "-m", "0", "-T", "largefile", "-E", "lazy_journal_init=1"]
            if be.kind == "nfs" else None)
    return loopback.make_file(ctx, backing_file(ctx, be), size(ctx), "VOLUME_BACKING_FILE_SIZE", mkfs)


def prepare(ctx: "Context", be: Backend) -> None:
    """devstack's init_cinder_backend_<kind>: the backing file, its loop device and, for nfs,
    the mounts the NFS driver and Nova find the share at; for lvm, the volume group."""
    if os.geteuid() != 0:
        raise StackError("c-vol's backing file needs a loop device and mounts: run stack as root "
                         "or disable_service c-vol")
    record = Record(ctx)
    path = _make_file(ctx, be)
    device = loopback.attach(ctx, record, path)
    if be.kind == "lvm":
        vg = volume_group(ctx, be)
        if not _has_vg(ctx, vg):
            ctx.run("vgcreate", vg, device, timeout=120)
        ctx.run("vgchange", "-ay", vg, timeout=120)
        return
    export, where = export_dir(ctx, be), share_mount(ctx, be)
    loopback.mount(ctx, record, export, "-t", "ext4", device)
    loopback.mount(ctx, record, where, "--bind", str(export))
    keep = where / KEEP
    keep.mkdir(exist_ok=True)
    loopback.mount(ctx, record, keep, "--bind", str(keep))
    ctx.log(f"share {share(ctx, be)}: {path} on {device}, mounted at {export} and {where}")


def _has_vg(ctx: "Context", vg: str) -> bool:
    out = ctx.run("vgs", "--noheadings", "-o", "vg_name", check=False, quiet=True, timeout=120)
    return vg in out.split()


def release(ctx: "Context") -> list[str]:
    """Undo what :func:`prepare` recorded: unmount newest first, deactivate the volume groups on
    our loop devices, detach each loop device that still serves its recorded file. Returns what
    it undid; what it could not (a mount in use) stays recorded, with a warning."""
    def deactivate(device: str) -> None:
        if Path("/dev/mapper/control").exists():
            for vg in _vgs_on(ctx, device):
                ctx.run("vgchange", "-an", vg, check=False, timeout=120)

    return loopback.release(ctx, Record(ctx), before_detach=deactivate)


def _vgs_on(ctx: "Context", device: str) -> list[str]:
    out = ctx.run("pvs", "--noheadings", "-o", "vg_name", device, check=False, quiet=True, timeout=120)
    return [line.strip() for line in out.splitlines() if line.strip()]


def remove_files(ctx: "Context", found: list[Backend]) -> list[Path]:
    """clean: the backing files of these backends (after :func:`release`)."""
    gone = []
    for be in found:
        path = backing_file(ctx, be)
        for p in (path, path.with_name(f".{path.name}.new")):
            if p.exists():
                p.unlink()
                gone.append(p)
    return gone
