"""Heat beside the default set, then the seed post's "everything" localrc, for real (issue 13), on
the session's default cloud (tests/default_cloud.py) after test_agents turned it to the agent
layout — each stacked again, no ``clean``:

- the heat stage, the defaults with Swift and ``enable_plugin heat`` (the tutorials' localrc):
  back on OVN (the agents, their namespaces and br-tun gone; the tutorials' 05 reaches a guest),
  Swift and Heat run, and demo's template with a server, a Cinder volume attached to it and a Swift container
  reaches CREATE_COMPLETE (each resource checked through its own API); deleting the stack takes
  all three away (test_heat, test_swift and test_horizon then check their project on this
  stage);
- the post's own lines, as the tutorials' 06 writes and stacks them (tests/default_cloud.py
  ``everything_localrc``; the post's handy settings, RECLONE and the 16M backing file among them,
  are 07's topics and the sample ``blog-everything``'s, planned in test_localrc): what still exists
  upstream runs — Swift's four servers, Ceilometer's agents with Gnocchi, Trove's three, Zaqar (the post's ``zaqar-server`` runs as
  ``zaqar-wsgi`` + ``zaqar-websocket``), Tempest — beside the whole default set; Heat stops,
  as the post's last line disables it; what is gone upstream (Sahara, ceilometer-collector /
  -api) is explained in warnings and runs nothing;
- Swift stores an object for demo and gives it back; a second ``stack`` with nothing changed
  restarts nothing (test_trove, test_zaqar and test_ceilometer then check their projects on
  this stack).

The session's last test (the tutorials' 08, in test_compute) then unstacks the everything stack
(and checks that no swift-, zaqar- or redis process, nor any other, stays). Root only; slow.
"""

from __future__ import annotations

import os
import uuid

import pytest
import yaml

from tests.conftest import sdk_connection, wait_until
from tests.default_cloud import assert_layout, engine_for, restack

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and Open vSwitch run as root")]

SWIFT = {"s-proxy", "s-object", "s-container", "s-account"}
ZAQAR = {"zaqar-wsgi", "zaqar-websocket", "redis"}
HEAT = {"h-api", "h-api-cfn", "h-eng"}
TROVE = {"tr-api", "tr-tmgr", "tr-cond"}
TELEMETRY = {"ceilometer-acentral", "ceilometer-anotification", "ceilometer-acompute", "gnocchi-api",
             "gnocchi-metricd"}


def healthy(engine) -> dict:
    status = {s.service: s for s in engine.status()}
    assert not {n: s.detail for n, s in status.items() if not s.healthy}
    return status


#: a server on ``private``, a volume attached to it, a container: three services' resources
TEMPLATE = """
heat_template_version: "2021-04-16"
parameters:
  image: {type: string}
  flavor: {type: string}
  network: {type: string}
  container_name: {type: string}
resources:
  server:
    type: OS::Nova::Server
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      networks: [{network: {get_param: network}}]
  volume:
    type: OS::Cinder::Volume
    properties: {size: 1}
  attachment:
    type: OS::Cinder::VolumeAttachment
    properties: {instance_uuid: {get_resource: server}, volume_id: {get_resource: volume}}
  container:
    type: OS::Swift::Container
    properties: {name: {get_param: container_name}}
outputs:
  server: {value: {get_resource: server}}
  volume: {value: {get_resource: volume}}
"""


@pytest.mark.cloud_stage("heat")
def test_back_to_ovn_with_swift_and_heat(default_cloud):
    """The heat stage (the tutorials' localrc, which their 03 stacks first in a session: then
    this re-stack does nothing): back on OVN, Swift and Heat run. (The tutorials' 05, run on
    this stage right after the switch, boots a guest and reaches it over SSH.)"""
    engine = restack(default_cloud, "heat")
    assert_layout(engine, agents=False)
    assert HEAT | SWIFT <= set(healthy(engine))


@pytest.mark.cloud_stage("heat")
def test_a_template_with_a_server_a_volume_and_a_container_completes(default_cloud):
    from stackmagic.guestcheck import _spec

    spec = _spec(engine_for(default_cloud), "unused", 60)
    container = f"heat-{uuid.uuid4().hex[:8]}"
    with sdk_connection(default_cloud["root"], "devstack") as demo:
        orch = demo.orchestration
        made = orch.create_stack(name="everything", template=yaml.safe_load(TEMPLATE), parameters={
            "image": spec["image"], "flavor": spec["flavor"], "network": spec["network"],
            "container_name": container})
        assert wait_until(lambda: orch.get_stack(made.id).status != "CREATE_IN_PROGRESS", 600)
        done = orch.get_stack(made.id)
        assert done.status == "CREATE_COMPLETE", done.status_reason
        out = {o["output_key"]: o["output_value"] for o in done.outputs}
        assert demo.compute.get_server(out["server"]).status == "ACTIVE"
        volume = demo.block_storage.get_volume(out["volume"])
        assert volume.status == "in-use"
        assert [a["server_id"] for a in volume.attachments] == [out["server"]]
        assert container in [c.name for c in demo.object_store.containers()]

        orch.delete_stack(made.id)

        def gone() -> bool:
            found = orch.find_stack(made.id, ignore_missing=True)
            return found is None or found.status in ("DELETE_COMPLETE", "DELETE_FAILED")
        assert wait_until(gone, 600)
        found = orch.find_stack(made.id, ignore_missing=True)
        assert found is None or found.status == "DELETE_COMPLETE", found.status_reason
        assert demo.compute.find_server(out["server"], ignore_missing=True) is None
        assert demo.block_storage.find_volume(out["volume"], ignore_missing=True) is None
        assert container not in [c.name for c in demo.object_store.containers()]


@pytest.mark.cloud_stage("everything")
def test_the_posts_everything_runs_what_still_exists_beside_the_default_set(default_cloud):
    engine = restack(default_cloud, "everything")
    status = healthy(engine)
    assert SWIFT | ZAQAR | TROVE | TELEMETRY | {"n-cpu", "c-vol", "q-ovn-agent", "horizon"} <= set(status)
    assert not HEAT & set(engine.tmux.running())        # its last line: disable_service heat ...
    said = "\n".join(engine.config.warnings)
    for gone in ("sahara", "ceilometer-collector", "ceilometer-api", "zaqar-server"):
        assert f"{gone} (retired)" in said
    assert "sahara" not in engine.tmux.running()


@pytest.mark.cloud_stage("everything")
def test_swift_keeps_demos_object(default_cloud):
    with sdk_connection(default_cloud["root"], "devstack") as demo:
        store = demo.object_store
        name, body = f"everything-{uuid.uuid4().hex[:8]}", os.urandom(4096)
        store.create_container(name=name)
        store.upload_object(container=name, name="blob", data=body)
        assert store.download_object("blob", container=name) == body
        store.delete_object("blob", container=name)
        store.delete_container(name)


@pytest.mark.cloud_stage("everything")
def test_a_second_stack_with_nothing_changed_restarts_nothing(default_cloud):
    """Forty-odd services, and a second stack with nothing changed runs no step at all."""
    again = engine_for(default_cloud).stack()
    assert not again.ran, [r.step for r in again.ran]
    assert all(s.healthy for s in again.services)
    print(f"\neverything stack: nothing-changed re-run {again.seconds:.1f} s")
