"""Zaqar for real (catalog/zaqar.py, catalog/redis.py), on the session's shared cloud in its
"everything" stage (tests/test_everything.py: the seed post's localrc, whose ``zaqar-server``
runs the recipe beside the whole default set, MariaDB and Tempest; sources mirrored from PyPI
sdists): every service is healthy, Redis listens on loopback only, zaqar.conf is the plugin's with the Redis store, the demo user's queue takes a
message through the v2 REST API with a Keystone token and gives the same body back on a claim
(and Redis holds it meanwhile), the websocket server authenticates a token and lists queues,
the zaqar-tempest-plugin installed into Tempest's venv passes. test_everything checks that a
second ``stack`` restarts nothing, and test_compute's unstack that nothing is left.

Plans alone (no services) show what the seed post's ``enable_service zaqar-server`` is told, what
the ``enable_plugin`` line enables, and which message store is used and why.

Slow (on the shared cloud), root only, run by CI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import subprocess
import uuid
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

PLUGIN_LINE = "enable_plugin zaqar https://opendev.org/openstack/zaqar"
SERVICES = {"key", "mysql", "rabbit", "memcached", "redis", "zaqar-wsgi", "zaqar-websocket"}


def write_localrc(root: Path, *extra: str) -> Path:
    localrc = root / "localrc"
    localrc.write_text("\n".join([
        *sandbox(root, "zaqar"), "DATABASE_TYPE=mysql", "MIRROR_FROM_PYPI=True",
        "disable_all_services", "enable_service key mysql rabbit tempest", PLUGIN_LINE, *extra]) + "\n")
    return localrc


# -- plans alone ----------------------------------------------------------------------------------
def test_the_posts_zaqar_server_is_told_the_two_services_and_the_plugin_line(tmp_path):
    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([*sandbox(tmp_path, "zaqar-plan"), "disable_all_services",
                                  "enable_service key zaqar-server", ""]))
    cfg = load_config(localrc)
    (said,) = [w for w in cfg.warnings if "zaqar-server" in w]
    assert "zaqar-wsgi" in said and "zaqar-websocket" in said and PLUGIN_LINE in said
    assert "Redis" in said                            # what stands in for its MongoDB
    # it runs as the two servers, as devstack's neutron-* names run as q- names
    assert cfg.is_service_enabled("zaqar-wsgi", "zaqar-websocket") and "zaqar-server" not in cfg.enabled
    assert cfg.renamed["zaqar-server"] == ("zaqar-wsgi", "zaqar-websocket")


def test_enable_plugin_enables_the_plugins_services_from_the_recipe(tmp_path):
    cfg = load_config(write_localrc(tmp_path))
    assert {"zaqar-wsgi", "zaqar-websocket"} <= set(cfg.enabled)
    assert cfg.is_service_enabled("zaqar")            # the plugin's is_zaqar_enabled
    assert cfg.settings.repo("zaqar") == "https://opendev.org/openstack/zaqar"
    engine = engine_for(write_localrc(tmp_path))
    projects, unsupported = engine.projects()
    names = [p.name for p in projects]
    assert not unsupported and {"zaqar", "redis", "keystone", "database"} <= set(names)
    assert names.index("redis") < names.index("zaqar")        # Redis serves before Zaqar starts
    steps = [s.id for s in engine.plan().steps]
    assert steps.index("start redis") < steps.index("start zaqar-wsgi")
    assert {"init zaqar", "start zaqar-websocket", "accounts zaqar"} <= set(steps)


def test_plan_says_the_message_store_and_why(tmp_path):
    engine = engine_for(write_localrc(tmp_path))
    from stackmagic.plan import notes

    said = notes(engine.ctx, engine.projects()[0])
    (store,) = [n for n in said if n.startswith("zaqar:")]
    assert "Redis" in store and "MongoDB" in store and "Debian 12" in store and "mysql" in store
    assert any(n.startswith("plugin zaqar:") and "zaqar.py" in n for n in said)


@pytest.mark.parametrize("backend, why", [("mongodb", "Debian 12 packages no MongoDB"),
                                          ("swift", "not yet")])
def test_a_store_that_cannot_run_here_is_refused_before_anything(tmp_path, backend, why):
    root = tmp_path / "stack"
    root.mkdir()
    with pytest.raises(ConfigError, match=why):
        engine_for(write_localrc(root, f"ZAQAR_BACKEND={backend}"))
    assert not (root / "dest").exists()


def test_tempest_hears_zaqar_is_there(tmp_path):
    from stackmagic.catalog.zaqar import Zaqar
    from stackmagic.context import Context

    ctx = Context(load_config(write_localrc(tmp_path)), state=None, tmux=None, venv=None)  # type: ignore[arg-type]
    assert ("service_available", "zaqar", "true") in Zaqar().tempest_options(ctx)


# -- a real stack ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud as test_everything left it: the seed post's everything localrc, whose
    ``zaqar-server`` runs Zaqar (on MariaDB, beside the whole default set and Tempest)."""
    return on_stage(default_cloud, *(SERVICES - {"redis"}))


