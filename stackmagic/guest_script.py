"""Run INSIDE the stack's venv, as root: boot a real guest and log in to it, the way a person
would, then delete what was made. stdin: JSON {"cloud": connect kwargs (the demo project),
"image", "flavor", "network", "public", "namespace", "name", "workdir", "timeout", "banner"}.

Every stage prints one JSON line ``{"stage", "ok", "seconds", ...}``; the last is ``done``.
Ping and ssh run inside the provider namespace (``ip netns exec``): the floating IP is routed
only there, never from the host's own namespace.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import openstack

START = time.monotonic()


def report(stage, ok=True, **data):
    print(json.dumps({"stage": stage, "ok": ok, "seconds": round(time.monotonic() - START, 1),
                      **data}), flush=True)


def wait(predicate, timeout, step=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def in_namespace(namespace, argv, timeout):
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                          text=True, timeout=timeout)


def qemu_rss(server_id):
    """Resident MiB of the guest's qemu (found by the instance's uuid on its command line)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if server_id.encode() in (proc / "cmdline").read_bytes():
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:") and b"qemu" in (proc / "cmdline").read_bytes():
                        return round(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return None


def ssh_argv(spec, key, work, address):
    return ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
            f"UserKnownHostsFile={work / 'known_hosts'}", "-o", "ConnectTimeout=5",
            "-o", "BatchMode=yes", f"{spec['user']}@{address}"]


def boot(conn, spec, key, made):
    """Key pair, server, ACTIVE, console, floating IP; records what it made in ``made``."""
    name, limit = spec["name"], spec["timeout"]
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    old = conn.compute.find_keypair(name)
    if old:
        conn.compute.delete_keypair(old)
    conn.compute.create_keypair(name=name, public_key=key.with_suffix(".pub").read_text().strip())
    made["keypair"] = name
    report("keypair", name=name)

    image = conn.image.find_image(spec["image"])
    flavor = conn.compute.find_flavor(spec["flavor"])
    network = conn.network.find_network(spec["network"])
    missing = [what for what, obj in (("image", image), ("flavor", flavor), ("network", network))
               if obj is None]
    if missing:
        report("server", False, error="not found: " + ", ".join(f"{w} {spec[w]}" for w in missing))
        return False
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": network.id}], key_name=name)
    made["server"] = server.id
    try:
        server = conn.compute.wait_for_server(server, wait=limit, interval=1)
    except Exception as err:  # noqa: BLE001 - reported as a stage
        server = conn.compute.get_server(made["server"])
        report("active", False, error=f"{type(err).__name__}: {err}", status=server.status,
               fault=(server.fault or {}).get("message"))
        return False
    report("active", host=server.hypervisor_hostname or server.compute_host,
           addresses={net: [a["addr"] for a in addrs] for net, addrs in server.addresses.items()})

    def console():
        text = conn.compute.get_server_console_output(server)["output"] or ""
        return text if spec["banner"] in text and name in text else None

    log = wait(console, limit, step=2)
    if not log:
        # what the guest did say (its DHCP and metadata tries): the failure can be read later
        said = conn.compute.get_server_console_output(server)["output"] or ""
        report("console", False, error=f"no banner ({spec['banner']!r}) and hostname on the console",
               console_tail=said.splitlines()[-30:])
        return False
    report("console", banner=spec["banner"], tail=log.strip().splitlines()[-5:])

    public = conn.network.find_network(spec["public"])
    port = next(conn.network.ports(device_id=server.id))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    made["fip"] = fip.id
    made["address"] = fip.floating_ip_address
    report("floating_ip", address=fip.floating_ip_address)
    return True


def reach(spec, key, work, made):
    """Ping and SSH the floating IP from the provider namespace; the guest says its hostname."""
    ns, limit, address, name = spec["namespace"], spec["timeout"], made["address"], spec["name"]

    def pings():
        return in_namespace(ns, ["ping", "-c", "1", "-W", "1", address], 10).returncode == 0

    if not wait(pings, limit, step=0.5):
        report("ping", False, error=f"{address} does not answer ping from namespace {ns}")
        return False
    report("ping", address=address)
    ssh = ssh_argv(spec, key, work, address)

    def logs_in():
        done = in_namespace(ns, [*ssh, "hostname"], 20)
        return done.stdout.strip() if done.returncode == 0 else None

    said = wait(logs_in, limit, step=1)
    if said is None:
        report("ssh", False, error=f"ssh {spec['user']}@{address} from namespace {ns} failed")
        return False
    report("ssh", ok=said.split(".")[0] == name, hostname=said, expected=name,
           qemu_rss_mib=qemu_rss(made["server"]), qemu_pid=qemu_pid(made["server"]))
    return True


