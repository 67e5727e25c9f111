"""Horizon as a reader sees it: a screenshot of one dashboard page, taken by Debian's headless
Chromium (driven through Playwright) after logging in as one of devstack's users with the
stack's password (from its store; never shown). The tutorials show it inline, so a reader on
Binder sees the dashboard without opening a port.

Chromium visits the dashboard's own address only (loopback, SERVICE_HOST) and runs without
background networking, as the network rules of this project ask.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urljoin, urlsplit

from stackmagic.errors import ConfigError, StackError

if TYPE_CHECKING:
    from stackmagic.engine import Engine

CHROMIUM = Path("/usr/bin/chromium")

#: Chromium as this machine needs it: no sandbox (root), no GPU, and no connection of its own
#: (updates, sync, QUIC probes): only the pages it is sent to.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: devstack's users that log in with ADMIN_PASSWORD (lib/keystone: create_keystone_accounts),
#: with the project each works in (its clouds.yaml entry's; the system users have none)
USERS = {"demo": "demo", "admin": "admin", "alt_demo": "alt_demo", "demo_reader": "demo",
         "alt_demo_reader": "alt_demo", "system_member": None, "system_reader": None}

#: the names and switch links of the projects in Horizon's project picker
_PROJECTS_JS = """() => [...document.querySelectorAll('a[href*="/auth/switch/"]')]
  .map(a => [a.textContent.trim(), a.getAttribute('href')])"""


@dataclass(frozen=True)
class Screenshot:
    """A dashboard page as Chromium drew it: PNG bytes, the page's address and title, and the
    text of its main panel (what a notebook's check reads: a table's rows)."""

    png: bytes
    url: str
    title: str
    user: str
    text: str = ""

    def _repr_png_(self) -> bytes:          # Jupyter shows it as an image
        return self.png

    def __repr__(self) -> str:
        return f"<Horizon, {self.user}: {self.title} ({self.url})>"


def url(engine: "Engine") -> str:
    """The dashboard's address (HORIZON_PORT, its WEBROOT); Horizon must be enabled."""
    from stackmagic.catalog.horizon import Horizon

    if not engine.config.is_service_enabled("horizon"):
        raise ConfigError("Horizon is not enabled in this stack: add `enable_service horizon` to "
                          "the localrc and run stack")
    return Horizon().url(engine.ctx)


def screenshot(engine: "Engine", page: str = "project/instances/", *, user: str = "demo",
               project: str | None = None, width: int = 1280, height: int = 800,
               timeout: float = 90) -> Screenshot:
    """Log in to the dashboard as ``user``, in ``project`` (see :func:`logged_in`), and take a
    screenshot of ``page`` (a path below the dashboard, e.g. ``project/instances/``,
    ``project/volumes/``, ``identity/``)."""
    base = url(engine)
    if urlsplit(page).scheme or urlsplit(page).netloc or page.startswith("/"):
        raise ConfigError(f"{page!r} is not a page of the dashboard: give its path below "
                          f"{base}, e.g. project/instances/")

    def take() -> Screenshot:
        with logged_in(engine, user=user, project=project, width=width, height=height,
                       timeout=timeout) as tab:
            tab.goto(urljoin(base, page))
            tab.wait_for_load_state("networkidle")
            main = tab.locator("#content_body, main, body").first
            return Screenshot(tab.screenshot(), tab.url, tab.title(), user, main.inner_text())

    if not _in_event_loop():
        return take()
    # a Jupyter kernel runs an asyncio loop in this thread, and Playwright's sync API refuses
    # to start inside one: drive Chromium from a thread of its own
    with ThreadPoolExecutor(1, thread_name_prefix="horizon") as pool:
        return pool.submit(take).result()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def logged_in(engine: "Engine", *, user: str = "demo", project: str | None = None,
              width: int = 1280, height: int = 800, timeout: float = 90) -> Iterator[Any]:
    """A headless Chromium tab (Playwright's ``Page``) logged in to the dashboard as ``user``
    and working in ``project`` (default: the user's own, ``demo`` for demo: devstack gives its
    users no default project, and Horizon would start in whichever Keystone lists first); the
    browser is closed when the block ends.

    Playwright's sync API cannot start inside a running asyncio loop (a Jupyter kernel runs
    one): there, enter this from a thread of its own, as :func:`screenshot` does."""
    base = url(engine)
    if _in_event_loop():
        raise StackError("the dashboard's browser cannot be driven from a running asyncio loop "
                         "(a Jupyter kernel's): use %horizon or dashboard.screenshot, or enter "
                         "dashboard.logged_in from a thread of its own")
    status = {s.service: s for s in engine.status(only=["horizon"])}.get("horizon")
    if status is None or not status.healthy:
        raise StackError(f"Horizon does not answer at {base} "
                         f"({status.detail if status else 'not started'}): run stack first")
    if user not in USERS:
        raise ConfigError(f"{user!r} is none of devstack's users that log in with ADMIN_PASSWORD: "
                          f"use one of {', '.join(USERS)}")
    if not CHROMIUM.exists():
        raise StackError(f"Debian's Chromium ({CHROMIUM}) is not installed: apt-get install chromium")
    try:
        from playwright.sync_api import Error as BrowserError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise StackError("the screenshot needs Playwright (it drives Debian's Chromium): "
                         "pip install playwright (never `playwright install`: the browser is "
                         "Debian's)") from None
    password = engine.ctx.settings.admin_password
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                tab = browser.new_page(locale="en-US", viewport={"width": width, "height": height})
                tab.set_default_timeout(int(timeout * 1000))
                tab.goto(urljoin(base, "auth/login/"))
                tab.fill("#id_username", user)
                tab.fill("#id_password", password)
                with tab.expect_navigation():
                    tab.click("#loginBtn")
                if urlsplit(tab.url).path.endswith("/auth/login/"):
                    raise StackError(f"Horizon refused {user}'s login at {base}: is Keystone up "
                                     "(%services), and is ADMIN_PASSWORD still the one the stack "
                                     "was made with?")
                project = project or USERS[user]
                if project:
                    links = dict(tab.evaluate(_PROJECTS_JS))
                    if project not in links:
                        raise StackError(f"{user} is not a member of a project {project!r} "
                                         f"(theirs: {', '.join(sorted(links)) or 'none'})")
                    tab.goto(urljoin(base, links[project]))
                yield tab
            finally:
                browser.close()
    except BrowserError as err:
        # Playwright's messages name the page and what it waited for, never the form's values
        raise StackError(f"Chromium could not show the dashboard ({base}): "
                         f"{str(err).splitlines()[0]}") from None