@pytest.fixture(scope="module")
def demo(stack):
    """openstacksdk as the stack's demo user (clouds.yaml's devstack)."""
    with sdk_connection(stack["root"], "devstack") as conn:
        yield conn


@pytest.mark.slow
def test_every_service_is_healthy(stack):
    services = {s.service: s for s in stack["summary"].services}
    assert SERVICES <= set(services), set(services)
    sick = {n: s.detail for n, s in services.items() if not s.healthy}
    assert not sick, sick
    assert services["redis"].detail == "PONG"


@pytest.mark.slow
def test_redis_listens_on_loopback_only(stack):
    from stackmagic.catalog import redis

    port = redis.port(stack["engine"].ctx)
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                listening.append(address)
    assert listening == ["0100007F"], listening      # 127.0.0.1, nothing on :: or 0.0.0.0


@pytest.mark.slow
def test_zaqar_conf_is_the_plugins_with_the_redis_store(stack):
    from stackmagic import ini
    from stackmagic.catalog import redis

    ctx = stack["engine"].ctx
    conf = stack["data"] / "etc" / "zaqar" / "zaqar.conf"
    get = lambda section, key: ini.iniget(conf, section, key)  # noqa: E731
    assert get("DEFAULT", "auth_strategy") == "keystone" and get("DEFAULT", "pooling") == "false"
    assert get("DEFAULT", "unreliable") == "true" and get("DEFAULT", "admin_mode") == "true"
    assert get("drivers", "message_store") == "redis"
    assert get("drivers:message_store:redis", "uri") == redis.url(ctx)
    assert get("drivers", "management_store") == "sqlalchemy"
    assert get("drivers:management_store:sqlalchemy", "uri").startswith("mysql+pymysql://")
    assert get("drivers", "transport") == "websocket"
    assert get("drivers:transport:websocket", "port") == ctx.settings.get("ZAQAR_WEBSOCKET_PORT")
    assert get("keystone_authtoken", "username") == "zaqar" and get("trustee", "username") == "zaqar"
    # generated, not the plugin's fixed string, and kept with the passwords (survives `clean`)
    kept = dict(line.split("=", 1) for line in (stack["data"] / "stackmagic" / "passwords").read_text().split())
    assert get("signed_url", "secret_key") == kept["ZAQAR_SIGNED_URL_SECRET_KEY"]
    assert len(kept["ZAQAR_SIGNED_URL_SECRET_KEY"]) == 24
    assert (conf.stat().st_mode & 0o777) == 0o600


@pytest.mark.slow
def test_the_catalog_has_messaging_and_its_websocket(demo, stack):
    s = stack["engine"].ctx.settings
    rest = demo.session.get_endpoint(service_type="messaging", interface="public")
    ws = demo.session.get_endpoint(service_type="messaging-websocket", interface="public")
    assert urlsplit(rest).port == int(s.get("ZAQAR_SERVICE_PORT"))
    assert urlsplit(ws).port == int(s.get("ZAQAR_WEBSOCKET_PORT"))