def partitions(spec, key, work, address):
    """The guest's block devices from its /proc/partitions, name -> size in KiB (None: no SSH)."""
    done = in_namespace(spec["namespace"], [*ssh_argv(spec, key, work, address), "cat /proc/partitions"], 20)
    if done.returncode != 0:
        return None
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    return {row[3]: int(row[2]) for row in rows if len(row) == 4 and row[2].isdigit()}


def volume(conn, spec, key, work, made):
    """A 1 GiB volume from Cinder, attached to the server: the guest sees a new 1 GiB disk."""
    limit, address = spec["timeout"], made["address"]
    before = partitions(spec, key, work, address) or {}
    vol = conn.block_storage.create_volume(size=1, name=spec["name"])
    made["volume"] = vol.id
    try:
        vol = conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=1, wait=limit)
    except Exception as err:  # noqa: BLE001 - reported as a stage
        report("volume", False, error=f"the volume did not become available: {err}")
        return False
    conn.compute.create_volume_attachment(made["server"], volume=vol)
    try:
        conn.block_storage.wait_for_status(vol, "in-use", failures=["error", "error_attaching"],
                                           interval=1, wait=limit)
    except Exception as err:  # noqa: BLE001
        report("volume", False, error=f"the volume was not attached: {err}")
        return False

    def new_disk():
        now = partitions(spec, key, work, address) or {}
        return next((name for name, kib in now.items() if name not in before and kib == 1024 * 1024), None)

    device = wait(new_disk, limit, step=1)
    report("volume", ok=device is not None, device=device, volume=vol.id,
           **({} if device else {"error": "the guest shows no new 1 GiB disk in /proc/partitions"}))
    return device is not None


def delete(conn, made):
    if made.get("fip"):
        conn.network.delete_ip(made["fip"], ignore_missing=True)
    if made.get("server"):
        conn.compute.delete_server(made["server"], ignore_missing=True)
        try:
            conn.compute.wait_for_delete(conn.compute.get_server(made["server"]), wait=120)
        except openstack.exceptions.NotFoundException:
            pass
        except Exception:  # noqa: BLE001 - reported as not cleaned
            report("cleanup", False, error="the server was not deleted within 120 s")
    if made.get("volume"):
        # deleting the server detached it
        try:
            vol = conn.block_storage.get_volume(made["volume"])
            conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=1, wait=120)
            conn.block_storage.delete_volume(vol)
        except openstack.exceptions.NotFoundException:
            pass
        except Exception:  # noqa: BLE001 - reported as not cleaned
            report("cleanup", False, error="the volume was not deleted")
    if made.get("keypair"):
        conn.compute.delete_keypair(made["keypair"], ignore_missing=True)


def qemu_pid(server_id):
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if server_id.encode() in cmd and b"qemu" in cmd.split(b"\0")[0]:
                return int(proc.name)
    return None


def main() -> None:
    """mode "all": boot, reach, delete; "keep": boot and reach, print ``made``; "reach" and
    "delete": for a guest kept before (``made`` in the spec)."""
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["cloud"])
    work = Path(spec["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    key = work / "id_ed25519"
    mode = spec.get("mode", "all")
    made = dict(spec.get("made") or {})
    try:
        if mode in ("all", "keep"):
            if boot(conn, spec, key, made) and reach(spec, key, work, made) and spec.get("volume"):
                volume(conn, spec, key, work, made)
        elif mode == "reach":
            reach(spec, key, work, made)
    finally:
        if mode in ("all", "delete") or (mode == "keep" and not made.get("address")):
            delete(conn, made)
        print(json.dumps({"stage": "done", "ok": True, "made": made,
                          "seconds": round(time.monotonic() - START, 1)}), flush=True)


if __name__ == "__main__":
    main()
