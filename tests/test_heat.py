"""Heat for real (catalog/heat.py, heat_script.py), on the session's shared cloud at its heat
stage (tests/default_cloud.py: test_everything stacks the default set with Swift and
``enable_plugin heat``; MariaDB, RabbitMQ, sources mirrored from PyPI sdists): every service is
healthy (the engine workers up in Heat's own service table), the stack domain and its admin
exist, the demo user's template (OS::Heat::RandomString, OS::Heat::TestResource and a
wait condition signalled through the CloudFormation API's signed URL) reaches CREATE_COMPLETE
and its outputs are read back, then DELETE_COMPLETE; a re-run with nothing changed runs no step.
test_everything's template adds a server, a volume and a Swift container; its "everything"
stage stops Heat (the post's last line disables it) and checks that nothing of Heat runs then.

Plans alone (no service) show: h-api-cw is explained as removed upstream and never runs; the
auth_encryption_key is generated once, kept with the passwords, written to heat.conf and shown
nowhere; bad input is refused before anything is built.

The slow tests: root only (the shared cloud), run by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from stackmagic.samples import sandbox
from tests.conftest import engine_for, wait_until
from tests.default_cloud import on_stage

#: the slow tests check the shared cloud at the stage that runs Heat
pytestmark = pytest.mark.cloud_stage("heat")

SERVICES = "key mysql rabbit h-eng h-api h-api-cfn"
HERE = Path(__file__).parent
KEY = "0123456789abcdef0123456789abcdef"


def write_localrc(root: Path, *extra: str, services: str = SERVICES) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "heat"), "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
        "disable_all_services", f"enable_service {services}", *extra]) + "\n")
    return localrc


def context(localrc: Path, *, passwords: bool = False):
    """A Context for plan-level calls (no state, tmux or venv); with the passwords filled in as
    ``stack`` fills them."""
    from stackmagic.config import load_config
    from stackmagic.context import Context
    from stackmagic.passwords import with_passwords

    config = load_config(localrc)
    if passwords:
        config = with_passwords(config, config.settings.data_dir / "stackmagic", create=True)
    return Context(config, state=None, tmux=None, venv=None)  # type: ignore[arg-type]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackmagic", *args], capture_output=True, text=True,
                          timeout=300, cwd=HERE.parent)


# -- plans (no services) ------------------------------------------------------------------------
def test_h_api_cw_is_explained_as_removed_upstream_and_never_runs(tmp_path):
    localrc = write_localrc(tmp_path, services=SERVICES + " h-api-cw")
    proc = cli("plan", "--json", "-c", str(localrc))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["service"]: r for r in report["services"]}
    assert rows["h-api-cw"]["status"] == "retired" and not rows["h-api-cw"]["runs_here"]
    assert all(rows[s]["runs_here"] for s in ("h-eng", "h-api", "h-api-cfn"))
    (warning,) = [w for w in report["warnings"] if "h-api-cw" in w]
    assert "removed from Heat in Queens (10.0.0, 2018)" in warning and "enable_plugin aodh" in warning
    steps = [s.id for s in engine_for(localrc).plan().steps]
    assert {"start h-eng", "start h-api", "start h-api-cfn", "accounts heat"} <= set(steps)
    assert not [s for s in steps if "h-api-cw" in s]
    # devstack's order for the plugin: accounts (the stack domain) before the services start
    assert steps.index("accounts heat") < steps.index("start h-eng")


def test_enable_plugin_heat_takes_the_recipe_and_its_services(tmp_path):
    """devstack's line for Heat: the recipe runs, the plugin's three services are enabled, its
    URL is Heat's source (nothing is cloned when the configuration is read)."""
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([*sandbox(tmp_path, "heat"), "DATABASE_TYPE=mysql",
                                  "disable_all_services", "enable_service key mysql rabbit",
                                  "enable_plugin heat https://opendev.org/openstack/heat"]) + "\n")
    engine = engine_for(localrc)
    assert {"h-eng", "h-api", "h-api-cfn"} <= set(engine.config.enabled)
    assert engine.config.settings.repo("heat") == "https://opendev.org/openstack/heat"
    assert "heat" in {p.name for p in engine.projects()[0]}
    assert not (tmp_path / "dest" / "heat").exists()


