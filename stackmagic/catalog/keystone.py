"""Keystone, the Identity service (devstack's lib/keystone).

configure: keystone.conf with SQL drivers, fernet tokens and credential keys; init: db_sync,
fernet_setup, credential_setup, bootstrap (admin, RegionOne, the identity endpoints); start:
``keystone.wsgi.api:application`` under gunicorn; accounts: what create_keystone_accounts makes
(service project, demo / alt_demo and their users, reader and system users, groups, roles).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog import memcached
from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.database import Database
from stackmagic.catalog.wsgi import gunicorn, shim

if TYPE_CHECKING:
    from stackmagic.context import Context

APP = "keystone.wsgi.api:application"


class Keystone(Project):
    name = "keystone"
    services = {"key": "Identity API"}
    repo = "openstack/keystone"
    pypi = "keystone"
    requirements = ("gunicorn", "openstacksdk", "python-openstackclient")
    uses_database = True
    start_after = ("memcached",)

    def conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("KEYSTONE_CONF")

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx)]

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int("KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT)

    def env(self, ctx: "Context") -> dict[str, str]:
        return {"OS_KEYSTONE_CONFIG_DIR": str(self.conf(ctx).parent)}

    def configure(self, ctx: "Context") -> None:
        conf, s = self.conf(ctx), ctx.settings
        confdir = conf.parent
        ctx.iniset(conf, "DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        ctx.iniset(conf, "DEFAULT", "log_file", "")
        ctx.iniset(conf, "database", "connection", Database.url(ctx, "keystone"))
        ctx.iniset(conf, "DEFAULT", "public_endpoint", ctx.url(self.port(ctx)))
        ctx.iniset(conf, "DEFAULT", "max_token_size", 16384)
        ctx.iniset(conf, "identity", "password_hash_rounds", s.int("KEYSTONE_PASSWORD_HASH_ROUNDS", 4))
        for section in ("identity", "assignment", "role", "resource"):
            ctx.iniset(conf, section, "driver", "sql")
        ctx.iniset(conf, "token", "provider", "fernet")
        ctx.iniset(conf, "fernet_tokens", "key_repository", f"{confdir}/fernet-keys/")
        ctx.iniset(conf, "fernet_receipts", "key_repository", f"{confdir}/fernet-keys/")
        ctx.iniset(conf, "credential", "key_repository", f"{confdir}/credential-keys/")
        cache = memcached.servers(ctx)
        ctx.iniset(conf, "cache", "enabled", cache is not None)
        if cache:
            ctx.iniset(conf, "cache", "backend", "dogpile.cache.pymemcache")
            ctx.iniset(conf, "cache", "memcache_servers", cache)
        if s.bool("KEYSTONE_SECURITY_COMPLIANCE_ENABLED", True):   # devstack's defaults
            ctx.iniset(conf, "security_compliance", "lockout_failure_attempts",
                       s.int("KEYSTONE_LOCKOUT_FAILURE_ATTEMPTS", 2))
            ctx.iniset(conf, "security_compliance", "lockout_duration", s.int("KEYSTONE_LOCKOUT_DURATION", 10))
            ctx.iniset(conf, "security_compliance", "unique_last_password_count",
                       s.int("KEYSTONE_UNIQUE_LAST_PASSWORD_COUNT", 2))
        ctx.iniset(conf, "oslo_policy", "enforce_scope", s.bool("KEYSTONE_ENFORCE_SCOPE", True))
        ctx.iniset(conf, "oslo_policy", "enforce_new_defaults", s.bool("KEYSTONE_ENFORCE_SCOPE", True))
        shim(ctx, "keystone", APP)

    def manage(self, ctx: "Context", *args: str, env: dict[str, str] | None = None) -> None:
        ctx.run(ctx.venv.bin("keystone-manage"), "--config-file", self.conf(ctx), *args,
                env={**self.env(ctx), **(env or {})}, cwd=self.conf(ctx).parent)

    def init(self, ctx: "Context") -> None:
        import getpass

        s = ctx.settings
        from concurrent.futures import ThreadPoolExecutor

        Database.create(ctx, "keystone")
        user = getpass.getuser()
        # the key repositories do not touch the database: make them while db_sync runs
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(self.manage, ctx, *args) for args in (
                ("db_sync",),
                ("fernet_setup", "--keystone-user", user, "--keystone-group", user),
                ("credential_setup", "--keystone-user", user, "--keystone-group", user))]
            for job in jobs:
                job.result()
        url = ctx.url(self.port(ctx))
        # the password travels in the environment (OS_BOOTSTRAP_PASSWORD), never on a command line
        self.manage(ctx, "bootstrap", "--bootstrap-username", "admin",
                    "--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin",
                    "--bootstrap-service-name", "keystone", "--bootstrap-region-id", s.region_name,
                    "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
                    "--bootstrap-admin-url", url,
                    env={"OS_BOOTSTRAP_PASSWORD": s.admin_password})

    def processes(self, ctx: "Context") -> Iterable[Process]:
        if ctx.config.is_service_enabled("key"):
            yield gunicorn(ctx, "key", "keystone", APP, self.port(ctx), env=self.env(ctx),
                           health_path="/v3")

    def accounts(self, ctx: "Context") -> None:
        pw = ctx.settings.admin_password
        service_project = ctx.settings.get("SERVICE_PROJECT_NAME") or "service"
        ops: list[dict] = [
            {"op": "grant", "role": "admin", "user": "admin", "domain": "default"},
            {"op": "project", "name": service_project},
            *({"op": "role", "name": r} for r in ("service", "ResellerAdmin", "anotherrole")),
            {"op": "project", "name": "invisible_to_admin"},
            {"op": "project", "name": "demo"},
            {"op": "project", "name": "alt_demo"},
        ]
        users = [("demo", [("member", "demo"), ("anotherrole", "demo"), ("member", "invisible_to_admin")]),
                 ("demo_reader", [("reader", "demo")]),
                 ("alt_demo", [("admin", "alt_demo"), ("anotherrole", "alt_demo")]),
                 ("alt_demo_member", [("member", "alt_demo")]),
                 ("alt_demo_reader", [("reader", "alt_demo")])]
        for user, grants in users:
            ops.append({"op": "user", "name": user, "password": pw, "email": f"{user}@example.com"})
            ops += [{"op": "grant", "role": r, "user": user, "project": p} for r, p in grants]
        ops.append({"op": "grant", "role": "admin", "user": "admin", "project": "demo"})
        for user, role in (("system_member", "member"), ("system_reader", "reader")):
            ops.append({"op": "user", "name": user, "password": pw, "email": f"{user}@example.com"})
            ops.append({"op": "grant", "role": role, "user": user, "system": "all"})
        ops += [{"op": "group", "name": "admins", "description": "openstack admin group"},
                {"op": "group", "name": "nonadmins", "description": "non-admin group"}]
        for role, project in (("member", "demo"), ("anotherrole", "demo"),
                              ("member", "alt_demo"), ("anotherrole", "alt_demo")):
            ops.append({"op": "grant", "role": role, "group": "nonadmins", "project": project})
        ops.append({"op": "grant", "role": "admin", "group": "admins", "project": "admin"})
        identity.apply(ctx, ops)

    def cleanup(self, ctx: "Context") -> None:
        Database.drop(ctx, "keystone")
        shutil.rmtree(self.conf(ctx).parent, ignore_errors=True)


def authtoken(ctx: "Context", conf: Path, user: str, section: str = "keystone_authtoken") -> None:
    """devstack's configure_keystone_authtoken_middleware: how a service checks tokens."""
    s = ctx.settings
    url = ctx.url(s.int("KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT))
    for key, value in (
        ("auth_type", "password"), ("interface", "public"), ("auth_url", url),
        ("www_authenticate_uri", url), ("username", user), ("user_domain_name", "Default"),
        ("project_name", s.get("SERVICE_PROJECT_NAME") or "service"),
        ("project_domain_name", "Default"), ("password", s.service_password),
        ("region_name", s.region_name), ("service_token_roles_required", "true"),
    ):
        ctx.iniset(conf, section, key, value)
    cache = memcached.servers(ctx)
    if cache:
        ctx.iniset(conf, section, "memcached_servers", cache)
