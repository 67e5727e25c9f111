"""Ceilometer and Gnocchi for real (catalog/ceilometer.py, catalog/gnocchi.py,
ceilometer_script.py), on the session's shared cloud in its "everything" stage
(tests/test_everything.py: the seed post's ``enable_service ceilometer ...`` beside the whole
default set brings the central, notification and compute agents, Gnocchi's API and metricd,
Redis; sources mirrored from PyPI sdists, polling every 15 s with CEILOMETER_PIPELINE_INTERVAL):
every service is healthy by its own probe; Gnocchi's API answers a Keystone token (and refuses a request without one); the central
agent's image.size pollster records measures in Gnocchi for Glance's image; a download of that
image reaches Gnocchi as Glance's notification (image.download, a meter only notifications make);
no password reaches the services' logs. test_everything checks that a re-run restarts nothing,
test_compute's unstack that nothing is left.

Plans alone (no service): the seed post's direct ``enable_service ceilometer ...
ceilometer-collector ceilometer-api`` (warnings, what runs and in which order); the plugin line;
the backends that run and those refused; the other settings refused; polling.yaml and the
pipelines as the plugin edits them; the notification settings of the emitting projects.

Slow (on the shared cloud), root only, run by CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmagic import ini
from stackmagic.config import load_config
from stackmagic.errors import ConfigError
from stackmagic.samples import sandbox
from tests.conftest import engine_for, sdk_connection, wait_until
from tests.default_cloud import on_stage

#: the slow tests check the shared cloud as test_everything left it
pytestmark = pytest.mark.cloud_stage("everything")

PLUGIN_LINE = "enable_plugin ceilometer https://opendev.org/openstack/ceilometer"
POST_LINE = ("enable_service ceilometer ceilometer-acompute ceilometer-acentral "
             "ceilometer-anotification ceilometer-collector ceilometer-api")
SERVICES = {"key", "mysql", "rabbit", "redis", "g-api", "gnocchi-api", "gnocchi-metricd",
            "ceilometer-acentral", "ceilometer-anotification"}


def write_localrc(root: Path, *extra: str, line: str = PLUGIN_LINE, database: str = "mysql") -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "ceilometer"), f"DATABASE_TYPE={database}", "MIRROR_FROM_PYPI=True",
        "disable_all_services", "enable_service key mysql rabbit g-api", line,
        "CEILOMETER_PIPELINE_INTERVAL=10", *extra]) + "\n")
    return localrc


def context(localrc: Path):
    """A Context for plan-level calls (no state, tmux or venv), the passwords filled in as
    ``stack`` fills them."""
    from stackmagic.context import Context
    from stackmagic.passwords import with_passwords

    config = load_config(localrc)
    config = with_passwords(config, config.settings.data_dir / "stackmagic", create=True)
    return Context(config, state=None, tmux=None, venv=None)  # type: ignore[arg-type]


def notes_of(engine) -> list[str]:
    from stackmagic.plan import notes

    return notes(engine.ctx, engine.projects()[0])


# -- plans alone ----------------------------------------------------------------------------------
def test_the_posts_line_warns_runs_the_agents_with_gnocchi_and_no_removed_service(tmp_path):
    engine = engine_for(write_localrc(tmp_path, line=POST_LINE))
    warnings = engine.config.warnings
    (collector,) = [w for w in warnings if "ceilometer-collector" in w]
    assert "Queens" in collector and "remove it" in collector
    (api,) = [w for w in warnings if "ceilometer-api" in w]
    assert "gnocchi-api" in api
    for agent in ("ceilometer-acentral", "ceilometer-anotification", "ceilometer-acompute"):
        (said,) = [w for w in warnings if f"{agent} runs" in w]
        assert "ceilometer recipe" in said and PLUGIN_LINE in said
    said = notes_of(engine)
    # Gnocchi, the plugin's default backend, comes though the post names none of its services
    assert any(n.startswith("gnocchi: gnocchi-api and gnocchi-metricd run with Ceilometer") for n in said)
    (compute,) = [n for n in said if n.startswith("ceilometer: ceilometer-acompute")]
    assert "not started" in compute and "n-cpu is not enabled" in compute
    steps = [s.id for s in engine.plan().steps]
    assert not [s for s in steps if "collector" in s or "ceilometer-api" in s or "acompute" in s]
    # start_ceilometer's order: Gnocchi runs and has its endpoint, then ceilometer-upgrade
    # (as the ceilometer user), then the agents
    assert steps.index("start gnocchi-api") < steps.index("accounts gnocchi") < steps.index("init ceilometer")
    assert steps.index("accounts ceilometer") < steps.index("init ceilometer")
    assert steps.index("init ceilometer") < steps.index("start ceilometer-acentral")
    assert steps.index("start redis") < steps.index("start gnocchi-metricd")
    assert steps.index("start rabbit") < steps.index("start ceilometer-anotification")


def test_enable_plugin_takes_the_recipe_and_its_services(tmp_path):
    engine = engine_for(write_localrc(tmp_path))
    cfg = engine.config
    assert {"ceilometer-acompute", "ceilometer-acentral", "ceilometer-anotification", "gnocchi-api",
            "gnocchi-metricd"} <= set(cfg.enabled)
    assert cfg.is_service_enabled("ceilometer")       # the plugin's is_ceilometer_enabled
    assert cfg.settings.repo("ceilometer") == "https://opendev.org/openstack/ceilometer"
    assert not [w for w in cfg.warnings if "ceilometer" in w]
    said = notes_of(engine)
    (stand_in,) = [n for n in said if n.startswith("plugin ceilometer:")]
    assert "ceilometer.py" in stand_in and "https://opendev.org/openstack/ceilometer" in stand_in
    (backend,) = [n for n in said if n.startswith("ceilometer: publishes")]
    assert "gnocchi" in backend and "every 10 s" in backend
    assert not (tmp_path / "dest" / "ceilometer").exists()


def test_backends_none_runs_the_agents_without_gnocchi(tmp_path):
    engine = engine_for(write_localrc(tmp_path, "CEILOMETER_BACKENDS=none"))
    names = [p.name for p in engine.projects()[0]]
    assert "ceilometer" in names and "gnocchi" not in names
    steps = [s.id for s in engine.plan().steps]
    assert "start ceilometer-acentral" in steps and not [s for s in steps if "gnocchi" in s]
    assert any("'none'" in n for n in notes_of(engine))


@pytest.mark.parametrize("extra, words", [
    (("CEILOMETER_BACKENDS=sg-core",), "sg-core"),
    (("CEILOMETER_BACKEND=mongodb",), "knows gnocchi, sg-core and none"),
    (("CEILOMETER_BACKENDS=gnocchi,none",), "'none' cannot go with another"),
    (("CEILOMETER_PIPELINE_INTERVAL=soon",), "whole number"),
])
def test_bad_settings_are_refused_when_the_configuration_is_read(tmp_path, extra, words):
    root = tmp_path / "stack"
    root.mkdir()
    with pytest.raises(ConfigError, match=words):
        engine_for(write_localrc(root, *extra))
    assert not (root / "dest").exists()


def test_the_ipmi_agent_is_refused_before_anything_with_what_to_do(tmp_path):
    root = tmp_path / "stack"
    root.mkdir()
    engine = engine_for(write_localrc(root, "enable_service ceilometer-aipmi"))
    with pytest.raises(ConfigError, match="disable_service ceilometer-aipmi"):
        engine.plan()
    assert any(n.startswith("ceilometer:") and "ceilometer-aipmi" in n for n in notes_of(engine))
    assert not (root / "dest").exists()


def test_the_compute_agent_runs_only_beside_n_cpu_on_libvirt(tmp_path):
    """Its real run needs libvirtd and guests (not run here): what it would start is checked."""
    from stackmagic.catalog.ceilometer import Ceilometer
    from stackmagic.context import Context
    from stackmagic.python import Venv

    def agents(*extra: str) -> dict:
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        config = load_config(write_localrc(root, *extra))
        ctx = Context(config, state=None, tmux=None, venv=Venv(root / "venv"))  # type: ignore[arg-type]
        return {p.service: p for p in Ceilometer().processes(ctx)}

    assert "ceilometer-acompute" not in agents()                            # no n-cpu
    assert "ceilometer-acompute" not in agents("enable_service n-cpu", "VIRT_DRIVER=fake")
    running = agents("enable_service n-cpu", "VIRT_DRIVER=libvirt")
    compute = running["ceilometer-acompute"]
    assert compute.argv[1:4] == ["--polling-namespaces", "compute", "--config-file"]
    assert compute.after == ("libvirtd",)                    # libvirtd answers before it starts
    assert compute.health.argv[-1].endswith("ceilometer-compute.socket")
    assert running["ceilometer-acentral"].argv[1:3] == ["--polling-namespaces", "central"]


def test_gnocchi_refuses_sqlite_and_says_what_to_set(tmp_path):
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([*sandbox(tmp_path, "ceilometer"), "disable_all_services",
                                  "enable_service key rabbit g-api", PLUGIN_LINE]) + "\n")
    with pytest.raises(ConfigError, match="DATABASE_TYPE=sqlite.*CEILOMETER_BACKENDS=none"):
        engine_for(localrc).plan()


def fake_source(root: Path) -> Path:
    """The files configure copies from Ceilometer's tree, as 27.0.0 ships them."""
    src = root / "dest" / "ceilometer"
    (src / "etc" / "ceilometer").mkdir(parents=True)
    (src / "ceilometer" / "pipeline" / "data").mkdir(parents=True)
    (src / "etc" / "ceilometer" / "polling_all.yaml").write_text(
        "---\nsources:\n    - name: all_pollsters\n      interval: 300\n      meters:\n        - \"*\"\n")
    data = src / "ceilometer" / "pipeline" / "data"
    (data / "pipeline.yaml").write_text(
        "---\nsources:\n    - name: meter_source\n      meters:\n          - \"*\"\n      sinks:\n"
        "          - meter_sink\nsinks:\n    - name: meter_sink\n      publishers:\n          - gnocchi://\n")
    (data / "event_pipeline.yaml").write_text(
        "---\nsources:\n    - name: event_source\n      events:\n          - \"*\"\n      sinks:\n"
        "          - event_sink\nsinks:\n    - name: event_sink\n      publishers:\n          - notifier://\n")
    (data / "event_definitions.yaml").write_text("---\n- event_type: '*'\n")
    return src


