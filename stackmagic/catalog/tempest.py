"""Tempest, OpenStack's integration test suite (devstack's lib/tempest): installed and configured
against the running stack, no process of its own.

Everything happens in devstack's ``test-config`` phase, once every service is up and has its
accounts and images: tempest is installed from PyPI into its own virtual environment
(``$DATA_DIR/venv-tempest``; tempest's requirements need not agree with the servers'), the
version pinned by the release series' constraints, else :data:`DEFAULT_VERSION`. ``$TEMPEST_CONFIG``
is written as configure_tempest does for the enabled services (admin credentials, Keystone's v3
URI, which services exist, the features this Keystone and Glance have, the image to use), then
the ``[[test-config|$TEMPEST_CONFIG]]`` sections of local.conf are merged into it. A ``tempest
init`` workspace under ``$DATA_DIR/tempest`` reads that file through a symlink, so::

    cd $DATA_DIR/tempest && $DATA_DIR/venv-tempest/bin/tempest run --regex '^tempest\\.api\\.identity'

tests the stack. tempest.conf holds the admin password: it is made with mode 0600 before any
line is written to it, and nothing here logs a password.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackmagic import identity, ini
from stackmagic.catalog.base import Need, Project
from stackmagic.context import oslo_value
from stackmagic.errors import ConfigError, StackError
from stackmagic.python import Venv

if TYPE_CHECKING:
    from stackmagic.context import Context

#: The tempest release installed when the series' constraints pin none.
DEFAULT_VERSION = "47.0.0"
#: Name of the workspace in its registry (``$DATA_DIR/tempest-workspace.yaml``).
WORKSPACE_NAME = "stackmagic"
#: The ``[service_available]`` options configure_tempest sets (each a service group name), true
#: when that group is enabled. What else tempest must know of a project, the project says
#: (``Project.tempest_options``).
SERVICE_AVAILABLE: tuple[str, ...] = ("glance", "nova", "neutron", "cinder", "swift", "horizon")
#: Disk formats devstack never hands tempest as the image to boot.
_SKIPPED_FORMATS = ("aki", "ari", "iso")


class TempestError(StackError):
    """Tempest cannot be configured against this stack."""


@dataclass(frozen=True)
class Images:
    """The image tempest boots (``image_ref``) and its alternative (``image_ref_alt``)."""

    ref: str
    alt: str


class Tempest(Project):
    """Project ``tempest``, service ``tempest``: the test suite, set up in the test-config phase."""

    name = "tempest"
    services = {"tempest": "Tempest integration tests (installed and configured, no process)"}
    requires = (Need("identity", before="data"),)

    # -- where things are ----------------------------------------------------------------
    def venv(self, ctx: "Context") -> Venv:
        """Tempest's own virtual environment, ``$DATA_DIR/venv-tempest``."""
        return Venv(ctx.settings.data_dir / "venv-tempest")

    def conf(self, ctx: "Context") -> Path:
        """``$TEMPEST_CONFIG`` (default ``$STACK_CONF_DIR/tempest/tempest.conf``)."""
        return ctx.settings.path("TEMPEST_CONFIG")

    def workspace(self, ctx: "Context") -> Path:
        """The ``tempest init`` workspace to run ``tempest run`` from, ``$DATA_DIR/tempest``."""
        return ctx.settings.data_dir / "tempest"

    def version(self, ctx: "Context") -> str:
        """The tempest release to install: the constraints' pin, else :data:`DEFAULT_VERSION`."""
        return pinned_version(_constraints(ctx), "tempest") or DEFAULT_VERSION

    # -- lifecycle ---------------------------------------------------------------------------
    def test_config(self, ctx: "Context") -> None:
        """devstack's install_tempest + configure_tempest, and the workspace to run it from."""
        self.install(ctx)
        self.write_config(ctx)
        self.make_workspace(ctx)

    def cleanup(self, ctx: "Context") -> None:
        """Remove the workspace (results, logs) and tempest.conf; keep the installed venv."""
        shutil.rmtree(self.workspace(ctx), ignore_errors=True)
        _registry(ctx).unlink(missing_ok=True)
        self.conf(ctx).unlink(missing_ok=True)

    def plan_notes(self, ctx: "Context") -> list[str]:
        """What TEMPEST_PLUGINS adds (a list that does not parse is refused here, before
        anything is built)."""
        named = named_plugins(ctx.settings)
        return [f"tempest: TEMPEST_PLUGINS installs {' '.join(named)} into its venv"] if named else []

    # -- the steps of test_config ----------------------------------------------------------
    def install(self, ctx: "Context") -> None:
        """Install tempest into its own venv, under the series' constraints when there are any,
        with the tempest plugins of the projects that run (``Project.tempest_plugins``) and
        those the localrc names (:func:`named_plugins`)."""
        venv = self.venv(ctx)
        created = venv.ensure()
        version = self.version(ctx)
        plugins = [*(r for p in ctx.projects for r in p.tempest_plugins), *named_plugins(ctx.settings)]
        ctx.log(("created" if created else "using") + f" {venv.path} for tempest {version}"
                + (f" and {', '.join(plugins)}" if plugins else ""))
        venv.install([f"tempest=={version}", *plugins], constraints=_constraints(ctx),
                     offline=ctx.settings.offline, log=ctx.log)

    def write_config(self, ctx: "Context") -> None:
        """Write ``$TEMPEST_CONFIG`` for the enabled services, then local.conf's test-config merges."""
        from stackmagic.steps import apply_merges

        conf = self.conf(ctx)
        _private_file(conf)
        with ini.IniFile(conf) as tempest_conf:            # one write for all options
            for section, key, value in tempest_options(ctx, self.workspace(ctx)):
                tempest_conf.set(section, key, oslo_value(value))     # oslo.config reads it
        merges = [m for m in ctx.config.merges
                  if m.phase == "test-config" and Path(m.file) == conf]
        apply_merges(ctx, merges)
        ctx.log(f"wrote {conf} (mode 0600)")

    def make_workspace(self, ctx: "Context") -> None:
        """``tempest init`` once; its ``etc/tempest.conf`` is a symlink to ``$TEMPEST_CONFIG``."""
        ws, conf = self.workspace(ctx), self.conf(ctx)
        if not (ws / ".stestr.conf").is_file():
            shutil.rmtree(ws, ignore_errors=True)     # a half-made one from an interrupted run
            registry = _registry(ctx)
            registry.unlink(missing_ok=True)
            # tempest init copies --config-dir into etc/: give it an empty one, the real file
            # is linked in below
            seed = ws.with_name(".tempest-init-config")
            shutil.rmtree(seed, ignore_errors=True)
            seed.mkdir(parents=True)
            try:
                ctx.run(self.venv(ctx).bin("tempest"), "init", "--config-dir", seed,
                        "--workspace-path", registry, "--name", WORKSPACE_NAME, ws,
                        cwd=ws.parent, timeout=300)
            finally:
                shutil.rmtree(seed, ignore_errors=True)
        link = ws / "etc" / "tempest.conf"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not (link.is_symlink() and Path(os.readlink(link)) == conf):
            link.unlink(missing_ok=True)
            link.symlink_to(conf)
        ctx.log(f"tempest workspace {ws}: run `tempest run` there with {self.venv(ctx).bin('tempest')}")


