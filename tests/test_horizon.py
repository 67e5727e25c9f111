"""Horizon for real (catalog/horizon.py), on the session's shared cloud at its heat stage
(tests/default_cloud.py: the default set runs the dashboard, memcached holds its sessions;
sources mirrored from PyPI sdists).

The dashboard answers at the URL its status shows, with every static file its login page
names; demo logs in through Debian's Chromium and admin over plain HTTP, and each sees the pages
Keystone allows them (the compute panels among them); a user Keystone does not know stays on
the login page. test_compute's Chromium test sees a guest and its volume there; its unstack
that no gunicorn is left, and its clean that what configure made is removed. Without memcached
the settings send sessions to files (a plan-level check: the shared cloud runs memcached).
Passwords come from the stack's store and are never printed.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from stackmagic.catalog.horizon import Horizon, config_set
from stackmagic.samples import sandbox
from tests.default_cloud import on_stage

#: the slow tests check the shared cloud at the stage the Cinder, Swift and Heat modules use
pytestmark = pytest.mark.cloud_stage("heat")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
STATIC = re.compile(r'(?:href|src)="(/dashboard/static/[^"]+)"')


# -- devstack's _horizon_config_set, on text ------------------------------------------------
EXAMPLE = "import os\nWEBROOT = '/'\nWEBROOT_EXTRA = 1\nOPENSTACK_HOST = '127.0.0.1'\n"


def test_config_set_replaces_a_setting_at_the_end_as_devstack_does():
    text = config_set(EXAMPLE, "", "WEBROOT", "'/dashboard/'")
    assert text.splitlines() == ["import os", "WEBROOT_EXTRA = 1", "OPENSTACK_HOST = '127.0.0.1'",
                                 "WEBROOT = '/dashboard/'"]


def test_config_set_writes_a_key_into_a_dict_and_makes_the_dict_when_missing():
    text = config_set(EXAMPLE, "OPENSTACK_CINDER_FEATURES", "enable_backup", "True")
    assert text.endswith("\n\nOPENSTACK_CINDER_FEATURES = {\n    'enable_backup': True,\n}\n")
    again = config_set(text, "OPENSTACK_CINDER_FEATURES", "enable_backup", "False")
    assert again.count("'enable_backup'") == 1 and "'enable_backup': False," in again
    other = config_set(again, "OPENSTACK_CINDER_FEATURES", "other", "1")
    assert "OPENSTACK_CINDER_FEATURES = {\n    'other': 1,\n    'enable_backup': False,\n}" in other
    exec(compile(other, "local_settings.py", "exec"), {})     # still Python


def test_without_memcached_the_sessions_go_to_files(tmp_path):
    from stackmagic.config import load_config
    from stackmagic.context import Context

    def settings(*extra: str) -> dict[str, str]:
        localrc = tmp_path / "localrc"
        localrc.write_text("\n".join([*sandbox(tmp_path, "horizon"), "disable_all_services",
                                      "enable_service key horizon", *extra]) + "\n")
        ctx = Context(load_config(localrc), state=None, tmux=None, venv=None)  # type: ignore[arg-type]
        return {name: value for section, name, value in Horizon().dashboard_settings(ctx) if not section}

    files = settings("MEMCACHED_ENABLED=False")
    assert files["SESSION_ENGINE"] == repr("django.contrib.sessions.backends.file")
    assert files["SESSION_FILE_PATH"] == repr(str(tmp_path / "data" / "horizon" / "sessions"))
    assert "LocMemCache" in files["CACHES"]
    cached = settings()
    assert "SESSION_ENGINE" not in cached and "PyMemcacheCache" in cached["CACHES"]
    assert "'LOCATION': '127.0.0.1:" in cached["CACHES"]           # the stack's memcached


def test_a_screenshot_says_what_to_do_when_it_cannot_be_taken(tmp_path):
    """Horizon not enabled, not running, a user devstack does not make, a page that is not the
    dashboard's, the logged-in tab asked for inside an asyncio loop: each a clear error that says
    what to change (the CLI: its exit code)."""
    import asyncio
    import subprocess
    import sys

    from stackmagic import dashboard
    from stackmagic.errors import ConfigError, StackError
    from tests.conftest import engine_for

    def localrc(*services: str) -> Path:
        path = tmp_path / "localrc"
        path.write_text("\n".join([*sandbox(tmp_path, "horizon"), "disable_all_services",
                                    f"enable_service {' '.join(services)}"]) + "\n")
        return path

    with pytest.raises(ConfigError, match="enable_service horizon"):
        dashboard.screenshot(engine_for(localrc("key")))
    engine = engine_for(localrc("key", "horizon"))
    with pytest.raises(StackError, match="run stack first"):
        dashboard.screenshot(engine)
    assert dashboard.url(engine).endswith("/dashboard/")

    async def in_a_loop():          # a Jupyter kernel's: the tab cannot be driven from there
        with dashboard.logged_in(engine):
            pass
    with pytest.raises(StackError, match="from a thread of its own"):
        asyncio.run(in_a_loop())
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "dashboard", "-o", str(tmp_path / "x.png"),
                           "-c", str(localrc("key"))], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "enable_service horizon" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.png").exists()


# -- the shared cloud -----------------------------------------------------------------------
class Stack:
    def __init__(self, localrc: Path):
        self.localrc = localrc

    def engine(self):
        from stackmagic.config import load_config
        from stackmagic.engine import Engine

        return Engine(load_config(self.localrc))

    @property
    def settings(self):
        """The stack's settings, its passwords read from its store."""
        return self.engine().ctx.settings

    @property
    def url(self) -> str:
        from stackmagic import dashboard

        return dashboard.url(self.engine())