def test_polling_and_pipelines_are_the_plugins(tmp_path):
    import yaml

    from stackmagic.catalog.ceilometer import Ceilometer

    fake_source(tmp_path)
    localrc = write_localrc(tmp_path, "CEILOMETER_EVENT_ALARM=True", "GNOCCHI_ARCHIVE_POLICY=high")
    Ceilometer()._definitions(context(localrc), tmp_path / "etc", ["gnocchi"])
    etc = tmp_path / "etc"
    polling = yaml.safe_load((etc / "polling.yaml").read_text())
    assert polling["sources"][0]["interval"] == 10
    meters = yaml.safe_load((etc / "pipeline.yaml").read_text())
    assert meters["sinks"][0]["publishers"] == ["gnocchi://?archive_policy=high&filter_project=service"]
    events = yaml.safe_load((etc / "event_pipeline.yaml").read_text())
    assert events["sinks"][0]["publishers"] == ["notifier://?topic=alarm.all",
                                                "gnocchi://?archive_policy=high&filter_project=service"]
    assert (etc / "event_definitions.yaml").is_file()


def test_emitting_projects_send_notifications_only_with_ceilometer(tmp_path):
    from stackmagic.catalog.ceilometer import emit_notifications

    conf = tmp_path / "glance-api.conf"
    ctx = context(write_localrc(tmp_path))
    emit_notifications(ctx, conf)
    assert ini.iniget(conf, "oslo_messaging_notifications", "driver") == "messagingv2"
    url = ini.iniget(conf, "oslo_messaging_notifications", "transport_url") or ""
    assert url.startswith("rabbit://") and f":{ctx.settings.get('RABBIT_PORT')}/" in url
    other = tmp_path / "other"
    other.mkdir()
    without = context(write_localrc(other, line="enable_service placement-api"))
    emit_notifications(without, conf)          # Ceilometer gone: nothing is sent any more
    assert ini.iniget(conf, "oslo_messaging_notifications", "driver") is None
    assert ini.iniget(conf, "oslo_messaging_notifications", "transport_url") is None


