"""Horizon, the Dashboard (devstack's lib/horizon).

install: the horizon checkout (from the PyPI-sdist mirror with ``MIRROR_FROM_PYPI``), editable in
the stack's venv, with pymemcache and gunicorn. configure: ``compilemessages`` in the checkout,
then ``local_settings.py`` made from the checkout's ``local_settings.py.example`` (or
``$HORIZON_SETTINGS``) with devstack's settings: ``WEBROOT`` (``$HORIZON_APACHE_ROOT/``, default
``/dashboard/``), ``COMPRESS_OFFLINE``, ``OPENSTACK_KEYSTONE_DEFAULT_ROLE``, ``OPENSTACK_HOST``,
``OPENSTACK_KEYSTONE_URL`` (Keystone's ``/v3``), ``ALLOWED_HOSTS``, multi-domain support with
``ldap`` and the backup panel with ``c-bak``. init: ``collectstatic`` and ``compress --force``,
as init_horizon. start: ``openstack_dashboard.wsgi`` under gunicorn in window ``horizon``,
healthy when the login page answers, on ``SERVICE_LISTEN_ADDRESS:$HORIZON_PORT``.

Where stackmagic differs, and why:

- **No Apache.** devstack's Apache site mounts the app at WEBROOT (``WSGIScriptAlias``),
  redirects ``/`` there and serves ``WEBROOT/static`` from the collected tree (``Alias``).
  gunicorn serves a small WSGI module instead (``wsgi_horizon.py`` beside the config) that does
  those three things: the mount sets ``SCRIPT_NAME``; static files go through Django's own
  ``StaticFilesHandler`` (what ``runserver`` uses), told to serve from ``STATIC_ROOT`` with
  ``django.views.static.serve`` rather than through the finders, so the page gets exactly what
  collectstatic and compress wrote (the compressed CSS/JS exist nowhere else), as Apache's
  ``Alias`` does, and a stack whose collectstatic did not run shows 404s instead of quietly
  serving the sources. No extra package (WhiteNoise would do the same with one more
  dependency); the dashboard's few dozen static files are no load for a gunicorn worker.
- **Sessions.** devstack does not set them: Horizon's defaults keep sessions in the cache, and
  the cache is memcached on ``127.0.0.1:11211``, where devstack's memcached runs. Here memcached
  listens on ``MEMCACHED_PORT`` (sandboxes move it), so ``CACHES`` names it; when there is no
  memcached (``MEMCACHED_ENABLED=False``, or an ordinary user without the package) sessions go to
  files under ``$DATA_DIR/horizon/sessions`` (Django's file backend: no daemon, shared by every
  worker, and unlike signed cookies no 4 KB limit for a token with a large service catalog),
  with a per-process memory cache.
- **Config and generated files.** ``local_settings.py`` lives in ``$HORIZON_CONF_DIR`` (mode
  0600) like every project's config, linked from the checkout's ``openstack_dashboard/local/``
  where Horizon imports it; its ``LOCAL_PATH`` (where the secret key is kept) points at
  ``$HORIZON_CONF_DIR``, and ``STATIC_ROOT`` at ``$DATA_DIR/horizon/static`` (devstack: both in
  the checkout), so cleanup removes them and the source tree only gains the link and the
  compiled message catalogs.
- **The port.** devstack serves the dashboard on Apache's port 80, and ``HORIZON_PORT``
  defaults to it; below 1024 only root can listen, so an ordinary user sets another.
- Not done: the TLS CA bundle (no ``tls-proxy`` here), ``WEBROOT/media`` (Apache aliases it to
  the source's static directory; nothing in the dashboard uses it).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import memcached
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.catalog.wsgi import gunicorn

if TYPE_CHECKING:
    from stackmagic.context import Context

#: devstack serves the dashboard on Apache's port.
PORT = 80
#: devstack's HORIZON_APACHE_ROOT (stackrc).
APACHE_ROOT = "/dashboard"
SETTINGS_MODULE = "openstack_dashboard.settings"

WSGI = '''"""Written by stackmagic: Horizon under gunicorn as devstack's Apache site serves it: the
dashboard mounted at WEBROOT, / redirected there, WEBROOT/static/ from STATIC_ROOT."""
import os
import sys

sys.argv = sys.argv[:1]
os.environ["DJANGO_SETTINGS_MODULE"] = "{settings}"

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.views import static  # noqa: E402

from openstack_dashboard.wsgi import application as dashboard  # noqa: E402

MOUNT = {mount!r}


class CollectedStatic(StaticFilesHandler):
    """STATIC_URL served from STATIC_ROOT: what collectstatic and compress wrote."""

    def serve(self, request):
        return static.serve(request, self.file_path(request.path), document_root=settings.STATIC_ROOT)


def mounted(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if not MOUNT:
        return dashboard(environ, start_response)
    if path in ("", "/"):
        start_response("302 Found", [("Location", MOUNT + "/"), ("Content-Length", "0")])
        return [b""]
    if path == MOUNT or path.startswith(MOUNT + "/"):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + MOUNT
        environ["PATH_INFO"] = path[len(MOUNT):]
        return dashboard(environ, start_response)
    body = b"Not Found: the dashboard is at " + MOUNT.encode() + b"/"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = CollectedStatic(mounted)
'''


def config_set(text: str, section: str, option: str, value: str) -> str:
    """devstack's ``_horizon_config_set`` on the text of a local_settings.py.

    Without ``section``: every line that assigns ``option`` goes and ``option = value`` is added
    at the end. With one: ``'option': value,`` inside the dict ``section = {...}``, replacing the
    key's line if the dict has it, else first in the dict; a dict that is missing is appended.
    """
    if not section:
        kept = [line for line in text.splitlines()
                if not re.match(rf"{re.escape(option)}(?![A-Za-z0-9_])", line)]
        return "\n".join(kept) + f"\n{option} = {value}\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(section)), None)
    if start is None:
        return text + f"\n\n{section} = {{\n    '{option}': {value},\n}}\n"
    for i in range(start, len(lines)):
        if re.match(rf" *'{re.escape(option)}' *:", lines[i]):
            lines[i] = re.sub(rf"^( *'{re.escape(option)}') *:.*$", rf"\1: {value},", lines[i])
            break
        if i > start and lines[i].startswith("}"):
            lines.insert(start + 1, f"    '{option}': {value},")
            break
    return "\n".join(lines) + "\n"


class Horizon(Project):
    name = "horizon"
    services = {"horizon": "Dashboard (web UI)"}
    repo = "openstack/horizon"
    pypi = "horizon"
    requirements = ("gunicorn", "pymemcache")          # install_horizon: pip_install_gr pymemcache
    system_packages = ("gettext",)                     # msgfmt, for compilemessages
    # the login page needs nothing, but logging in needs Keystone and its users; sessions go to
    # memcached when there is one
    requires = (Need("identity", before="start"), Need("cache", before="start", optional=True))
    ports = {"HORIZON_PORT": PORT}

    # -- where things are ----------------------------------------------------------------
    def conf_dir(self, ctx: "Context") -> Path:
        return ctx.settings.path("HORIZON_CONF_DIR", ctx.conf_dir(self.name))

    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "horizon"

    def local_settings(self, ctx: "Context") -> Path:
        return self.conf_dir(ctx) / "local_settings.py"

    def link(self, ctx: "Context") -> Path:
        """Where Horizon imports local_settings from: the checkout's ``openstack_dashboard/local``."""
        return self.source_dir(ctx) / "openstack_dashboard" / "local" / "local_settings.py"

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int("HORIZON_PORT", PORT)

    def mount(self, ctx: "Context") -> str:
        """WEBROOT without its trailing slash: ``/dashboard`` (``""`` for the site's root)."""
        return (ctx.settings.get("HORIZON_APACHE_ROOT", APACHE_ROOT) or "").rstrip("/")

    def url(self, ctx: "Context") -> str:
        """The dashboard's address, as devstack's summary prints it."""
        return ctx.url(self.port(ctx), self.mount(ctx) + "/")

    def django(self, ctx: "Context", *args: str) -> None:
        """``django-admin args`` with Horizon's settings, from the checkout."""
        ctx.run(ctx.venv.bin("django-admin"), *args, env={"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE},
                cwd=self.source_dir(ctx))

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        s, src = ctx.settings, self.source_dir(ctx)
        # the message catalogs, compiled in the checkout as devstack does (after the install);
        # through django-admin without settings, which would otherwise be imported and make a
        # secret key in the checkout; the Sphinx catalogs of doc/ and releasenotes/ are not
        # the dashboard's
        ctx.run(ctx.venv.bin("django-admin"), "compilemessages", "--ignore", "doc",
                "--ignore", "releasenotes", cwd=src)
        template = s.path("HORIZON_SETTINGS",
                          src / "openstack_dashboard" / "local" / "local_settings.py.example")
        text = template.read_text() + "\n"         # devstack: ensure it ends with a newline
        # the secret key's store, kept with the config (the example: beside the file's link)
        text = re.sub(r"(?m)^LOCAL_PATH = .*$", f"LOCAL_PATH = {str(self.conf_dir(ctx))!r}", text)
        if not memcached.servers(ctx):
            (self.data_dir(ctx) / "sessions").mkdir(parents=True, exist_ok=True)
        for section, option, value in self.dashboard_settings(ctx):
            text = config_set(text, section, option, value)
        ctx.write_file(self.local_settings(ctx), text)
        link = self.link(ctx)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(self.local_settings(ctx))
        ctx.write_file(ctx.conf_dir(self.name) / f"wsgi_{self.name}.py",
                       WSGI.format(settings=SETTINGS_MODULE, mount=self.mount(ctx)))

    def dashboard_settings(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """What configure sets in local_settings.py: (dict or "" for the top level, name, value)."""
        s = ctx.settings
        options = [
            ("", "WEBROOT", repr(self.mount(ctx) + "/")),
            ("", "COMPRESS_OFFLINE", "True"),
            ("", "OPENSTACK_KEYSTONE_DEFAULT_ROLE", repr("member")),
            ("", "OPENSTACK_HOST", repr(s.service_host)),
            ("", "OPENSTACK_KEYSTONE_URL", repr(identity.auth_url(ctx))),
            ("", "ALLOWED_HOSTS", repr(["*"])),
        ]
        if ctx.config.is_service_enabled("ldap"):
            options.append(("", "OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT", "True"))
        if ctx.config.is_service_enabled("c-bak"):
            options.append(("OPENSTACK_CINDER_FEATURES", "enable_backup", "True"))
        # stackmagic's: collected files under DATA_DIR; sessions (see the module's docstring)
        options.append(("", "STATIC_ROOT", repr(str(self.data_dir(ctx) / "static"))))
        cache = memcached.servers(ctx)
        if cache:
            options.append(("", "CACHES", repr({"default": {
                "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "LOCATION": cache}})))
        else:
            options += [
                ("", "CACHES", repr({"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})),
                ("", "SESSION_ENGINE", repr("django.contrib.sessions.backends.file")),
                ("", "SESSION_FILE_PATH", repr(str(self.data_dir(ctx) / "sessions"))),
            ]
        return options

    def init(self, ctx: "Context") -> None:
        # init_horizon: after the plugins are configured
        self.django(ctx, "collectstatic", "--noinput")
        self.django(ctx, "compress", "--force")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        if not ctx.config.is_service_enabled("horizon"):
            return
        port = self.port(ctx)
        proc = gunicorn(ctx, "horizon", self.name, "openstack_dashboard.wsgi:application", port,
                        workers=ctx.settings.api_workers, health_path=self.mount(ctx) + "/auth/login/",
                        timeout=120)
        # gunicorn's SIGTERM waits for busy workers (30 s); SIGINT is its quick shutdown
        yield dataclasses.replace(proc, endpoint=self.url(ctx), needs_root=port < 1024,
                                  stop_signal=signal.SIGINT)

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """Tempest's dashboard scenario (in ``--smoke``) opens this URL; devstack leaves
        Tempest's default, ``http://localhost/``, which its Apache redirects to the dashboard."""
        return [("dashboard", "dashboard_url", self.url(ctx))]

    def plan_notes(self, ctx: "Context") -> list[str]:
        cache = memcached.servers(ctx)
        where = (f"sessions in memcached ({cache})" if cache else
                 "sessions in files under $DATA_DIR/horizon/sessions (no memcached)")
        return [f"horizon: the dashboard at {self.url(ctx)}; {where}"]

    def cleanup(self, ctx: "Context") -> None:
        link = self.link(ctx)
        if link.is_symlink():
            link.unlink()
        shutil.rmtree(self.conf_dir(ctx), ignore_errors=True)
        shutil.rmtree(ctx.conf_dir(self.name), ignore_errors=True)
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)