@pytest.fixture(scope="module")
def stack(default_cloud):
    """The shared cloud at its heat stage."""
    return Stack(on_stage(default_cloud, "horizon")["localrc"])


def login(url: str, user: str, password: str):
    """A requests session logged in to the dashboard at ``url`` as ``user`` (the login form's
    own fields, its CSRF token included), and the response that ended the login."""
    import requests

    session = requests.Session()
    form = session.get(urljoin(url, "auth/login/"), timeout=60)
    assert form.status_code == 200
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.text))
    done = session.post(urljoin(url, "auth/login/"), timeout=60,
                        data={**fields, "username": user, "password": password})
    return session, done


def rows(session, url: str, page: str) -> set[str]:
    """The names of the rows of the table on ``page`` (Horizon's ``data-display``)."""
    answer = session.get(urljoin(url, page), timeout=60)
    assert answer.status_code == 200, (page, answer.status_code)
    return set(re.findall(r'<tr[^>]*\sdata-display="([^"]*)"', answer.text))


@pytest.mark.slow
def test_the_summary_shows_the_dashboard_and_its_login_page_answers(stack):
    import requests

    from stackmagic import api
    from tests.test_rabbit import listening_sockets

    service = {s.service: s for s in stack.engine().status()}["horizon"]
    assert service.healthy and service.endpoint == stack.url
    notes = api.plan_report(stack.localrc)["notes"]
    assert any(stack.url in note and "memcached" in note for note in notes), notes
    page = requests.get(service.endpoint, timeout=60)      # WEBROOT sends to the login page
    assert page.status_code == 200 and urlsplit(page.url).path == "/dashboard/auth/login/"
    assert 'id="id_username"' in page.text and 'id="id_password"' in page.text
    assert "csrfmiddlewaretoken" in page.text
    root = requests.get(stack.url.replace("/dashboard/", "/"), allow_redirects=False, timeout=60)
    assert root.status_code == 302 and root.headers["Location"] == "/dashboard/"
    # gunicorn's processes listen on the loopback address and the port of the settings only
    from stackmagic.process_info import tree

    sockets = listening_sockets(set(tree(service.pid)))
    assert sockets == [("127.0.0.1", stack.settings.int("HORIZON_PORT"))] * len(sockets) and sockets


@pytest.mark.slow
def test_the_static_files_the_login_page_names_answer_from_the_collected_tree(stack):
    import requests

    page = requests.get(urljoin(stack.url, "auth/login/"), timeout=60).text
    paths = sorted(set(STATIC.findall(page)))
    compressed = [p for p in paths if "/dashboard/static/dashboard/" in p and "/output." in p]
    assert {p.rsplit(".", 1)[1] for p in compressed} == {"css", "js"}, paths
    collected = stack.settings.data_dir / "horizon" / "static"
    for path in paths:
        answer = requests.get(urljoin(stack.url, path), timeout=60)
        assert answer.status_code == 200, path
        assert answer.content == (collected / path.removeprefix("/dashboard/static/")).read_bytes()
    missing = requests.get(urljoin(stack.url, "static/dashboard/css/not-collected.css"), timeout=60)
    assert missing.status_code == 404