def test_the_projects_that_emit_use_the_one_helper():
    """devstack's lib/glance, lib/cinder, lib/neutron set messagingv2 for Ceilometer: each of
    their modules calls the shared helper in its configure, none writes the driver itself."""
    import inspect

    from stackmagic.catalog import cinder, glance, neutron

    for module in (glance, cinder, neutron):
        text = inspect.getsource(module)
        assert "emit_notifications(ctx, conf)" in text, module.__name__
        assert '"messagingv2"' not in text, module.__name__


# -- a real stack ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud as test_everything left it: the seed post's everything localrc, whose
    ``enable_service ceilometer ...`` runs the agents (the compute agent beside n-cpu on
    libvirt) and Gnocchi, polling every CEILOMETER_PIPELINE_INTERVAL seconds."""
    return on_stage(default_cloud, "ceilometer-acentral", "gnocchi-api")


@pytest.fixture(scope="module")
def admin(stack):
    with sdk_connection(stack["root"], "devstack-admin") as conn:
        yield conn


def metric_url(admin) -> str:
    return admin.session.get_endpoint(service_type="metric", interface="public")


def measures(admin, resource: str, metric: str) -> list:
    """The measures of ``metric`` on Gnocchi's image ``resource`` (metricd made to process what
    waits: ``refresh=true``); [] while there is none."""
    url = f"{metric_url(admin)}/v1/resource/image/{resource}/metric/{metric}/measures?refresh=true"
    got = admin.session.get(url, raise_exc=False)
    return got.json() if got.status_code == 200 else []


@pytest.mark.slow
def test_every_service_is_healthy_by_its_own_probe(stack):
    services = {s.service: s for s in stack["summary"].services}
    assert SERVICES <= set(services), set(services)
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    assert "heartbeat answers" in services["ceilometer-acentral"].detail
    assert "notifications.info" in services["ceilometer-anotification"].detail
    assert "live members of gnocchi-processing" in services["gnocchi-metricd"].detail
    assert "ceilometer-acompute" in services             # beside n-cpu on libvirt


@pytest.mark.slow
def test_gnocchi_answers_a_keystone_token_and_refuses_without(stack, admin):
    import requests

    url = metric_url(admin)
    assert int(url.rsplit(":", 1)[1]) == int(stack["engine"].ctx.settings.get("GNOCCHI_SERVICE_PORT"))
    assert requests.get(f"{url}/v1/resource/generic", timeout=30).status_code == 401
    got = admin.session.get(f"{url}/v1/resource_type")
    names = {t["name"] for t in got.json()}
    assert {"image", "instance", "volume"} <= names          # ceilometer-upgrade made them
    policies = {p["name"] for p in admin.session.get(f"{url}/v1/archive_policy").json()}
    assert "ceilometer-low" in policies


@pytest.mark.slow
def test_the_central_agent_records_the_images_size(stack, admin):
    image = next(iter(admin.image.images()))
    assert wait_until(lambda: measures(admin, image.id, "image.size"), 90), \
        (stack["data"].parent / "logs" / "ceilometer-acentral.log").read_text()[-3000:]
    assert measures(admin, image.id, "image.size")[-1][2] == image.size


@pytest.mark.slow
def test_glances_notification_of_a_download_reaches_gnocchi(stack, admin):
    conf = stack["data"] / "etc" / "glance" / "glance-api.conf"
    assert ini.iniget(conf, "oslo_messaging_notifications", "driver") == "messagingv2"
    image = next(iter(admin.image.images()))
    admin.image.download_image(image)
    assert wait_until(lambda: measures(admin, image.id, "image.download"), 90), \
        (stack["data"].parent / "logs" / "ceilometer-anotification.log").read_text()[-3000:]


@pytest.mark.slow
def test_no_password_reaches_the_services_logs(stack):
    """Gnocchi logs its parsed configuration at INFO and DEBUG: its log stays at WARNING."""
    secrets = [line.split("=", 1)[1] for line in
               (stack["data"] / "stackmagic" / "passwords").read_text().splitlines()
               if "=" in line and len(line.split("=", 1)[1]) >= 8]
    assert secrets
    for service in ("gnocchi-api", "gnocchi-metricd", "ceilometer-acentral", "ceilometer-anotification"):
        text = (stack["root"] / "logs" / f"{service}.log").read_text(errors="replace")
        assert text and not [s for s in secrets if s in text], service
