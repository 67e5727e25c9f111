"""A small cirros-like guest image built from Debian packages only: nothing is downloaded but
``.deb`` files through ``apt-get download``.

The guest is Debian's cloud kernel and an initramfs that stays the root file system: busybox
(static), dropbear for SSH and the libraries it needs, the virtio/IDE/cdrom modules, and the boot
script in ``rootfs/`` (DHCP with option 121 and the MTU, hostname and ssh keys from a config drive
or the metadata service, the ACPI power button, a banner and the hostname on the consoles). Log
in as ``cirros`` with the instance's key (or the password ``gocubsgo``); ``sudo`` runs its command.

The disk: an MBR (syslinux's boot code, a partition table written here), one FAT partition made
with ``mkfs.fat -C`` and made bootable by ``syslinux --install`` through mtools, holding the
kernel, the initramfs and ``syslinux.cfg``; then ``qemu-img convert -c -O qcow2``. No mounts, no
loop devices, nothing that needs root: the boot tools (syslinux, mtools, dosfstools) are
extracted from their ``.deb`` files and run from there; only ``qemu-img`` (qemu-utils) and
``apt-get``/``dpkg-deb`` come from the host.

Everything is cached: the ``.deb`` files under ``$FILES/guest/debs``, the image under
``$FILES/images/stackmagic-guest-<key>.qcow2`` where the key covers every package's version, the
files of ``rootfs/`` and this module's source. A re-run costs a look at apt's lists (the versions
resolved last time are remembered until those lists change); a change of any input builds anew.
The image is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

NAME = "stackmagic-guest"          #: the image's name in Glance
BANNER = "stackmagic guest"        #: printed on the consoles at boot; the hostname follows
LOGIN_USER = "cirros"              #: uid 0; ``sudo`` just runs its arguments
LOGIN_PASSWORD = "gocubsgo"        #: cirros's well-known password, for the console and ssh
KERNEL_PACKAGE = "linux-image-cloud-amd64"   #: a meta package: the real kernel is its dependency
#: What goes into the guest (besides the kernel): dropbear's libraries are found from its ELF
#: headers; these are the packages they come from.
GUEST_PACKAGES = ("busybox-static", "dropbear-bin", "libc6", "libcrypt1", "zlib1g",
                  "libtomcrypt1", "libtommath1", "libgmp10")
#: What makes the disk bootable; extracted and run from the build directory, never installed.
BOOT_PACKAGES = ("syslinux", "syslinux-common", "mtools", "dosfstools")
#: The host needs only these (Debian package: command).
HOST_TOOLS = {"qemu-utils": "qemu-img", "apt": "apt-get", "dpkg": "dpkg-deb"}
#: Kernel modules loaded at boot (with what they depend on): Nova's virtio devices, the IDE cdrom
#: that holds a config drive on machine type ``pc``, its file systems, the power button.
MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "sd_mod", "virtio_rng",
           "virtio_console", "virtio_balloon", "ata_piix", "ata_generic", "sr_mod", "isofs",
           "vfat", "nls_cp437", "nls_utf8", "nls_ascii", "button", "evdev")
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200n8 quiet"
ROOTFS = Path(__file__).with_name("rootfs")
_EXECUTABLE_DIRS = ("bin/", "etc/init.d/", "etc/acpi/", "etc/udhcpc/")
_LIBDIR = "lib/x86_64-linux-gnu"


class GuestBuildError(RuntimeError):
    """The guest image could not be built; the message says what to change."""


@dataclasses.dataclass
class GuestImage:
    path: Path                     #: the qcow2
    key: str                       #: what went into it, hashed
    packages: dict[str, str]       #: Debian package -> version
    built: bool                    #: False when it came from the cache
    seconds: float                 #: how long ensuring it took

    @property
    def properties(self) -> dict[str, str]:
        """What to tell Glance besides disk_format=qcow2, container_format=bare. A virtio RNG
        (where the flavor allows it, as devstack's flavors do) spares the guest a wait for
        entropy before it makes its ssh host keys."""
        return {"os_type": "linux", "hw_rng_model": "virtio", "stackmagic_guest_key": self.key}


Run = Callable[..., str]


def _subprocess_run(*argv: str | os.PathLike, cwd: Path | None = None, env: dict | None = None,
                    input: str | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env={**os.environ, **(env or {})},
                          input=input, capture_output=True, text=True, check=False)
    if done.returncode:
        raise GuestBuildError(f"`{' '.join(map(str, argv))}` failed ({done.returncode}): "
                              f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


# -- which packages, which versions ----------------------------------------------------------------
def _apt_show(run: Run, names: Iterable[str]) -> dict[str, dict[str, str]]:
    names = list(names)
    try:
        out = run("apt-cache", "show", "--no-all-versions", *names)
    except Exception as err:  # noqa: BLE001 - said plainly below
        raise GuestBuildError(f"apt-cache does not know {' '.join(names)} ({err}); the guest image "
                              "is built from Debian packages: run `apt-get update` as root") from None
    found: dict[str, dict[str, str]] = {}
    for stanza in out.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, val = line.partition(":")
                fields[key] = val.strip()
        if "Package" in fields:
            found.setdefault(fields["Package"], fields)
    missing = [n for n in names if n not in found]
    if missing:
        raise GuestBuildError(f"apt-cache has no {', '.join(missing)}; run `apt-get update` as root")
    return found


def resolve_packages(run: Run = _subprocess_run) -> dict[str, str]:
    """Package -> version of everything the image is made of (the apt candidates)."""
    meta = _apt_show(run, [KERNEL_PACKAGE])[KERNEL_PACKAGE]
    kernel = next((d.split()[0] for d in meta.get("Depends", "").split(",")
                   if d.strip().startswith("linux-image-")), None)
    if not kernel:
        raise GuestBuildError(f"{KERNEL_PACKAGE} names no linux-image package it depends on")
    shown = _apt_show(run, [kernel, *GUEST_PACKAGES, *BOOT_PACKAGES])
    return {name: shown[name]["Version"] for name in [kernel, *GUEST_PACKAGES, *BOOT_PACKAGES]}


def _apt_fingerprint() -> str:
    """What apt's answers depend on: its package lists and its configuration (names, sizes,
    mtimes). Without a change there, the candidates resolved last time still stand."""
    parts = []
    for directory in (Path("/var/lib/apt/lists"), Path("/etc/apt")):
        for path in sorted(directory.rglob("*")) if directory.is_dir() else []:
            if path.name == "lock" or "partial" in path.parts:     # touched by any apt run
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def resolve_packages_cached(files: Path, run: Run = _subprocess_run) -> dict[str, str]:
    """:func:`resolve_packages`, remembered under ``files/guest`` until apt's lists change
    (each ``apt-cache`` call costs about a second here: no binary cache)."""
    memo = Path(files) / "guest" / "resolved.json"
    fingerprint = _apt_fingerprint()
    try:
        known = json.loads(memo.read_text())
        if known["fingerprint"] == fingerprint and known["kernel_package"] == KERNEL_PACKAGE \
                and set(known["packages"]) >= {*GUEST_PACKAGES, *BOOT_PACKAGES}:
            return dict(known["packages"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    packages = resolve_packages(run)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "kernel_package": KERNEL_PACKAGE,
                               "packages": packages}, indent=1))
    tmp.replace(memo)
    return packages


def rootfs_files() -> dict[str, bytes]:
    """The guest's own files (package data): path inside the guest -> content."""
    return {p.relative_to(ROOTFS).as_posix(): p.read_bytes()
            for p in sorted(ROOTFS.rglob("*")) if p.is_file()}