@pytest.mark.slow
def test_demo_logs_in_with_chromium_and_sees_its_projects(stack):
    """demo, logged in by the dashboard module (Debian's Chromium), sees its home and its
    projects, and no request of the pages fails."""
    from stackmagic import dashboard

    ARTIFACTS.mkdir(exist_ok=True)
    failed: list[tuple[int, str]] = []
    with dashboard.logged_in(stack.engine(), user="demo") as page:
        page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
        page.goto(stack.url)
        page.wait_for_load_state("networkidle")
        # Horizon's home for demo is the project overview: the user menu, the project
        # picker, and the panels of the services in the catalog
        assert urlsplit(page.url).path == "/dashboard/project/"
        assert page.locator(".navbar .dropdown-toggle", has_text="demo").count() >= 1
        nav = page.locator("#sidebar-accordion").text_content()       # the folded groups too
        # (Heat's panels are heat-dashboard's, a plugin of its own that is not enabled here)
        # (no Backups: c-bak runs at the default stage only)
        assert all(panel in nav for panel in ("Identity", "API Access", "Instances", "Volumes",
                                              "Networks", "Object Store")), nav
        assert "Backups" not in nav
        # the compressed CSS and JavaScript arrived and run
        assert page.evaluate("() => document.styleSheets.length") >= 3
        assert page.evaluate("() => typeof window.angular") == "object"
        page.screenshot(path=str(ARTIFACTS / "horizon-demo-overview.png"))
        page.goto(urljoin(stack.url, "identity/"))
        page.wait_for_load_state("networkidle")
        table = page.locator("table#tenants").inner_text()
        assert "demo" in table and "invisible_to_admin" in table and "alt_demo" not in table
        page.screenshot(path=str(ARTIFACTS / "horizon-demo-projects.png"))
    assert not failed, failed


@pytest.mark.slow
def test_admin_logs_in_and_the_identity_pages_list_what_keystone_holds(stack):
    session, done = login(stack.url, "admin", stack.settings.admin_password)
    assert urlsplit(done.url).path == "/dashboard/project/"      # home, as for demo
    assert {"admin", "demo", "alt_demo", "service", "invisible_to_admin"} <= rows(session, stack.url,
                                                                                  "identity/")
    assert {"admin", "demo", "alt_demo", "system_reader"} <= rows(session, stack.url, "identity/users/")
    # the service catalog Keystone hands out, one row per service: its name and URL
    api_access = session.get(urljoin(stack.url, "project/api_access/"), timeout=60)
    assert api_access.status_code == 200
    body = api_access.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    cells = [cell.strip() for cell in re.findall(r"<td[^>]*>([^<]*)</td>", body)]
    catalog = dict(zip(cells[::2], cells[1::2]))
    assert catalog["Identity"] == f"http://127.0.0.1:{stack.settings.int('KEYSTONE_SERVICE_PORT')}"
    assert {"Compute", "Image", "Network", "Placement", "Object Store", "Orchestration"} <= set(catalog), catalog
    # a user Keystone does not know stays on the login page
    _, refused = login(stack.url, "nobody-here", "not-a-password")
    assert urlsplit(refused.url).path == "/dashboard/auth/login/"
    assert "Invalid credentials" in refused.text


@pytest.mark.slow
def test_the_dashboard_command_and_magic_show_a_page_as_demo_sees_it(stack, tmp_path):
    """``stackmagic dashboard -o`` writes a screenshot of the page demo sees (Debian's headless
    Chromium, logged in with the stack's password, which it never prints); ``%horizon`` shows it
    inline, also from inside an asyncio loop, as a Jupyter kernel runs it; a user devstack does
    not make, or a page outside the dashboard, is refused."""
    import asyncio
    import subprocess
    import sys

    from IPython.core.interactiveshell import InteractiveShell

    from stackmagic import dashboard
    from stackmagic.errors import ConfigError
    from stackmagic.magics import StackMagics
    from tests.conftest import engine_for

    shot = tmp_path / "volumes.png"
    proc = subprocess.run([sys.executable, "-m", "stackmagic", "dashboard", "project/volumes/",
                           "-o", str(shot), "-c", str(stack.localrc)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000
    assert f"{stack.url}project/volumes/" in proc.stdout and "as demo" in proc.stdout
    password = stack.settings.admin_password
    assert password not in proc.stdout + proc.stderr

    engine = engine_for(stack.localrc)
    for page, user in (("project/instances/", "nobody"), ("http://127.0.0.2/", "demo")):
        with pytest.raises(ConfigError):
            dashboard.screenshot(engine, page, user=user)
    from stackmagic.errors import StackError

    with pytest.raises(StackError, match="not a member of a project 'alt_demo'"):
        dashboard.screenshot(engine, "identity/", project="alt_demo")

    sh = InteractiveShell.instance()
    sh.register_magics(StackMagics(sh))

    async def in_a_kernel():        # a Jupyter kernel runs the magic inside its asyncio loop
        return sh.run_line_magic("horizon", f"identity/ -c {stack.localrc}")

    taken = asyncio.run(in_a_kernel())
    assert isinstance(taken, dashboard.Screenshot) and taken.user == "demo"
    assert urlsplit(taken.url).path == "/dashboard/identity/" and "Projects" in taken.title
    assert "demo" in taken.text and "invisible_to_admin" in taken.text     # the table's rows
    assert taken._repr_png_().startswith(b"\x89PNG") and password not in repr(taken)