def fake_source(root: Path) -> None:
    """The parts of Heat's source tree that configure copies (etc/heat)."""
    etc = root / "dest" / "heat" / "etc" / "heat"
    (etc / "environment.d").mkdir(parents=True)
    (etc / "templates").mkdir()
    (etc / "api-paste.ini").write_text("[composite:heat-api]\n")
    (etc / "environment.d" / "default.yaml").write_text("resource_registry: {}\n")
    (etc / "templates" / "AWS_RDS_DBInstance.yaml").write_text("{}\n")


def test_the_auth_encryption_key_is_generated_once_kept_and_secret(tmp_path):
    from stackmagic import ini
    from stackmagic.catalog.heat import Heat
    from stackmagic.config.settings import is_secret

    localrc = write_localrc(tmp_path)
    fake_source(tmp_path)
    ctx = context(localrc, passwords=True)
    key = ctx.settings.get("HEAT_AUTH_ENCRYPTION_KEY")
    assert len(key) == 32 and key != KEY             # Heat takes exactly 32 characters
    saved = tmp_path / "data" / "stackmagic" / "passwords"
    assert f"HEAT_AUTH_ENCRYPTION_KEY={key}\n" in saved.read_text()
    assert saved.stat().st_mode & 0o777 == 0o600
    # the next run reads the same key
    assert context(localrc, passwords=True).settings.get("HEAT_AUTH_ENCRYPTION_KEY") == key
    assert is_secret("HEAT_AUTH_ENCRYPTION_KEY") and is_secret("auth_encryption_key")
    # a stack without Heat has no key to keep
    other = tmp_path / "other"
    other.mkdir()
    assert context(write_localrc(other, services="key mysql"), passwords=True).settings.get(
        "HEAT_AUTH_ENCRYPTION_KEY") is None
    assert "HEAT_AUTH_ENCRYPTION_KEY" not in (other / "data" / "stackmagic" / "passwords").read_text()

    Heat().configure(ctx)
    conf = tmp_path / "data" / "etc" / "heat" / "heat.conf"
    assert ini.iniget(conf, "DEFAULT", "auth_encryption_key") == key
    assert conf.stat().st_mode & 0o777 == 0o600
    # the environment and templates where devstack puts them (/etc/heat/...), Heat told so
    env_dir = ini.iniget(conf, "DEFAULT", "environment_dir")
    assert Path(env_dir, "default.yaml").is_file() and env_dir == str(conf.parent / "environment.d")
    assert Path(ini.iniget(conf, "DEFAULT", "template_dir"), "AWS_RDS_DBInstance.yaml").is_file()

    # a key the user sets is kept as given, and shown nowhere
    localrc = write_localrc(tmp_path, f"HEAT_AUTH_ENCRYPTION_KEY={KEY}")
    assert context(localrc, passwords=True).settings.get("HEAT_AUTH_ENCRYPTION_KEY") == KEY
    for args in (("plan", "-c", str(localrc)), ("plan", "--json", "-c", str(localrc)),
                 ("stack", "--dry-run", "-c", str(localrc))):
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert KEY not in proc.stdout + proc.stderr and key not in proc.stdout + proc.stderr
    assert json.loads(cli("plan", "--json", "-c", str(localrc)).stdout)["settings"][
        "HEAT_AUTH_ENCRYPTION_KEY"] == "********"


