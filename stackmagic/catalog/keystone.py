"""Keystone, the Identity service (devstack's lib/keystone).

configure: keystone.conf with SQL drivers, fernet tokens and credential keys; init: db_sync,
fernet_setup, credential_setup, bootstrap (admin, RegionOne, the identity endpoints); start:
``keystone.wsgi.api:application`` under gunicorn; accounts: what create_keystone_accounts makes
(service project, demo / alt_demo and their users, reader and system users, groups, roles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackmagic import identity
from stackmagic.catalog import memcached
from stackmagic.catalog.api_service import ApiService
from stackmagic.catalog.base import Need
from stackmagic.catalog.database import Database
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context


class Keystone(ApiService):
    name = "keystone"
    group = "keystone"
    services = {"key": "Identity API"}
    repo = "openstack/keystone"
    pypi = "keystone"
    requirements = ("gunicorn", "openstacksdk", "python-openstackclient")
    api, app, health_path = "key", "keystone.wsgi.api:application", "/v3"
    conf_setting, port_setting, default_port = "KEYSTONE_CONF", "KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT
    database, manage = "keystone", "keystone-manage"
    scope_setting = "KEYSTONE_ENFORCE_SCOPE"
    authtoken = False                   # it is the one that checks tokens
    provides = {"identity": "accounts"}
    requires = (Need("database", before="init"), Need("cache", before="start", optional=True))
    own_order = (("start", "accounts"),)    # its accounts are made through its own API

    def configure(self, ctx: "Context") -> None:
        super().configure(ctx)
        conf, s = self.conf(ctx), ctx.settings
        confdir = conf.parent
        ctx.iniset(conf, "DEFAULT", "log_file", "")
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
            # devstack's CACHE_BACKEND: python-memcached treats a dead server as a cache miss;
            # pymemcache raised on the broken connection (HTTP 500 after memcached restarted)
            ctx.iniset(conf, "cache", "backend", s.get("CACHE_BACKEND") or "dogpile.cache.memcached")
            ctx.iniset(conf, "cache", "memcache_servers", cache)
        if s.bool("KEYSTONE_SECURITY_COMPLIANCE_ENABLED", True):   # devstack's defaults
            ctx.iniset(conf, "security_compliance", "lockout_failure_attempts",
                       s.int("KEYSTONE_LOCKOUT_FAILURE_ATTEMPTS", 2))
            ctx.iniset(conf, "security_compliance", "lockout_duration", s.int("KEYSTONE_LOCKOUT_DURATION", 10))
            ctx.iniset(conf, "security_compliance", "unique_last_password_count",
                       s.int("KEYSTONE_UNIQUE_LAST_PASSWORD_COUNT", 2))

    def init(self, ctx: "Context") -> None:
        import getpass

        s = ctx.settings
        from concurrent.futures import ThreadPoolExecutor

        Database.create(ctx, self.database)
        user = getpass.getuser()
        # the key repositories do not touch the database: make them while db_sync runs
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(self.run_manage, ctx, *args) for args in (
                ("db_sync",),
                ("fernet_setup", "--keystone-user", user, "--keystone-group", user),
                ("credential_setup", "--keystone-user", user, "--keystone-group", user))]
            for job in jobs:
                job.result()
        url = ctx.url(self.port(ctx))
        # the password travels in the environment (OS_BOOTSTRAP_PASSWORD), never on a command line
        self.run_manage(ctx, "bootstrap", "--bootstrap-username", "admin",
                        "--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin",
                        "--bootstrap-service-name", "keystone", "--bootstrap-region-id", s.region_name,
                        "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
                        "--bootstrap-admin-url", url,
                        env={"OS_BOOTSTRAP_PASSWORD": s.admin_password})

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

    def verify_checks(self, ctx: "Context") -> list[Listing]:
        return [Listing("token", "token"), Listing("projects", "identity.projects"),
                Listing("users", "identity.users"),
                Listing("services", "identity.services", ("type", "name"), join=":")]

