"""Images for Glance (devstack's upload_image): ``IMAGE_URLS`` (http, https and file:// URLs,
downloads cached under ``$FILES/images``); when none is set or none can be had, a tiny qcow2 made
here with qemu-img (a raw file without it), so the image service is exercised for real; when a
compute service (n-cpu) will boot it, the stackmagic guest instead (:mod:`stackmagic.guest`: a
cirros-like guest built from Debian packages, registered as ``stackmagic-guest``).

Nothing half-made is ever trusted: a download or a made image is written under a temporary name
and renamed when complete, and an upload that was cut short (an image left queued or saving in
Glance) is deleted and made again by the next run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic import guest, identity

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).with_name("images_script.py")
LOCAL_NAME = "stackmagic-tiny"


def _disk_format(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"QFI\xfb":
        return "qcow2"
    for ext in ("qcow2", "vmdk", "vhd", "vdi", "iso", "ami", "ari", "aki"):
        if path.name.endswith("." + ext):
            return ext
    return "raw"


def fetch(ctx: "Context", url: str) -> Path | None:
    """The local file for ``url`` (downloaded once into $FILES/images); None if unreachable."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        if path.exists():
            return path
        ctx.warn(f"image {url}: no such file")
        return None
    cache = ctx.settings.files / "images" / Path(parsed.path).name
    if cache.exists() and cache.stat().st_size:
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(cache.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=20) as resp, open(tmp, "wb") as out:  # noqa: S310
            while chunk := resp.read(1 << 20):
                ctx.check_cancel()        # a stop button does not wait for a long download
                out.write(chunk)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if not isinstance(err, OSError):
            raise
        ctx.warn(f"image {url} could not be downloaded ({err}); using a locally built image instead")
        return None
    tmp.rename(cache)                     # complete: only now under the name that is trusted
    return cache


def local_image(ctx: "Context") -> Path:
    """A small bootable-looking disk made here: qcow2 with qemu-img, else 1 MiB raw."""
    directory = ctx.settings.files / "images"
    directory.mkdir(parents=True, exist_ok=True)
    qemu_img = shutil.which("qemu-img")
    if qemu_img:
        path = directory / f"{LOCAL_NAME}.qcow2"
        if not path.exists():
            ctx.run(qemu_img, "create", "-f", "qcow2", path.with_suffix(".tmp"), "16M")
            path.with_suffix(".tmp").rename(path)
        return path
    ctx.warn("qemu-img is not installed (Debian package qemu-utils); registering a raw image")
    path = directory / f"{LOCAL_NAME}.raw"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"\0" * 1024 * 1024)
        tmp.rename(path)
    return path


def _wants_guest(ctx: "Context") -> bool:
    """A guest that really boots is needed when a compute service runs one (not the fake driver)."""
    return (ctx.config.is_service_enabled("n-cpu")
            and (ctx.settings.get("VIRT_DRIVER") or "libvirt") != "fake")


def _guest_image(ctx: "Context") -> "guest.GuestImage | None":
    """The stackmagic guest (built from Debian packages, cached under $FILES/images)."""
    from stackmagic.context import CommandFailed

    def run(*argv, cwd=None, env=None, input=None) -> str:
        return ctx.run(*argv, cwd=cwd, env=env, input=input, quiet=True)
    try:
        return guest.ensure(ctx.settings.files, run=run, log=ctx.log)
    except (guest.GuestBuildError, CommandFailed) as err:
        ctx.warn(f"the guest image could not be built ({err}); registering a tiny image that "
                 "does not boot instead")
        return None


def upload_all(ctx: "Context") -> list[dict]:
    urls = [u.strip() for u in (ctx.settings.get("IMAGE_URLS") or "").split(",") if u.strip()]
    files = [p for p in (fetch(ctx, u) for u in urls) if p is not None]
    names, properties = {}, {}
    if not files and _wants_guest(ctx):
        made = _guest_image(ctx)
        if made:
            files, names[made.path], properties[made.path] = [made.path], guest.NAME, made.properties
    if not files:
        files = [local_image(ctx)]
    specs = []
    for path in files:
        name = path.name
        for suffix in (".qcow2", ".img", ".raw"):
            name = name.removesuffix(suffix)
        specs.append({"name": names.get(path, name), "properties": properties.get(path, {}),
                      "replace_older": path in names,        # the guest: one image by its name
                      "file": str(path), "disk_format": _disk_format(path),
                      "md5": hashlib.md5(path.read_bytes()).hexdigest(),  # noqa: S324 - Glance's checksum
                      "size": path.stat().st_size})
    payload = json.dumps({"auth": identity.admin_auth(ctx), "images": specs})
    out = ctx.run(ctx.venv.python, SCRIPT, input=payload, timeout=600)
    return [json.loads(line[3:]) for line in out.splitlines() if line.startswith("ok ")]