def test_heat_conf_is_configure_heats(tmp_path):
    from stackmagic import ini
    from stackmagic.catalog.heat import Heat

    localrc = write_localrc(tmp_path, "HEAT_ENGINE_WORKERS=3")
    fake_source(tmp_path)
    ctx = context(localrc, passwords=True)
    Heat().configure(ctx)
    conf = tmp_path / "data" / "etc" / "heat" / "heat.conf"
    get = lambda section, key: ini.iniget(conf, section, key)  # noqa: E731
    cfn = f"http://127.0.0.1:{ctx.settings.int('HEAT_API_CFN_PORT', 0)}"
    keystone = f"http://127.0.0.1:{ctx.settings.int('KEYSTONE_SERVICE_PORT', 0)}"
    assert get("DEFAULT", "heat_metadata_server_url") == cfn
    assert get("DEFAULT", "heat_waitcondition_server_url") == f"{cfn}/v1/waitcondition"
    assert get("DEFAULT", "num_engine_workers") == "3"
    assert get("database", "connection").startswith("mysql+pymysql://")
    assert get("DEFAULT", "transport_url").startswith("rabbit://")
    assert get("keystone_authtoken", "username") == "heat" and get("ec2authtoken", "username") == "heat"
    assert get("DEFAULT", "deferred_auth_method") == "trusts"
    assert get("trustee", "username") == "heat" and get("trustee", "auth_url") == keystone
    assert get("trustee", "password") == ctx.settings.service_password
    assert get("clients_keystone", "auth_uri") == keystone
    assert get("DEFAULT", "stack_user_domain_name") == "heat"
    assert get("DEFAULT", "stack_domain_admin") == "heat_domain_admin"
    assert get("DEFAULT", "stack_domain_admin_password") == ctx.settings.service_password
    assert get("oslo_policy", "enforce_new_defaults") == "true"
    assert get("volumes", "backups_enabled") == "false"              # no c-bak
    assert get("paste_deploy", "api_paste_config") == str(conf.parent / "api-paste.ini")
    # both APIs have their WSGI shim, reading heat.conf from the command line
    for module in ("wsgi_heat.py", "wsgi_heat_cfn.py"):
        text = (conf.parent / module).read_text()
        assert repr(str(conf)) in text and "--config-file" in text


def test_the_endpoints_are_devstacks(tmp_path, monkeypatch):
    from stackmagic import identity
    from stackmagic.catalog.heat import Heat

    ctx = context(write_localrc(tmp_path), passwords=True)
    applied = []
    monkeypatch.setattr(identity, "apply", lambda _ctx, ops: applied.extend(ops))
    Heat().accounts(ctx)
    s = ctx.settings
    urls = {(op["service"], op["interface"]): op["url"] for op in applied if op["op"] == "endpoint"}
    assert urls[("heat", "public")] == f"http://127.0.0.1:{s.int('HEAT_API_PORT', 0)}/v1/$(project_id)s"
    assert urls[("heat-cfn", "public")] == f"http://127.0.0.1:{s.int('HEAT_API_CFN_PORT', 0)}/v1"
    kinds = {op["name"]: op["type"] for op in applied if op["op"] == "service"}
    assert kinds == {"heat": "orchestration", "heat-cfn": "cloudformation"}
    assert {op["name"] for op in applied if op["op"] == "role"} == {"heat_stack_owner", "heat_stack_user"}
    assert {"op": "grant", "role": "admin", "user": "heat_domain_admin", "actor_domain": "heat",
            "domain": "heat"} in applied
    (admin,) = [op for op in applied if op["op"] == "user" and op["name"] == "heat_domain_admin"]
    assert admin["domain"] == "heat" and admin["password"] == s.service_password


def test_tempest_hears_of_heat_as_configure_tempest_for_heat_tells_it(tmp_path):
    from stackmagic.catalog.heat import Heat

    ctx = context(write_localrc(tmp_path), passwords=True)
    opts = {(section, key): value for section, key, value in Heat().tempest_options(ctx)}
    assert opts[("service_available", "heat")] == "true"
    assert opts[("heat_plugin", "username")] == "demo" and opts[("heat_plugin", "project_name")] == "demo"
    assert opts[("heat_plugin", "admin_username")] == "admin"
    assert opts[("heat_plugin", "password")] == ctx.settings.admin_password
    assert opts[("heat_plugin", "hidden_stack_tag")] == "hidden"
    assert "CfnInitIntegrationTest" in opts[("heat_plugin", "skip_scenario_test_list")]
    off = context(write_localrc(tmp_path, services="key mysql rabbit h-eng"), passwords=True)
    assert Heat().tempest_options(off) == []


