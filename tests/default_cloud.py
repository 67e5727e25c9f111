"""devstack's default set (an empty localrc, sources from PyPI, plus c-bak), stacked once per test session
and shared by the modules that need a whole cloud. The cloud goes through :data:`STAGES`, each
stacked again on the last with no ``clean`` (:func:`stage_lines` says what each adds):

- ``default``: the empty localrc with Cinder's backups — ``test_compute`` (services, guests,
  Tempest's smoke and identity/image API run, Horizon with a guest), ``test_nova`` (Nova's own
  view of it), ``test_cinder`` (volumes, snapshots, backups);
- ``agents``: the seed post's first localrc, Neutron's agent layout (``test_agents``);
- ``heat``: back to OVN, the tutorials' localrc (the defaults with Swift and Heat): the
  tutorials' 03 stacks it under nbval (``test_tutorials``, then ``test_browser`` runs 05 in
  JupyterLab), ``test_everything`` checks the switch back; ``test_heat``, ``test_swift`` and
  ``test_horizon`` check their project on it;
- ``everything``: the post's "everything" localrc, which the tutorials' 06 stacks after checking
  the memory (``test_tutorials`` runs 06 and 07 on it), ``test_everything``; ``test_trove``,
  ``test_zaqar``, ``test_ceilometer``;
- last, the tutorials' 08 unstacks and cleans it (``test_compute``).

A test names its stage with ``pytest.mark.cloud_stage`` (``default`` without one). The test
that unstacks the cloud runs last (``pytest.mark.unstacks``); ``order`` puts these tests at the
end of the session, by stage, then by :data:`MODULES`, so nothing else runs beside a stack that
holds the machine's libvirtd and Open vSwitch.

Also what the tests look at on the host: its addresses and routes, namespaces, libvirt domains
and the processes a stack may leave behind.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from stackmagic.process_info import alive
from stackmagic.samples import sample_path, sandbox

#: the stages of the shared cloud, in the order the session goes through them
STAGES = ("default", "agents", "heat", "everything")

#: the modules sharing the stack, in the order they run within a stage (the one that stacks a
#: stage first)
MODULES = ("test_compute", "test_nova", "test_cinder", "test_agents", "test_tutorials", "test_browser",
           "test_everything", "test_heat", "test_swift", "test_horizon", "test_trove", "test_zaqar",
           "test_ceilometer")

#: processes that must not outlive `unstack --all` (by /proc/<pid>/comm prefix)
DAEMONS = ("qemu-system", "libvirtd", "virtlogd", "beam.smp", "epmd", "ovsdb-server",
           "ovs-vswitchd", "ovn-northd", "ovn-controller", "haproxy", "nova-", "neutron-",
           "cinder-", "privsep-helper", "gunicorn", "etcd", "mariadbd", "mysqld", "dnsmasq",
           "radvd", "dstat", "redis-server", "swift-", "heat-", "zaqar-", "ceilometer-",
           "gnocchi-", "trove-")


def stage(item) -> str:
    """The stage of the shared cloud a test checks (its ``cloud_stage`` mark; ``default``)."""
    mark = item.get_closest_marker("cloud_stage")
    name = mark.args[0] if mark else "default"
    if name not in STAGES:
        raise ValueError(f"{item.nodeid}: cloud_stage({name!r}) is none of {', '.join(STAGES)}")
    return name


def order(item) -> tuple[int, int, int, int]:
    """Sort key for the session's tests: the rest first, then the default cloud's by stage and
    MODULES, the one that unstacks it last."""
    if "default_cloud" not in getattr(item, "fixturenames", ()):
        return (0, 0, 0, 0)
    module = item.module.__name__.rsplit(".", 1)[-1]
    rank = MODULES.index(module) if module in MODULES else len(MODULES)
    return (1, 1 if item.get_closest_marker("unstacks") else 0, STAGES.index(stage(item)), rank)


def host_network() -> dict:
    """The host namespace's addresses and routes (what the stack must never touch)."""
    def ip(*args):
        return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True).stdout)
    addrs = sorted((link["ifname"], a["local"], a["prefixlen"]) for link in ip("addr")
                   for a in link.get("addr_info", []))
    routes = [{k: r.get(k) for k in ("dst", "gateway", "dev")} for r in ip("route")]
    routes6 = [{k: r.get(k) for k in ("dst", "gateway", "dev")} for r in ip("-6", "route")]
    return {"addresses": addrs, "routes": routes, "routes6": routes6}


def our_processes(pids_before: set[int], names: tuple[str, ...] = DAEMONS) -> dict[int, str]:
    """Live processes started since ``pids_before`` whose name starts with one of ``names``."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in pids_before:
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(names) and alive(int(proc.name)):
            found[int(proc.name)] = comm
    return found


def domains() -> set[str]:
    """The domains libvirtd keeps defined on this machine (its files outlive the daemon)."""
    return {p.stem for p in Path("/etc/libvirt/qemu").glob("*.xml")}


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


#: what the first stages' local.confs add: the sources from PyPI (no git host), Cinder's backups
#: (test_cinder checks them there)
BASE = ["MIRROR_FROM_PYPI=True", "enable_service c-bak"]

#: a test-config section in the first stages' local.confs, merged into tempest.conf (an option
#: neither Tempest's default nor one stackmagic writes, so test_compute sees the merge)
TEST_CONFIG = ["[[test-config|$TEMPEST_CONFIG]]", "[image]", "build_timeout = 240"]

#: the tutorials, two of which write a stage's local.conf
TUTORIALS = Path(__file__).resolve().parent.parent / "notebooks" / "ja"


def notebook_localrc(notebook: str, cell_id: str) -> list[str]:
    """The lines of the ``[[local|localrc]]`` section a tutorial's ``%%local_conf`` cell writes."""
    cells = json.loads((TUTORIALS / f"{notebook}.ipynb").read_text())["cells"]
    cell = next(c for c in cells if c.get("id") == cell_id)
    lines = "".join(cell["source"]).splitlines()
    assert lines[0].startswith("%%local_conf") and lines[1] == "[[local|localrc]]", lines[:2]
    assert not [line for line in lines[2:] if line.startswith("[[")], "one section only"
    return lines[2:]