# -- tempest.conf ------------------------------------------------------------------------------
def tempest_options(ctx: "Context", workspace: Path) -> list[tuple[str, str, str]]:
    """Every (section, key, value) configure_tempest would write for this stack."""
    s, cfg = ctx.settings, ctx.config
    opts: list[tuple[str, str, str]] = [
        ("DEFAULT", "debug", "true"),
        ("DEFAULT", "use_stderr", "false"),
        ("DEFAULT", "log_dir", str(workspace / "logs")),
        ("DEFAULT", "log_file", "tempest.log"),
        ("oslo_concurrency", "lock_path", str(workspace / "tempest_lock")),
        # Identity
        ("identity", "uri_v3", identity.auth_url(ctx)),
        ("identity", "auth_version", s.get("TEMPEST_AUTH_VERSION") or "v3"),
        ("identity", "region", s.region_name),
        ("auth", "admin_username", "admin"),
        ("auth", "admin_password", s.admin_password or ""),
        ("auth", "admin_project_name", "admin"),
        ("auth", "admin_domain_name", "Default"),
        ("auth", "use_dynamic_credentials", _tf(s.bool("TEMPEST_ALLOW_TENANT_ISOLATION", True))),
        ("identity-feature-enabled", "api_v2", "false"),
        ("identity-feature-enabled", "project_tags", "true"),
        ("identity-feature-enabled", "application_credentials", "true"),
        ("identity-feature-enabled", "access_rules", "true"),
        *_security_compliance(ctx),
    ]
    if cfg.is_service_enabled("n-api") or cfg.is_service_enabled("q-svc"):
        # devstack's validation section: how tempest logs in to a guest it booted (the image
        # stackmagic builds takes cirros's user, key pair and password, as cirros does)
        user = s.get("DEFAULT_INSTANCE_USER") or "cirros"
        opts += [("validation", "image_ssh_user", user),
                 ("validation", "image_alt_ssh_user", s.get("DEFAULT_INSTANCE_ALT_USER") or user),
                 ("validation", "image_ssh_password", s.get("DEFAULT_INSTANCE_PASSWORD") or "gocubsgo"),
                 ("validation", "auth_method", "keypair"),
                 ("validation", "ssh_timeout", s.get("BUILD_TIMEOUT") or "196")]
    for service in SERVICE_AVAILABLE:
        opts.append(("service_available", service, _tf(cfg.is_service_enabled(service))))
    for project in ctx.projects:        # what each running project tells tempest about itself
        opts += project.tempest_options(ctx)
    return opts