@pytest.mark.parametrize(("extra", "says"), [
    (("HEAT_AUTH_ENCRYPTION_KEY=tooshort-s3cret",),
     "HEAT_AUTH_ENCRYPTION_KEY has 15 characters; it must have exactly 32"),
    (("HEAT_ENGINE_WORKERS=0",), "HEAT_ENGINE_WORKERS='0' is too small; write 1 or more"),
])
def test_bad_values_are_refused_when_the_configuration_is_read(tmp_path, extra, says):
    localrc = write_localrc(tmp_path, *extra)
    proc = cli("stack", "-c", str(localrc))
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "tooshort-s3cret" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["localrc"]


@pytest.mark.parametrize(("extra", "says"), [
    (("DATABASE_TYPE=sqlite",), "Heat cannot run on DATABASE_TYPE=sqlite"),
    (("HEAT_STANDALONE=True",), "HEAT_STANDALONE=True"),
    (("ENABLE_HEAT_PLUGINS=heat_docker",), "ENABLE_HEAT_PLUGINS='heat_docker'"),
])
def test_what_heat_cannot_do_here_is_refused_before_anything_is_built(tmp_path, extra, says):
    from stackmagic.errors import ConfigError

    localrc = write_localrc(tmp_path, *extra)
    with pytest.raises(ConfigError, match=says):
        engine_for(localrc).plan()
    proc = cli("stack", "-c", str(localrc))
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (tmp_path / "dest").exists()


# -- a real stack ---------------------------------------------------------------------------------
#: RandomString and TestResource (no other service needed), a wait condition whose handle is
#: signalled over the CloudFormation API's EC2-signed URL (the stack domain user Heat makes for it)
TEMPLATE = """
heat_template_version: "2021-04-16"
parameters:
  length: {type: number, default: 24}
resources:
  secret:
    type: OS::Heat::RandomString
    properties: {length: {get_param: length}, character_classes: [{class: lettersdigits}]}
  echo:
    type: OS::Heat::TestResource
    properties: {value: {list_join: ['-', ['echo', {get_attr: [secret, value]}]]}}
  handle:
    type: OS::Heat::WaitConditionHandle
    properties: {signal_transport: CFN_SIGNAL}
  wait:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, timeout: 300}
outputs:
  secret: {value: {get_attr: [secret, value]}}
  echo: {value: {get_attr: [echo, output]}}
  signalled: {value: {get_attr: [wait, data]}}
"""


