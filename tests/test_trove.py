"""Trove for real (catalog/trove.py, trove_script.py), on the session's shared cloud in its
"everything" stage (tests/test_everything.py stacks the seed post's localrc, whose
``enable_service trove tr-api tr-tmgr tr-cond`` runs the recipe; sources mirrored from PyPI
sdists): tr-api, tr-tmgr and tr-cond are healthy (the task manager and conductor answer a ping
over RabbitMQ on their own topics, and a topic nobody reads gets no answer), the demo and admin
users' tokens list the registered datastores through Trove's REST API at the ``database``
endpoint of the catalog. test_everything checks that a second ``stack`` restarts nothing, and
test_compute's unstack that nothing is left.

Plans alone (no services) show what the seed post's ``enable_service trove tr-api tr-tmgr
tr-cond`` is told, what the ``enable_plugin`` line enables, what is not built here (the guest
image, the management network) and why, trove.conf and trove-guestagent.conf as the plugin
writes them, and bad input refused before anything is built.

Slow (on the shared cloud), root only, run by CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stackmagic.config import load_config
from stackmagic.errors import ConfigError
from stackmagic.samples import sandbox
from tests.conftest import engine_for, sdk_connection
from tests.default_cloud import on_stage

#: the slow tests check the shared cloud as test_everything left it
pytestmark = pytest.mark.cloud_stage("everything")

PLUGIN_LINE = "enable_plugin trove https://opendev.org/openstack/trove"
POST_LINE = "enable_service trove tr-api tr-tmgr tr-cond"
TROVE = ("tr-api", "tr-tmgr", "tr-cond")
HERE = Path(__file__).parent


def write_localrc(root: Path, *extra: str, services: str = PLUGIN_LINE) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "trove"), "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
        "disable_all_services", "enable_service key mysql rabbit", services, *extra]) + "\n")
    return localrc


def context(localrc: Path):
    """A Context for plan-level calls (no state, tmux or venv), passwords filled in as ``stack``
    fills them."""
    from stackmagic.context import Context
    from stackmagic.passwords import with_passwords

    config = load_config(localrc)
    config = with_passwords(config, config.settings.data_dir / "stackmagic", create=True)
    return Context(config, state=None, tmux=None, venv=None)  # type: ignore[arg-type]


# -- plans alone ----------------------------------------------------------------------------------
def test_the_posts_enable_service_line_runs_the_recipe_and_shows_the_plugin_line(tmp_path):
    localrc = write_localrc(tmp_path, services=POST_LINE)
    cfg = load_config(localrc)
    for service in TROVE:
        (said,) = [w for w in cfg.warnings if f": {service} " in w]
        assert "stackmagic's own trove recipe" in said and PLUGIN_LINE in said, said
    (group,) = [w for w in cfg.warnings if ": trove (group)" in w]
    assert PLUGIN_LINE in group
    steps = [s.id for s in engine_for(localrc).plan().steps]
    assert {"init trove", "accounts trove", *(f"start {s}" for s in TROVE)} <= set(steps)
    # the plan's JSON: every service runs here; the group name is no process of its own
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "plan", "--json", "-c", str(localrc)],
                          capture_output=True, text=True, timeout=120, cwd=HERE.parent)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["service"]: r for r in report["services"]}
    assert all(rows[s]["runs_here"] for s in TROVE)
    assert any(PLUGIN_LINE in w for w in report["warnings"])


def test_enable_plugin_enables_the_plugins_services_from_the_recipe(tmp_path):
    cfg = load_config(write_localrc(tmp_path))
    assert set(TROVE) <= set(cfg.enabled)
    assert cfg.is_service_enabled("trove")            # the plugin's is_service_enabled trove
    assert cfg.settings.repo("trove") == "https://opendev.org/openstack/trove"
    assert not [w for w in cfg.warnings if "tr-" in w or "trove" in w], cfg.warnings
    engine = engine_for(write_localrc(tmp_path))
    projects, unsupported = engine.projects()
    assert not unsupported and "trove" in [p.name for p in projects]
    steps = [s.id for s in engine.plan().steps]
    assert steps.index("init trove") < steps.index("start tr-api")
    assert not (tmp_path / "dest" / "trove").exists()             # nothing cloned by a plan


def test_plan_says_what_is_not_built_and_why(tmp_path):
    from stackmagic.catalog.trove import Trove
    from stackmagic.plan import notes

    engine = engine_for(write_localrc(tmp_path))
    said = notes(engine.ctx, engine.projects()[0])
    assert any(n.startswith("plugin trove:") and "trove.py" in n for n in said)
    (image,) = [n for n in said if n.startswith("trove: datastores")]
    assert "mysql 8.4, mariadb 11.4, postgresql 18" in image
    assert "cannot be created" in image and "trovestack build-image" in image
    assert "--tag trove" in image and "internet" in image
    assert any(n.startswith("trove: Neutron is not enabled") for n in said)
    assert any(n.startswith("trove: Nova is not enabled") for n in said)
    assert not [n for n in said if "TROVE_NON_DEV_IMAGE_URL" in n]
    # with Neutron, what the plugin makes there and is not made here
    other = tmp_path / "neutron"
    other.mkdir()
    with_neutron = Trove().plan_notes(context(write_localrc(other, "enable_service q-svc")))
    (network,) = [n for n in with_neutron if "trove-mgmt" in n]
    assert "not made here" in network and "br-int" in network and "loopback" in network
    # the plugin's download of a ready-made image is not done either
    url = context(write_localrc(other, "TROVE_NON_DEV_IMAGE_URL=https://example.org/guest.qcow2"))
    (download,) = [n for n in Trove().plan_notes(url) if "TROVE_NON_DEV_IMAGE_URL" in n]
    assert "not downloaded" in download and "--tag trove" in download


def test_the_datastores_follow_the_plugins_settings(tmp_path):
    from stackmagic.catalog.trove import Trove

    narrowed = Trove().datastores(context(write_localrc(tmp_path, "TROVE_DATASTORE_TYPE=mariadb")))
    assert narrowed == [("mariadb", "11.4")]
    ctx = context(write_localrc(tmp_path, 'TROVE_DATASTORES="mysql:8.0 mysql:8.4"',
                                "TROVE_DATASTORE_VERSION=8.0"))
    assert Trove().datastores(ctx) == [("mysql", "8.0")]
    opts = {(s, k): v for s, k, v in Trove().tempest_options(ctx)}
    assert opts[("service_available", "trove")] == "true"
    assert opts[("database", "enabled_datastores")] == "mysql"
    assert opts[("database", "default_datastore_versions")] == "mysql:8.0"


@pytest.mark.parametrize(("extra", "says"), [
    (('TROVE_DATASTORES="mysql"',), "TROVE_DATASTORES='mysql': write space-separated datastore:version"),
    (("TROVE_DATASTORE_TYPE=cassandra",), "match none of TROVE_DATASTORES"),
    (("DATABASE_TYPE=sqlite",), "Trove cannot run on DATABASE_TYPE=sqlite"),
])
def test_bad_datastores_are_refused_before_anything_is_built(tmp_path, extra, says):
    localrc = write_localrc(tmp_path, *extra)
    with pytest.raises(ConfigError, match=says):
        engine_for(localrc).plan()
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "stack", "-c", str(localrc)],
                          capture_output=True, text=True, timeout=120, cwd=HERE.parent)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (tmp_path / "dest").exists()


def test_trove_conf_and_the_guest_agents_are_the_plugins(tmp_path):
    from stackmagic import ini
    from stackmagic.catalog.trove import Trove

    localrc = write_localrc(tmp_path, "TROVE_DATASTORE_TYPE=mysql")
    etc = tmp_path / "dest" / "trove" / "etc" / "trove"          # what configure copies
    etc.mkdir(parents=True)
    (etc / "api-paste.ini").write_text("[composite:trove]\n")
    ctx = context(localrc)
    Trove().configure(ctx)
    s, conf_dir = ctx.settings, tmp_path / "data" / "etc" / "trove"
    conf, guest = conf_dir / "trove.conf", conf_dir / "trove-guestagent.conf"
    get = lambda section, key: ini.iniget(conf, section, key)  # noqa: E731
    assert get("database", "connection").startswith("mysql+pymysql://")
    assert get("DEFAULT", "transport_url").startswith("rabbit://")
    assert get("DEFAULT", "control_exchange") == "trove"
    assert get("DEFAULT", "default_datastore") == "mysql"
    assert get("DEFAULT", "agent_call_high_timeout") == "1200"
    assert get("DEFAULT", "max_accepted_volume_size") is None        # written only when set
    assert get("keystone_authtoken", "username") == "trove"
    assert get("service_credentials", "username") == "trove"
    assert get("service_credentials", "password") == s.service_password
    assert get("service_credentials", "region_name") == s.region_name
    assert get("DEFAULT", "rpc_ping_enabled") == "true"
    assert get("instance_ports_cache", "caching") == "false"
    assert get("mariadb", "tcp_ports") == "3306,4444,4567,4568"
    assert get("DEFAULT", "api_paste_config") == str(conf_dir / "api-paste.ini")
    assert (conf_dir / "api-paste.ini").is_file()
    assert "--config-file" in (conf_dir / "wsgi_trove.py").read_text()
    cloudinit = conf_dir / "cloudinit"
    assert get("DEFAULT", "cloudinit_location") == str(cloudinit)
    assert f"CONTROLLER={s.service_host}" in (cloudinit / "mysql.cloudinit").read_text()
    # the guest agent's: the bus at the host gateway the guests see, the datastores' images
    bus = urlsplit(ini.iniget(guest, "DEFAULT", "transport_url"))
    assert (bus.hostname, bus.port) == ("10.0.0.1", s.int("RABBIT_PORT", 0))
    assert ini.iniget(guest, "DEFAULT", "ignore_users") == "os_admin"
    assert ini.iniget(guest, "mysql", "docker_image") == "quay.io/openstack.trove/mysql"
    assert ini.iniget(guest, "postgresql", "docker_image") == "quay.io/openstack.trove/postgres"
    assert ini.iniget(guest, "mariadb", "backup_docker_image") == \
        "quay.io/openstack.trove/db-backup-mariadb"
    for path in (conf, guest):                  # they hold passwords
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_the_endpoints_are_the_plugins(tmp_path, monkeypatch):
    from stackmagic import identity
    from stackmagic.catalog.trove import Trove

    ctx = context(write_localrc(tmp_path))
    applied = []
    monkeypatch.setattr(identity, "apply", lambda _ctx, ops: applied.extend(ops))
    Trove().accounts(ctx)
    port = ctx.settings.int("TROVE_SERVICE_PORT", 0)
    urls = {op["interface"]: op["url"] for op in applied if op["op"] == "endpoint"}
    assert set(urls.values()) == {f"http://127.0.0.1:{port}/v1.0/$(project_id)s"}
    assert {op["type"] for op in applied if op["op"] == "service"} == {"database"}
    assert {"op": "grant", "role": "admin", "user": "trove", "project": "service"} in applied


# -- a real stack ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud as test_everything left it: the post's everything localrc, Trove in it."""
    return on_stage(default_cloud, *TROVE)