def _security_compliance(ctx: "Context") -> list[tuple[str, str, str]]:
    """The lockout and password-history tests, enabled when keystone.conf enforces them."""
    keystone_conf = ctx.settings.path("KEYSTONE_CONF")
    attempts = ini.iniget(keystone_conf, "security_compliance", "lockout_failure_attempts")
    if not attempts:
        return [("identity-feature-enabled", "security_compliance", "false")]
    out = [("identity-feature-enabled", "security_compliance", "true"),
           ("identity", "user_lockout_failure_attempts", attempts)]
    for key, option in (("lockout_duration", "user_lockout_duration"),
                        ("unique_last_password_count", "user_unique_last_password_count")):
        value = ini.iniget(keystone_conf, "security_compliance", key)
        if value:
            out.append(("identity", option, value))
    return out


def image_options(ctx: "Context") -> list[tuple[str, str, str]]:
    s = ctx.settings
    images = active_images(ctx)
    opts = [
        ("compute", "image_ref", images.ref),
        ("compute", "image_ref_alt", images.alt),
        # the import workflow's tests need web-download (the internet) and several stores:
        # devstack tells tempest about it only when GLANCE_USE_IMPORT_WORKFLOW is on
        ("image-feature-enabled", "import_image", _tf(s.bool("GLANCE_USE_IMPORT_WORKFLOW", False))),
        ("image-feature-enabled", "os_glance_reserved", "true"),
        ("image-feature-enabled", "image_format_enforcement",
         _tf(s.bool("GLANCE_ENFORCE_IMAGE_FORMAT", True))),
    ]
    local = _image_file(ctx, images.ref)
    if local is not None:          # what scenario tests upload when they make images of their own
        opts += [("scenario", "img_file", str(local)), ("scenario", "img_disk_format", "qcow2"),
                 ("scenario", "img_container_format", "bare")]
    if s.get("TEMPEST_HTTP_IMAGE"):
        opts.append(("image", "http_image", s["TEMPEST_HTTP_IMAGE"]))
    return opts


def active_images(ctx: "Context") -> Images:
    """devstack's get_active_images: DEFAULT_IMAGE_NAME (else the first active image) and another.

    Asks Glance directly with an admin token (stdlib HTTP, no client in between).
    """
    listing = _glance_get(ctx, "/v2/images?status=active&limit=1000")
    usable = [i for i in listing.get("images", []) if i.get("disk_format") not in _SKIPPED_FORMATS]
    if not usable:
        raise TempestError("Glance has no active image for tempest to use; enable the image "
                           "upload (IMAGE_URLS, or the image stackmagic builds) or disable tempest")
    wanted = ctx.settings.get("DEFAULT_IMAGE_NAME")
    first = next((i for i in usable if wanted and i.get("name") == wanted), usable[0])
    alt = next((i for i in usable if i["id"] != first["id"]), first)
    return Images(first["id"], alt["id"])