@pytest.mark.slow
def test_a_message_goes_through_a_queue_as_demo(demo, stack):
    import requests

    from stackmagic.catalog import redis

    url = demo.session.get_endpoint(service_type="messaging", interface="public") + "/v2"
    headers = {"X-Auth-Token": demo.session.get_token(), "Client-ID": str(uuid.uuid4())}
    queue = f"{url}/queues/test-queue"
    assert requests.put(queue, headers=headers, json={}, timeout=30).status_code == 201
    body = {"event": "backup.end", "size": 3, "tags": ["a", "ü"]}
    posted = requests.post(f"{queue}/messages", headers=headers, timeout=30,
                           json={"messages": [{"ttl": 300, "body": body}]})
    assert posted.status_code == 201, posted.text
    message_id = posted.json()["resources"][0].rsplit("/", 1)[1]
    names = requests.get(f"{url}/queues", headers=headers, timeout=30).json()["queues"]
    assert "test-queue" in [q["name"] for q in names]

    # Redis holds it (the message store is really Redis)
    cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port(stack["engine"].ctx)), "--scan"]
    keys = subprocess.run(cli, capture_output=True, text=True, timeout=30).stdout.split()
    assert any(message_id in k for k in keys), keys

    claimed = requests.post(f"{queue}/claims", headers=headers, json={"ttl": 60, "grace": 60}, timeout=30)
    assert claimed.status_code == 201, claimed.text
    (message,) = claimed.json()["messages"]
    assert message["id"] == message_id and message["body"] == body
    claim_id = message["href"].split("claim_id=")[1]
    got = requests.get(f"{queue}/messages/{message_id}", headers=headers, timeout=30).json()
    assert got["body"] == body

    gone = requests.delete(f"{queue}/messages/{message_id}?claim_id={claim_id}", headers=headers, timeout=30)
    assert gone.status_code == 204
    assert requests.get(f"{queue}/messages/{message_id}", headers=headers, timeout=30).status_code == 404
    assert requests.delete(queue, headers=headers, timeout=30).status_code == 204
    names = requests.get(f"{url}/queues", headers=headers, timeout=30).json().get("queues", [])
    assert "test-queue" not in [q["name"] for q in names]


# a websocket client in a few lines (RFC 6455: a client masks its frames), to talk to zaqar-server
def _ws_connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += _recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the websocket closed")
        data += chunk
    return data


def _ws_call(sock: socket.socket, request: dict) -> dict:
    data, mask = json.dumps(request).encode(), os.urandom(4)
    size = len(data)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    sock.sendall(b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    size = _recv(sock, 2)[1] & 0x7F
    if size == 126:
        size = struct.unpack("!H", _recv(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _recv(sock, 8))[0]
    return json.loads(_recv(sock, size))


@pytest.mark.slow
def test_the_websocket_takes_a_token_and_lists_queues(demo):
    url = demo.session.get_endpoint(service_type="messaging-websocket", interface="public")
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": demo.session.get_project_id()}
    with _ws_connect(url) as sock:
        denied = _ws_call(sock, {"action": "queue_list", "headers": headers, "body": {}})
        assert denied["headers"]["status"] == 403, denied          # no token yet
        auth = _ws_call(sock, {"action": "authenticate", "body": {},
                               "headers": {**headers, "X-Auth-Token": demo.session.get_token()}})
        assert auth["headers"]["status"] == 200, auth
        listed = _ws_call(sock, {"action": "queue_list", "headers": headers, "body": {}})
        assert listed["headers"]["status"] == 200 and "queues" in listed["body"], listed


@pytest.mark.slow
def test_zaqars_tempest_plugin_passes(stack):
    """zaqar-tempest-plugin in Tempest's venv (install_zaqartempest), told Zaqar is there: its
    tests pass, but test_dead_letter_queue, which waits 140 s for a message to expire (it passed
    too when this was written)."""
    from stackmagic import ini

    data = stack["data"]
    assert ini.iniget(data / "etc" / "tempest" / "tempest.conf", "service_available", "zaqar") == "true"
    out = subprocess.run([str(data / "venv-tempest" / "bin" / "tempest"), "run", "--regex",
                          r"^zaqar_tempest_plugin\.tests", "--exclude-regex", "test_dead_letter_queue",
                          "--concurrency", "2"], cwd=data / "tempest", capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    passed = re.search(r"- Passed: (\d+)", out.stdout)
    assert passed and int(passed[1]) >= 100 and "- Failed: 0" in out.stdout, out.stdout[-2000:]
    print(f"\nzaqar-tempest-plugin: {passed[1]} passed")