@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud at its heat stage."""
    return on_stage(default_cloud, "h-eng", "h-api", "h-api-cfn")


def connect(stack, cloud: str):
    import openstack.config
    from openstack.connection import Connection

    config = openstack.config.OpenStackConfig(config_files=[str(stack["root"] / "clouds.yaml")])
    return Connection(config=config.get_one(cloud=cloud))


@pytest.mark.slow
def test_every_service_is_healthy_and_every_engine_worker_up(stack):
    services = {s.service: s for s in stack["engine"].status()}
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    assert {"h-eng", "h-api", "h-api-cfn"} <= set(services)
    from stackmagic.catalog.heat import Heat

    workers = Heat().engine_workers(stack["engine"].ctx)
    assert f"{workers} workers up" in services["h-eng"].detail, services["h-eng"].detail


@pytest.mark.slow
def test_the_stack_domain_and_its_admin_exist(stack):
    conn = connect(stack, "devstack-admin")
    try:
        domain = conn.identity.find_domain("heat")
        assert domain is not None and domain.description == "Owns users and projects created by heat"
        admin = conn.identity.find_user("heat_domain_admin", domain_id=domain.id)
        assert admin is not None
        roles = {a.role["id"] for a in conn.identity.role_assignments(user_id=admin.id, scope_domain_id=domain.id)}
        assert conn.identity.find_role("admin").id in roles
        for role in ("heat_stack_owner", "heat_stack_user"):
            assert conn.identity.find_role(role) is not None
        kinds = {s.type for s in conn.identity.services()}
        assert {"orchestration", "cloudformation"} <= kinds
    finally:
        conn.close()


@pytest.mark.slow
def test_a_template_as_demo_completes_signals_over_cfn_gives_its_outputs_and_goes(stack):
    conn = connect(stack, "devstack")
    orch = conn.orchestration
    port = stack["engine"].config.settings.int("HEAT_API_CFN_PORT", 8000)
    try:
        created = orch.create_stack(name="smoke", template=yaml.safe_load(TEMPLATE),
                                    parameters={"length": 20})

        def handle_url():
            res = orch.get(f"/stacks/smoke/{created.id}/resources/handle").json()["resource"]
            signal = (res.get("attributes") or {}).get("signal")
            return json.loads(signal)["alarm_url"] if signal else None
        assert wait_until(lambda: orch.get_stack(created.id).status != "CREATE_IN_PROGRESS"
                          or handle_url() is not None, 180)
        url = handle_url()
        # the handle's URL on the CloudFormation API, EC2-signed for a PUT by the stack user
        assert url and url.startswith(f"http://127.0.0.1:{port}/v1/waitcondition/") and "Signature=" in url
        body = json.dumps({"status": "SUCCESS", "reason": "signalled over cfn", "data": "hello",
                           "id": "1"}).encode()
        request = urllib.request.Request(url, data=body, method="PUT",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:      # noqa: S310 - the stack's URL
            assert resp.status == 200
        assert wait_until(lambda: orch.get_stack(created.id).status != "CREATE_IN_PROGRESS", 300)
        done = orch.get_stack(created.id)
        assert done.status == "CREATE_COMPLETE", done.status_reason
        outputs = {o["output_key"]: o["output_value"] for o in done.outputs}
        assert len(outputs["secret"]) == 20 and outputs["secret"].isalnum()
        assert outputs["echo"] == "echo-" + outputs["secret"]
        assert json.loads(outputs["signalled"]) == {"1": "hello"}
        orch.delete_stack(created.id)
        def gone() -> bool:         # asked once each time: the stack may vanish between two asks
            found = orch.find_stack(created.id, ignore_missing=True)
            return found is None or found.status == "DELETE_COMPLETE"
        assert wait_until(gone, 180)
        # Heat still shows a deleted stack by its id, as DELETE_COMPLETE
        shown = orch.get(f"/stacks/smoke/{created.id}", raise_exc=False)
        assert shown.status_code == 404 or shown.json()["stack"]["stack_status"] == "DELETE_COMPLETE"
    finally:
        conn.close()


@pytest.mark.slow
def test_the_auth_encryption_key_is_in_heat_conf_and_in_no_log(stack):
    """heat.conf (0600) and the passwords file hold it; no service or step log, no other file
    stackmagic wrote (config, state), and no summary line shows it."""
    from stackmagic import ini

    data = stack["data"]
    conf = data / "etc" / "heat" / "heat.conf"
    key = ini.iniget(conf, "DEFAULT", "auth_encryption_key")
    assert len(key) == 32 and f"HEAT_AUTH_ENCRYPTION_KEY={key}" in (data / "stackmagic" / "passwords").read_text()
    holders = [path for top in (stack["root"] / "logs", data / "etc", data / "stackmagic")
               for path in top.rglob("*") if path.is_file() and key.encode() in path.read_bytes()]
    assert sorted(holders) == sorted([conf, data / "stackmagic" / "passwords"]), holders
    assert key not in repr(stack["summary"])
    # the engine logs its options at start, the key masked by oslo.config
    assert "auth_encryption_key            = ****" in (stack["root"] / "logs" / "h-eng.log").read_text()


@pytest.mark.slow
def test_a_rerun_with_nothing_changed_runs_no_step(stack):
    engine = engine_for(stack["localrc"])
    started = time.monotonic()
    summary = engine.stack()
    seconds = time.monotonic() - started
    assert [r.step for r in summary.ran] == []
    assert all(s.healthy for s in summary.services)
    print(f"\nre-run: {seconds:.1f} s")