def datastores_seen(root: Path, cloud: str) -> tuple[str, dict[str, dict]]:
    """(the database endpoint, the datastores by name) as ``cloud``'s user sees them."""
    with sdk_connection(root, cloud) as conn:
        url = conn.session.get_endpoint(service_type="database", interface="public")
        listed = conn.session.get(f"{url}/datastores")
        assert listed.status_code == 200, listed.text
        return url, {d["name"]: d for d in listed.json()["datastores"]}


@pytest.mark.slow
def test_every_service_is_healthy(stack):
    services = {s.service: s for s in stack["summary"].services}
    assert set(TROVE) <= set(services), set(services)
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    for service in ("tr-tmgr", "tr-cond"):
        assert "answers over the message bus" in services[service].detail, services[service].detail


@pytest.mark.slow
@pytest.mark.parametrize("cloud", ["devstack", "devstack-admin"])
def test_the_api_lists_the_registered_datastores(stack, cloud):
    url, stores = datastores_seen(stack["root"], cloud)
    with sdk_connection(stack["root"], cloud) as conn:
        project = conn.session.get_project_id()
    assert urlsplit(url).path == f"/v1.0/{project}"
    assert {"mysql", "mariadb", "postgresql"} <= set(stores), stores
    mysql = stores["mysql"]
    (version,) = mysql["versions"]
    assert version["name"] == "8.4" and mysql["default_version"] == version["id"]


@pytest.mark.slow
def test_a_topic_nobody_serves_gets_no_answer(stack):
    """The health check of tr-tmgr and tr-cond can fail: the same ping on a topic no service
    reads finds no answer."""
    from stackmagic.catalog.trove import SCRIPT

    data = stack["data"]
    out = subprocess.run([str(data / "venv" / "bin" / "python"), str(SCRIPT), "rpc-ping",
                          "--conf", str(data / "etc" / "trove" / "trove.conf"),
                          "--topic", "nobody-reads-this", "--timeout", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no answer to a ping within 2 s" in out.stdout, out.stdout + out.stderr
