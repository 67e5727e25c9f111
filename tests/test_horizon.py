"""Horizon for real (catalog/horizon.py): one sandbox stack of Keystone and the dashboard
(memcached comes with Keystone), sources mirrored from the PyPI sdists, SQLite.

The dashboard answers at the URL the summary shows, with every static file its login page
names; demo logs in through Debian's Chromium and admin over plain HTTP, and each sees the
identity pages Keystone allows them (no Nova here: Horizon's landing page, the project overview,
answers "not authorized" without a compute service, and says so); without memcached, sessions
go to files; unstack leaves nothing running and clean removes what configure made.
Passwords come from the stack's store and are never printed.

Slow (the module: 2-4 min here, most of it the cold stack), run by CI.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from stackmagic.catalog.horizon import config_set
from tests.conftest import wait_until

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


# -- one real stack -------------------------------------------------------------------------
class Stack:
    def __init__(self, localrc: Path):
        self.localrc = localrc

    def engine(self):
        from stackmagic.config import load_config
        from stackmagic.engine import Engine

        return Engine(load_config(self.localrc))

    @property
    def settings(self):
        from stackmagic.config import load_config
        from stackmagic.passwords import with_passwords

        config = load_config(self.localrc)
        return with_passwords(config, config.settings.data_dir / "stackmagic", create=False).settings

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.int('HORIZON_PORT')}/dashboard/"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from stackmagic.samples import sandbox

    root = tmp_path_factory.mktemp("horizon")
    lines = sandbox(root, "horizon")
    socket_name = next(line.split("=", 1)[1] for line in lines if line.startswith("TMUX_SOCKET="))
    localrc = root / "localrc"
    localrc.write_text("\n".join([*lines, "MIRROR_FROM_PYPI=True", "DATABASE_TYPE=sqlite",
                                  "disable_all_services", "enable_service key horizon"]) + "\n")
    stack = Stack(localrc)
    try:
        stack.summary = stack.engine().stack()
        yield stack
    finally:
        try:
            stack.engine().clean()
        finally:
            subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
            Path(f"/tmp/tmux-{os.getuid()}/{socket_name}").unlink(missing_ok=True)


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

    service = {s.service: s for s in stack.summary.services}["horizon"]
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
    from playwright.sync_api import sync_playwright

    from tests.browser.page import CHROMIUM, FLAGS

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    failed: list[tuple[int, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 800})
            page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
            page.goto(stack.url)
            page.fill("#id_username", "demo")
            page.fill("#id_password", stack.settings.admin_password)
            with page.expect_navigation():
                page.click("#loginBtn")
            page.wait_for_load_state("networkidle")
            # Horizon's home for demo is the project overview; without a compute service in
            # the catalog Horizon refuses that panel (403, "not authorized") but demo is in:
            # the user menu, the project picker and the dashboards Keystone alone serves
            assert urlsplit(page.url).path == "/dashboard/project/"
            assert page.locator(".navbar .dropdown-toggle", has_text="demo").count() >= 1
            nav = page.locator("#sidebar-accordion").inner_text()
            assert "Identity" in nav and "API Access" in nav and "Instances" not in nav
            # the compressed CSS and JavaScript arrived and run
            assert page.evaluate("() => document.styleSheets.length") >= 3
            assert page.evaluate("() => typeof window.angular") == "object"
            page.screenshot(path=str(ARTIFACTS / "horizon-demo-overview.png"))
            page.goto(urljoin(stack.url, "identity/"))
            page.wait_for_load_state("networkidle")
            table = page.locator("table#tenants").inner_text()
            assert "demo" in table and "invisible_to_admin" in table and "alt_demo" not in table
            page.screenshot(path=str(ARTIFACTS / "horizon-demo-projects.png"))
        finally:
            browser.close()
    static = [(code, url) for code, url in failed if "/static/" in url]
    assert not static, static
    assert [urlsplit(u).path for _, u in failed] == ["/dashboard/project/"], failed


@pytest.mark.slow
def test_admin_logs_in_and_the_identity_pages_list_what_keystone_holds(stack):
    session, done = login(stack.url, "admin", stack.settings.admin_password)
    assert urlsplit(done.url).path == "/dashboard/project/"      # home, as for demo
    assert {"admin", "demo", "alt_demo", "service", "invisible_to_admin"} <= rows(session, stack.url,
                                                                                  "identity/")
    assert {"admin", "demo", "alt_demo", "system_reader"} <= rows(session, stack.url, "identity/users/")
    # the service catalog Keystone hands out: identity alone in this stack
    api_access = session.get(urljoin(stack.url, "project/api_access/"), timeout=60)
    assert api_access.status_code == 200
    body = api_access.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    catalog = [cell.strip() for cell in re.findall(r"<td[^>]*>([^<]*)</td>", body)]
    keystone = f"http://127.0.0.1:{stack.settings.int('KEYSTONE_SERVICE_PORT')}"
    assert catalog == ["Identity", keystone], catalog
    # a user Keystone does not know stays on the login page
    _, refused = login(stack.url, "nobody-here", "not-a-password")
    assert urlsplit(refused.url).path == "/dashboard/auth/login/"
    assert "Invalid credentials" in refused.text


@pytest.mark.slow
def test_without_memcached_the_sessions_go_to_files(stack):
    stack.localrc.write_text(stack.localrc.read_text() + "MEMCACHED_ENABLED=False\n")
    summary = stack.engine().stack()
    ran = [r.step for r in summary.ran]
    assert {"configure horizon", "init horizon", "start horizon"} <= set(ran), ran
    services = {s.service: s for s in summary.services}
    assert "memcached" not in services and services["horizon"].healthy
    sessions = stack.settings.data_dir / "horizon" / "sessions"
    before = set(sessions.iterdir())
    session, done = login(stack.url, "demo", stack.settings.admin_password)
    assert "demo" in rows(session, stack.url, "identity/")
    assert set(sessions.iterdir()) - before


@pytest.mark.slow
def test_unstack_stops_the_dashboard_and_clean_removes_what_it_made(stack):
    from stackmagic.ports import port_is_free
    from stackmagic.process_info import tree
    from tests.browser.procs import alive as running

    status = {s.service: s for s in stack.engine().status()}
    pids = tree(status["horizon"].pid)
    group = os.getpgid(status["horizon"].pid)
    assert len(pids) >= 4                   # the window's shell, gunicorn and its two workers
    stack.engine().unstack()
    # nothing of its process group either (a worker gunicorn forked while it stopped included;
    # a zombie waiting for init counts as gone)
    assert wait_until(lambda: not running({*pids, *members(group)}), 30), running({*pids, *members(group)})
    assert port_is_free("127.0.0.1", stack.settings.int("HORIZON_PORT"))

    settings = stack.settings
    link = settings.dest / "horizon" / "openstack_dashboard" / "local" / "local_settings.py"
    made = [link, settings.data_dir / "horizon", settings.data_dir / "etc" / "horizon"]
    assert all(p.is_symlink() or p.exists() for p in made)
    stack.engine().clean()
    assert not [p for p in made if p.is_symlink() or p.exists()]
    assert (settings.dest / "horizon" / "setup.cfg").exists()      # the source tree is kept


def members(group: int) -> set[int]:
    """The processes of process group ``group``."""
    found = set()
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            if os.getpgid(pid) == group:
                found.add(pid)
        except ProcessLookupError:
            pass
    return found

