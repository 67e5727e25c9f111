"""Tests for stackmagic.catalog.names: the table of every service name devstack knows or knew."""

from __future__ import annotations

import doctest
import os
import re
from pathlib import Path

import pytest

from stackmagic.catalog import names
from stackmagic.catalog.names import all_names, closest, explain, lookup, projects
from stackmagic.config.defaults import DEFAULT_ENABLED_SERVICES


REQUIRED = (
    "key g-api g-reg n-api n-cpu n-cond n-sch n-novnc n-spice n-sproxy n-api-meta n-net n-crt "
    "n-obj n-cauth n-cell placement-api placement-client q-svc q-agt q-dhcp q-l3 q-meta "
    "q-ovn-agent q-ovn-metadata-agent q-metering q-qos q-trunk q-lbaas q-fwaas q-vpn "
    "neutron-api neutron-l3 neutron-dhcp c-api c-sch c-vol c-bak s-proxy s-object s-container "
    "s-account h-api h-eng h-api-cfn h-api-cw heat horizon tempest mysql postgresql rabbit "
    "etcd3 dstat memory_tracker file_tracker tls-proxy memcached ovn-controller ovn-northd "
    "ovs-vswitchd ovsdb-server ceilometer ceilometer-acompute ceilometer-acentral "
    "ceilometer-anotification ceilometer-collector ceilometer-api trove tr-api tr-tmgr tr-cond "
    "sahara zaqar zaqar-server zaqar-websocket neutron nova glance swift cinder"
).split()

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def test_required_names_are_known():
    missing = [n for n in REQUIRED if n not in all_names()]
    assert missing == []


@pytest.mark.parametrize("name", DEFAULT_ENABLED_SERVICES)
def test_the_default_services_are_current_names(name):
    entry = lookup(name)
    assert entry is not None and entry.status == "current"


def stackrc_default_services(stackrc: str) -> list[str]:
    """The ENABLED_SERVICES that devstack's stackrc builds when the localrc sets none: its
    ``if ! isset ENABLED_SERVICES`` block, run by bash."""
    import subprocess

    block = re.search(r"^if ! isset ENABLED_SERVICES.*?^fi$", stackrc, re.S | re.M)
    assert block, "stackrc has no 'if ! isset ENABLED_SERVICES' block"
    script = "function isset { [[ -v $1 ]]; }\n" + block.group(0) + "\necho $ENABLED_SERVICES"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.strip()
    return out.split(",")


@pytest.mark.skipif(not os.environ.get("DEVSTACK_SRC"),
                    reason="set DEVSTACK_SRC to a devstack checkout to compare with its stackrc")
def test_the_default_services_are_devstacks():
    stackrc = (Path(os.environ["DEVSTACK_SRC"]) / "stackrc").read_text()
    assert list(DEFAULT_ENABLED_SERVICES) == stackrc_default_services(stackrc)


def test_all_names_has_no_duplicates():
    found = all_names()
    assert len(found) == len(set(found))


def test_every_entry_is_complete():
    for name in all_names():
        entry = lookup(name)
        assert entry is not None and entry.name == name
        assert entry.status in {"current", "plugin", "retired", "group"}, name
        assert entry.description.strip(), name
        assert entry.project.strip(), name
        assert JAPANESE.search(entry.japanese), name
        if entry.status in {"retired", "plugin"}:
            assert entry.note.strip(), name
        if entry.status == "current":
            assert entry.note == "", name


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("n-api", "n-api: Compute API (nova)"),
        ("q-svc", "q-svc: Networking API server (neutron-server) (neutron)"),
        ("g-api", "g-api: Image API (glance)"),
        ("rabbit", "rabbit: RabbitMQ message broker (messaging)"),
    ],
)
def test_explain_known(name, line):
    assert explain(name) == line


def test_known_entry_fields():
    entry = lookup("n-cpu")
    assert entry is not None
    assert (entry.project, entry.status) == ("nova", "current")
    assert lookup("mysql").project == "database"
    assert lookup("ovsdb-server").project == "ovs"
    assert lookup("ovn-northd").project == "ovn"