def cache_key(packages: dict[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(packages, sort_keys=True).encode())
    for path, content in rootfs_files().items():
        digest.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def image_path(files: Path, key: str) -> Path:
    return Path(files) / "images" / f"{NAME}-{key}.qcow2"


def _deb_name(package: str, version: str) -> str:
    return f"{package}_{version.replace(':', '%3a')}_"


def download(run: Run, debs: Path, packages: dict[str, str], log: Callable[[str], None]) -> dict[str, Path]:
    """The ``.deb`` of each package at its version, downloaded into ``debs`` when missing."""
    debs.mkdir(parents=True, exist_ok=True)

    def present() -> dict[str, Path]:
        have = {}
        for pkg, ver in packages.items():
            hits = sorted(debs.glob(_deb_name(pkg, ver) + "*.deb"))
            if hits:
                have[pkg] = hits[0]
        return have

    have = present()
    wanted = [f"{p}={v}" for p, v in packages.items() if p not in have]
    if wanted:
        log(f"guest: apt-get download {' '.join(wanted)}")
        with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as tmp:
            os.chmod(tmp, 0o755)
            run("apt-get", "download", *wanted, cwd=Path(tmp))
            for deb in Path(tmp).glob("*.deb"):
                deb.rename(debs / deb.name)        # complete files only, under their own name
        have = present()
    missing = [p for p in packages if p not in have]
    if missing:
        raise GuestBuildError(f"apt-get download gave no .deb for {', '.join(missing)}")
    return have


# -- ELF: kernel modules' dependencies, a program's libraries --------------------------------------
def _elf_sections(data: bytes) -> dict[str, tuple[int, int, int]]:
    """Section name -> (offset, size, link index) of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise GuestBuildError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + k * shentsize) for k in range(shnum)]
    names_off = headers[shstrndx][4]

    def name(off: int) -> str:
        end = data.index(b"\0", names_off + off)
        return data[names_off + off:end].decode()

    return {name(h[0]): (h[4], h[5], h[6]) for h in headers} | {
        f"#{k}": (h[4], h[5], h[6]) for k, h in enumerate(headers)}


def module_depends(data: bytes) -> list[str]:
    off, size, _ = _elf_sections(data)[".modinfo"]
    for item in data[off:off + size].split(b"\0"):
        if item.startswith(b"depends="):
            return [d for d in item[8:].decode().split(",") if d]
    return []


def elf_needed(data: bytes) -> list[str]:
    sections = _elf_sections(data)
    if ".dynamic" not in sections:
        return []
    off, size, link = sections[".dynamic"]
    str_off = sections[f"#{link}"][0]
    needed = []
    for k in range(0, size, 16):
        tag, val = struct.unpack_from("<qQ", data, off + k)
        if tag == 0:
            break
        if tag == 1:     # DT_NEEDED
            needed.append(data[str_off + val:data.index(b"\0", str_off + val)].decode())
    return needed


def _norm(module: str) -> str:
    return module.replace("-", "_")


def module_order(modroot: Path, builtin: set[str], wanted: Iterable[str]) -> tuple[list[Path], list[str]]:
    """The .ko files to load, dependencies first; and the wanted modules that exist nowhere."""
    files = {}
    for ko in modroot.rglob("*.ko*"):
        files[_norm(ko.name.split(".ko")[0])] = ko
    order: list[Path] = []
    absent: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = _norm(name)
        if name in seen:
            return
        seen.add(name)
        if name not in files:
            if name not in builtin:
                absent.append(name)
            return
        for dep in module_depends(_ko_bytes(files[name])):
            visit(dep)
        order.append(files[name])

    for name in wanted:
        visit(name)
    return order, absent


def _ko_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


# -- the initramfs ---------------------------------------------------------------------------------
class Cpio:
    """A newc cpio archive written here, so owners, modes and device nodes need no root."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1
        self.paths: set[str] = set()

    def _entry(self, path: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        if path in self.paths:
            return
        self.paths.add(path)
        name = path.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name), 0)
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        self.out.write(b"\0" * (-(110 + len(name)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def dir(self, path: str, mode: int = 0o755) -> None:
        parent = path.rpartition("/")[0]
        if parent:
            self.dir(parent)
        self._entry(path, stat.S_IFDIR | mode)

    def _parent(self, path: str) -> None:
        if "/" in path:
            self.dir(path.rpartition("/")[0])

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._parent(path)
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        self._parent(path)
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def _find_lib(trees: Iterable[Path], soname: str) -> Path | None:
    for tree in trees:
        for sub in (_LIBDIR, f"usr/{_LIBDIR}", "lib", "usr/lib"):
            candidate = tree / sub / soname
            if candidate.exists():
                return candidate.resolve()
    return None


def initramfs(trees: dict[str, Path], kernel_tree: Path, busybox_list: str, shadow: str,
              log: Callable[[str], None]) -> tuple[bytes, str]:
    """The gzip'd cpio of the guest's root file system, and the kernel version."""
    archive = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "mnt", "root", "home/cirros/.ssh", "var/log"):
        archive.dir(d, 0o1777 if d == "tmp" else 0o700 if d.endswith(".ssh") else 0o755)
    archive.chardev("dev/console", 5, 1)
    archive.chardev("dev/null", 1, 3, 0o666)
    for merged in ("sbin", "usr/bin", "usr/sbin"):         # one directory for every program
        archive.symlink(merged, "/bin" if merged == "sbin" else "../bin")
    archive.symlink("var/run", "../run")
    archive.symlink("lib64", _LIBDIR)                      # the ELF interpreter's path
    archive.symlink("linuxrc", "bin/busybox")

    own = rootfs_files()
    for path, content in own.items():                      # ours first: they win over applets
        executable = path == "init" or path.startswith(_EXECUTABLE_DIRS)
        archive.file(path, content, 0o755 if executable else 0o644)
    archive.file("etc/shadow", shadow.encode(), 0o600)

    archive.file("bin/busybox", (trees["busybox-static"] / "bin/busybox").read_bytes(), 0o755)
    for applet in busybox_list.split():
        name = applet.rpartition("/")[2]
        if name and name != "busybox":
            archive.symlink(f"bin/{name}", "busybox")

    dropbear = trees["dropbear-bin"]
    programs = [dropbear / "usr/sbin/dropbear", dropbear / "usr/bin/dropbearkey"]
    lib_trees = [trees[p] for p in GUEST_PACKAGES]
    pending = list(programs)
    done: set[str] = set()
    for prog in programs:
        archive.file(f"bin/{prog.name}", prog.read_bytes(), 0o755)
    interp = _find_lib(lib_trees, "ld-linux-x86-64.so.2")
    if interp is None:
        raise GuestBuildError("libc6's .deb has no ld-linux-x86-64.so.2")
    archive.file(f"{_LIBDIR}/ld-linux-x86-64.so.2", interp.read_bytes(), 0o755)
    while pending:
        for soname in elf_needed(pending.pop().read_bytes()):
            if soname in done:
                continue
            done.add(soname)
            lib = _find_lib(lib_trees, soname)
            if lib is None:
                raise GuestBuildError(f"no package in {GUEST_PACKAGES} has {soname}, which dropbear needs")
            archive.file(f"{_LIBDIR}/{soname}", lib.read_bytes(), 0o755)
            pending.append(lib)

    modroots = sorted((kernel_tree / "lib/modules").iterdir())
    if not modroots:
        raise GuestBuildError("the kernel package has no lib/modules")
    modroot = modroots[0]
    version = modroot.name
    builtin_file = modroot / "modules.builtin"
    builtin = {_norm(Path(line).name.split(".ko")[0])
               for line in (builtin_file.read_text().splitlines() if builtin_file.exists() else [])}
    order, absent = module_order(modroot, builtin, MODULES)
    if absent:
        log(f"guest: kernel {version} has no module {', '.join(absent)} (left out)")
    lines = []
    for ko in order:
        rel = ko.relative_to(modroot.parent).as_posix()
        if rel.endswith((".xz", ".gz")):
            rel = rel.rsplit(".", 1)[0]
        archive.file(f"lib/modules/{rel}", _ko_bytes(ko))
        lines.append(rel)
    archive.file("etc/modules.order", ("\n".join(lines) + "\n").encode())
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0), version


# -- the disk --------------------------------------------------------------------------------------
def _mbr(boot_code: bytes, start: int, sectors: int, part_type: int) -> bytes:
    if len(boot_code) > 440:
        raise GuestBuildError("syslinux's mbr.bin is larger than 440 bytes")
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", part_type, b"\xfe\xff\xff", start, sectors)
    return (boot_code.ljust(440, b"\0") + b"SMG1" + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa")


def _tool_env(trees: dict[str, Path], work: Path) -> dict[str, str]:
    rc = work / "mtoolsrc"
    rc.write_text("mtools_skip_check=1\n")
    path = [str(trees["mtools"] / "usr/bin"), str(trees["syslinux"] / "usr/bin"),
            str(trees["dosfstools"] / "sbin"), os.environ.get("PATH", "/usr/bin:/bin")]
    return {"PATH": ":".join(path), "MTOOLSRC": str(rc), "MTOOLS_SKIP_CHECK": "1"}


def disk(run: Run, trees: dict[str, Path], work: Path, kernel: bytes, initrd: bytes, raw: Path) -> None:
    env = _tool_env(trees, work)
    cfg = (f"SERIAL 0 115200\nPROMPT 0\nTIMEOUT 1\nDEFAULT guest\nLABEL guest\n"
           f"  LINUX /vmlinuz\n  INITRD /initrd.gz\n  APPEND {KERNEL_CMDLINE}\n")
    for name, data in (("vmlinuz", kernel), ("initrd.gz", initrd), ("syslinux.cfg", cfg.encode())):
        (work / name).write_bytes(data)
    start = 2048                                              # the partition at 1 MiB
    kib = ((len(kernel) + len(initrd)) * 11 // 10 // 1024 + 2048 + 1023) // 1024 * 1024
    fat = work / "fat.img"
    run(trees["dosfstools"] / "sbin/mkfs.fat", "-C", "-F", "16", "-n", "STACKMAGIC", "-h", str(start),
        fat, str(kib), env=env)
    run(trees["syslinux"] / "usr/bin/syslinux", "--install", fat, env=env)
    run(trees["mtools"] / "usr/bin/mcopy", "-i", fat, work / "vmlinuz", work / "initrd.gz",
        work / "syslinux.cfg", "::/", env=env)
    boot_code = (trees["syslinux-common"] / "usr/lib/syslinux/mbr/mbr.bin").read_bytes()
    with open(raw, "wb") as out:
        out.write(_mbr(boot_code, start, kib * 2, 0x0E).ljust(start * 512, b"\0"))
        with open(fat, "rb") as src:
            shutil.copyfileobj(src, out)


# -- the whole ------------------------------------------------------------------------------------
def ensure(files: Path, run: Run = _subprocess_run, log: Callable[[str], None] = lambda _m: None) -> GuestImage:
    """The guest's qcow2 under ``files/images``: from the cache, else built now."""
    began = time.monotonic()
    files = Path(files)
    for package, command in HOST_TOOLS.items():
        if not shutil.which(command):
            raise GuestBuildError(f"building the guest image needs `{command}`: install the Debian "
                                  f"package {package}")
    packages = resolve_packages_cached(files, run)
    key = cache_key(packages)
    final = image_path(files, key)
    if final.exists() and final.stat().st_size:
        return GuestImage(final, key, packages, False, time.monotonic() - began)
    log(f"guest: building {final.name} from {', '.join(f'{p} {v}' for p, v in packages.items())}")
    debs = download(run, files / "guest" / "debs", packages, log)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=files / "guest", prefix=f".build-{key}-") as tmp:
        work = Path(tmp)
        trees: dict[str, Path] = {}
        for pkg, deb in debs.items():
            trees[pkg] = work / "pkg" / pkg
            trees[pkg].mkdir(parents=True)
            run("dpkg-deb", "-x", deb, trees[pkg])
        kernel_pkg = next(p for p in packages if p.startswith("linux-image-"))
        trees["kernel"] = trees[kernel_pkg]
        kernels = sorted((trees["kernel"] / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise GuestBuildError(f"{kernel_pkg} has no /boot/vmlinuz-*")
        busybox_list = run(trees["busybox-static"] / "bin/busybox", "--list-full")
        shadow_hash = run(trees["busybox-static"] / "bin/busybox", "mkpasswd", "-m", "sha512",
                          input=LOGIN_PASSWORD + "\n").strip()
        shadow = f"root:!:19000:0:99999:7:::\n{LOGIN_USER}:{shadow_hash}:19000:0:99999:7:::\n"
        initrd, version = initramfs(trees, trees["kernel"], busybox_list, shadow, log)
        raw = work / "disk.raw"
        disk(run, trees, work, kernels[-1].read_bytes(), initrd, raw)
        part = final.with_name(f".{final.name}.{os.getpid()}.part")
        try:
            run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, part)
            final.with_suffix(".json").write_text(json.dumps(
                {"name": NAME, "key": key, "kernel": version, "packages": packages,
                 "cmdline": KERNEL_CMDLINE, "kernel_bytes": (work / "vmlinuz").stat().st_size,
                 "initrd_bytes": len(initrd)}, indent=1) + "\n")
            part.rename(final)                                              # complete: now trusted
        finally:
            part.unlink(missing_ok=True)
    for older in final.parent.glob(f"{NAME}-*"):       # builds from other inputs are superseded
        if older.name.split(".")[0] != final.stem:
            older.unlink(missing_ok=True)
    log(f"guest: {final} ({final.stat().st_size // 1024} KiB) built in {time.monotonic() - began:.1f} s")
    return GuestImage(final, key, packages, True, time.monotonic() - began)