def tutorial_localrc() -> list[str]:
    """What the tutorials' 02 writes to local.conf: the defaults, the sources from PyPI, Swift
    and Heat."""
    return notebook_localrc("02-localrc", "02-05")


def everything_localrc() -> list[str]:
    """What the tutorials' 06 writes to everything/local.conf and stacks: the post's
    "everything" lines, the sources from PyPI, Ceilometer polling every 15 s."""
    return notebook_localrc("06-all-components", "06-04")


def stage_lines(kind: str) -> list[str]:
    """What a stage's local.conf has besides the sandbox (its whole localrc but the sandbox, and
    its other sections):

    - ``default``: :data:`BASE` and :data:`TEST_CONFIG`: an empty localrc otherwise;
    - ``post``: the same and the seed post's first localrc (Neutron's agents);
    - ``heat``: exactly the tutorials' localrc (:func:`tutorial_localrc`; Swift and Heat beside
      the defaults), so that the series, run on this cloud with the sandbox in its kernel's
      environment, stacks the same cloud;
    - ``everything``: exactly what the tutorials' 06 stacks (:func:`everything_localrc`: the
      post's "everything" lines, and Ceilometer polling every 15 s, as devstack's telemetry jobs
      set it, so a test sees a poll), for the same reason.
    """
    if kind == "heat":
        return tutorial_localrc()
    if kind == "everything":
        return everything_localrc()
    added = {"default": [], "post": [f"source {sample_path('blog-neutron')}"]}[kind]
    return [*BASE, *added, *TEST_CONFIG]


def write_localrc(cloud: dict, kind: str = "default") -> None:
    """local.conf: the sandbox and :func:`stage_lines` of ``kind``."""
    cloud["conf"].write_text("\n".join(["[[local|localrc]]", *cloud["lines"], *stage_lines(kind), ""]))


AGENTS = ("q-agt", "q-dhcp", "q-l3", "q-meta")
OVN = ("ovn-northd", "ovn-controller", "q-ovn-agent")


def assert_layout(engine, *, agents: bool) -> None:
    """Every service healthy, in Neutron's agent layout or in OVN's, nothing of the other left
    running, no namespace of the other's left, br-tun there only for the agents."""
    from stackmagic.catalog import openvswitch as ovs

    assert engine.config.layout == ("openvswitch" if agents else "ovn")
    status = {s.service: s for s in engine.status()}
    assert not {n: s.detail for n, s in status.items() if not s.healthy}
    assert {"c-api", "c-vol", "horizon", "n-cpu"} <= set(status)
    running = set(engine.tmux.running())
    assert set(AGENTS if agents else OVN) <= running
    assert not set(OVN if agents else AGENTS) & running
    stale = ("ovnmeta-",) if agents else ("qdhcp-", "qrouter-")
    assert not [ns for ns in namespaces() if ns.startswith(stale)], namespaces()
    bridges = subprocess.run(ovs.vsctl_argv(engine.ctx, "list-br"), capture_output=True,
                             text=True, check=True).stdout.split()
    assert ("br-tun" in bridges) == agents


def engine_for(cloud: dict):
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    return Engine(load_config(cloud["conf"]))


def restack(cloud: dict, kind: str):
    """The cloud stacked again from the local.conf of ``kind`` (no ``clean``); a new engine on it."""
    write_localrc(cloud, kind)
    cloud["summary"] = engine_for(cloud).stack()
    return engine_for(cloud)


def on_stage(cloud: dict, *services: str) -> dict:
    """The cloud at the stage a module checks one project of: root, data, localrc, the last
    stack's summary and an engine; one of ``services`` (a project's names, as
    ``is_service_enabled`` takes them) must be enabled there, else the module that stacks the
    stage did not run first."""
    import os

    import pytest

    if os.geteuid() != 0:
        pytest.skip("the shared cloud runs libvirtd and Open vSwitch as root")
    engine = engine_for(cloud)
    assert engine.config.is_service_enabled(*services), \
        f"none of {', '.join(services)} is enabled: the test that stacks this stage runs first"
    return {"root": cloud["root"], "data": cloud["root"] / "data", "localrc": cloud["conf"],
            "summary": cloud["summary"], "engine": engine}


@contextlib.contextmanager
def stacked():
    """Stack the default set; afterwards unstack and clean whatever state the tests left it in."""
    # not under pytest's 0700 tmp: qemu and rabbitmq run as their own users
    root = Path(tempfile.mkdtemp(prefix="sm-default-"))
    root.chmod(0o755)
    cloud = {"root": root, "conf": root / "local.conf", "lines": sandbox(root, "default")}
    write_localrc(cloud)
    cloud["before"] = {"network": host_network(), "namespaces": namespaces(), "domains": domains(),
                       "pids": {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}}
    try:
        cloud["summary"] = engine_for(cloud).stack()
        yield cloud
    finally:
        engine_for(cloud).unstack(all=True)
        engine_for(cloud).clean()
        sock = engine_for(cloud).config.settings["TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