@pytest.mark.parametrize(
    ("name", "must_say"),
    [
        ("n-net", ["nova-network", "Ussuri", "enable_service q-svc"]),
        ("g-reg", ["registry", "Ussuri", "g-api"]),
        ("n-cell", ["cells v1", "Train"]),
        ("n-crt", ["nova-cert", "Pike"]),
        ("n-obj", ["nova-objectstore", "s-proxy"]),
        ("n-cauth", ["nova-consoleauth"]),
        ("n-vol", ["Cinder", "c-vol"]),
        ("quantum", ["Neutron", "Havana (2013)"]),
        ("q-lbaas", ["Octavia", "enable_plugin octavia https://opendev.org/openstack/octavia"]),
        ("q-vpn", ["enable_plugin neutron-vpnaas"]),
        ("h-api-cw", ["CloudWatch", "Queens (10.0.0, 2018)", "enable_plugin aodh"]),
        ("ceilometer-collector", ["Queens"]),
        ("ceilometer-api", ["gnocchi-api"]),
        ("zaqar-server", ["zaqar-wsgi", "zaqar-websocket", "enable_plugin zaqar"]),
        ("sahara", ["retired in 2024"]),
        ("peakmem_tracker", ["memory_tracker"]),
    ],
)
def test_explain_retired_names_their_replacement(name, must_say):
    assert lookup(name).status == "retired"
    line = explain(name)
    assert line.startswith(f"{name}: ")
    for words in must_say:
        assert words in line


@pytest.mark.parametrize(
    ("name", "plugin"),
    [
        ("ceilometer-acompute", "ceilometer"),
        ("ceilometer-anotification", "ceilometer"),
        ("tr-api", "trove"),
        ("zaqar-websocket", "zaqar"),
        ("ir-cond", "ironic"),
        ("o-api", "octavia"),
        ("h-api", "heat"),
        ("h-eng", "heat"),
        ("q-fwaas", "neutron-fwaas"),
    ],
)
def test_plugin_names_carry_their_enable_plugin_line(name, plugin):
    entry = lookup(name)
    line = f"enable_plugin {plugin} https://opendev.org/openstack/{plugin}"
    assert entry.status == "plugin"
    assert entry.note == line
    assert explain(name).endswith(f"; needs {line}")


@pytest.mark.parametrize(
    "name", ["nova", "glance", "neutron", "swift", "cinder", "trove", "ceilometer", "zaqar",
             "heat", "keystone", "placement"],
)
def test_group_names(name):
    entry = lookup(name)
    assert entry.status == "group"
    assert entry.project == name
    assert name in projects()[name]


def test_plugin_groups_say_which_plugin():
    assert explain("heat").endswith("needs enable_plugin heat https://opendev.org/openstack/heat")
    assert "enable_plugin" not in explain("nova")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("n-apii", "n-api"), ("q-scv", "q-svc"), ("glanc", "glance"), ("c-vl", "c-vol"),
     ("ovn-nortd", "ovn-northd"), ("memory-tracker", "memory_tracker")],
)
def test_closest_finds_the_intended_name(typo, meant):
    assert meant in closest(typo)


def test_closest_respects_n():
    assert len(closest("n-api", n=2)) == 2
    assert closest("n-api", n=1) == ["n-api"]


def test_explain_unknown_suggests():
    line = explain("n-apii")
    assert line.startswith("unknown service 'n-apii'; did you mean: n-api")
    assert lookup("n-apii") is None


def test_explain_unknown_without_suggestion():
    assert lookup("xyzzy") is None
    assert explain("xyzzy") == "unknown service 'xyzzy'; devstack has no service of that name"


@pytest.mark.parametrize(
    ("name", "project"),
    [("neutron-fancy-agent", "neutron"), ("ovn-ic", "ovn"), ("ovs-foo", "ovs"),
     ("n-cpu-2", "nova"), ("n-cond-cell1", "nova"), ("n-novnc-cell2", "nova")],
)
def test_prefix_names_get_a_generic_entry(name, project):
    entry = lookup(name)
    assert entry is not None
    assert (entry.name, entry.project, entry.status) == (name, project, "current")
    assert JAPANESE.search(entry.japanese)
    assert name not in all_names()


def test_generic_entry_still_points_at_a_likely_typo():
    assert "did you mean: neutron-api" in explain("neutron-apii")


def test_prefixes_are_anchored():
    assert lookup("xneutron-api") is None
    assert lookup("n-cpu-x") is None
    assert lookup("ovn-") is None


def test_projects_keep_table_order_and_cover_every_name():
    grouped = projects()
    assert grouped["cinder"][:4] == ["c-api", "c-sch", "c-vol", "c-bak"]
    flat = [n for members in grouped.values() for n in members]
    assert sorted(flat) == sorted(all_names())
    assert {"database", "messaging", "monitoring"} <= grouped.keys()


def test_docstring_examples_hold():
    result = doctest.testmod(names)
    assert result.attempted > 0 and result.failed == 0