def _image_file(ctx: "Context", image_id: str) -> Path | None:
    """The file under ``$FILES/images`` that image ``image_id`` was uploaded from (qcow2 only)."""
    found = _glance_get(ctx, f"/v2/images/{image_id}")
    if found.get("disk_format") != "qcow2":
        return None
    for path in sorted((ctx.settings.files / "images").glob("*.qcow2")):
        if path.name.startswith(found.get("name", "")) and path.stat().st_size == found.get("size"):
            return path
    return None


def _glance_get(ctx: "Context", path: str) -> dict[str, Any]:
    return service_get(ctx, "image", path, "g-api")


def named_plugins(settings) -> list[str]:
    """devstack's ``TEMPEST_PLUGINS``: what pip installs into Tempest's venv beside Tempest
    (requirements or paths, space-separated; ``0``, devstack's default, is none), e.g.
    ``TEMPEST_PLUGINS=heat-tempest-plugin`` as devstack's gate jobs name a plugin."""
    import shlex

    value = (settings.get("TEMPEST_PLUGINS") or "").strip()
    if value in ("", "0"):
        return []
    try:
        return shlex.split(value)
    except ValueError as err:
        raise ConfigError(f"TEMPEST_PLUGINS={value!r} is not a space-separated list ({err}): "
                          "quote it as TEMPEST_PLUGINS='one-plugin other-plugin'") from None


def service_get(ctx: "Context", kind: str, path: str, service: str) -> dict[str, Any]:
    """GET ``path`` from the ``kind`` API (its public endpoint) as the admin; ``service`` names
    what to check is running when it does not answer."""
    token, catalog = _admin_token(ctx)
    url = _endpoint(catalog, kind, ctx.settings.region_name) + path
    return json_get(url, service, headers={"X-Auth-Token": token})


def json_get(url: str, service: str, *, headers: dict[str, str] | None = None, purpose: str = "") -> Any:
    """GET one of the stack's own URLs and parse its JSON. When it does not answer, or not in
    JSON: an error naming the URL, ``purpose`` (why it was asked) and ``service`` (what to check
    is running)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - the stack's own URL
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise TempestError(f"cannot read {url} ({err}){purpose}; is {service} running (%services)?") from None


def _admin_token(ctx: "Context") -> tuple[str, list[dict[str, Any]]]:
    auth = identity.admin_auth(ctx)
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": auth["user_domain_name"]}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}},
    }}
    request = urllib.request.Request(
        auth["auth_url"] + "/auth/tokens", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - the stack's own URL
            return resp.headers["X-Subject-Token"], json.load(resp)["token"].get("catalog", [])
    except urllib.error.HTTPError as err:
        raise TempestError(f"Keystone refused the admin login ({err.code}); check ADMIN_PASSWORD "
                           "and that the keystone service is the one this stack started") from None
    except (urllib.error.URLError, OSError) as err:
        raise TempestError(f"cannot reach Keystone at {auth['auth_url']} ({err}); is key running?") from None


def _endpoint(catalog: list[dict[str, Any]], kind: str, region: str) -> str:
    for service in catalog:
        if service.get("type") != kind:
            continue
        for ep in service.get("endpoints", []):
            if ep.get("interface") == "public" and ep.get("region_id", ep.get("region")) == region:
                return ep["url"].rstrip("/")
    raise TempestError(f"the service catalog has no public {kind} endpoint in region {region}; "
                       "re-run stack so the accounts step creates it")


# -- small helpers ---------------------------------------------------------------------------
def pinned_version(constraints: Path | None, name: str) -> str | None:
    """The version ``constraints`` pins ``name`` to (``name===1.2.3`` or ``name==1.2.3``), if any."""
    if constraints is None or not constraints.is_file():
        return None
    from stackmagic.constraints import normalize

    for line in constraints.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        pkg, sep, version = line.partition("==")
        if sep and normalize(pkg.strip()) == normalize(name):
            return version.lstrip("=").strip()
    return None


def _constraints(ctx: "Context") -> Path | None:
    from stackmagic.steps import constraints_file

    return constraints_file(ctx)


def _registry(ctx: "Context") -> Path:
    """tempest's workspace registry, kept in DATA_DIR instead of ``~/.tempest``."""
    return ctx.settings.data_dir / "tempest-workspace.yaml"


def _private_file(path: Path) -> None:
    """Make ``path`` exist with mode 0600 (a new directory for it 0700) before secrets go in."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _tf(value: bool) -> str:
    return "true" if value else "false"
