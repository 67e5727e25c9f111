"""The shape every OpenStack API project shares (devstack's lib/keystone, lib/glance,
lib/placement ... each write it out again): a config file named by a setting, a WSGI API under
gunicorn on a port setting, a database synced by the project's manage command, the oslo.policy
scope options, token checks through Keystone (keystone_authtoken), a service user with its
endpoints, and a cleanup that drops the database and the config.

A project module sets the class attributes and writes only what is its own::

    class Placement(ApiService):
        name = "placement"
        services = {"placement-api": "Placement API"}
        repo, pypi = "openstack/placement", "openstack-placement"
        api, app = "placement-api", "placement.wsgi.api:application"
        conf_setting, port_setting, default_port = "PLACEMENT_CONF", "PLACEMENT_SERVICE_PORT", 8778
        database, database_section = "placement", "placement_database"
        manage, db_sync = "placement-manage", ("db", "sync")
        service_type, service_description = "placement", "Placement Service"

and extends ``configure`` / ``init`` with ``super()`` for the rest.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable

from stackmagic import identity
from stackmagic.catalog import memcached
from stackmagic.catalog.base import Need, Process, Project
from stackmagic.catalog.database import Database
from stackmagic.catalog.wsgi import gunicorn, shim

if TYPE_CHECKING:
    from stackmagic.context import Context


class ApiService(Project):
    """An OpenStack API project; see the module's docstring for the attributes to set."""

    api: ClassVar[str]                              # the API's service name: "g-api"
    app: ClassVar[str]                              # its WSGI application "glance.wsgi.api:application"
    conf_setting: ClassVar[str]                     # the setting naming its config file
    port_setting: ClassVar[str]                     # the setting naming its port
    default_port: ClassVar[int]
    health_path: ClassVar[str] = "/"
    database: ClassVar[str | None] = None           # its database's name
    database_section: ClassVar[str] = "database"    # where the connection URL goes
    database_key: ClassVar[str] = "connection"      # ... under this key
    manage: ClassVar[str | None] = None             # "glance-manage"
    db_sync: ClassVar[tuple[str, ...]] = ("db", "sync")
    scope_setting: ClassVar[str | None] = None      # "GLANCE_ENFORCE_SCOPE"
    authtoken: ClassVar[bool] = True                # checks tokens through Keystone
    service_type: ClassVar[str | None] = None       # "image": a service user and endpoints
    service_description: ClassVar[str] = ""
    endpoint_path: ClassVar[str] = ""
    requirements = ("gunicorn",)
    requires = (Need("database", before="init"), Need("identity", before="accounts"))

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "port_setting" in vars(cls) and "ports" not in vars(cls):
            cls.ports = {cls.port_setting: cls.default_port}

    # -- where things are ----------------------------------------------------------------
    def conf(self, ctx: "Context") -> Path:
        return ctx.settings.path(self.conf_setting)

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx)]

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int(self.port_setting, self.default_port)

    def env(self, ctx: "Context") -> dict[str, str]:
        """OS_<PROJECT>_CONFIG_DIR: where oslo.config finds the config from the WSGI app."""
        return {f"OS_{self.name.upper()}_CONFIG_DIR": str(self.conf(ctx).parent)}

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        conf, s = self.conf(ctx), ctx.settings
        ctx.iniset(conf, "DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        if self.database:
            ctx.iniset(conf, self.database_section, self.database_key, Database.url(ctx, self.database))
        if self.scope_setting:
            enforce = s.bool(self.scope_setting, True)
            ctx.iniset(conf, "oslo_policy", "enforce_scope", enforce)
            ctx.iniset(conf, "oslo_policy", "enforce_new_defaults", enforce)
        if self.authtoken:
            configure_authtoken(ctx, conf, self.name)
        shim(ctx, self.name, self.app, self.wsgi_args(ctx))

    def wsgi_args(self, ctx: "Context") -> list[str]:
        """Command line arguments the WSGI application parses (none: most find their config
        through ``env``)."""
        return []

    def run_manage(self, ctx: "Context", *args: str, env: dict[str, str] | None = None) -> None:
        """``<project>-manage --config-file <conf> args...`` from the stack's venv."""
        ctx.run(ctx.venv.bin(self.manage), "--config-file", self.conf(ctx), *args,
                env={**self.env(ctx), **(env or {})}, cwd=self.conf(ctx).parent)

    def init(self, ctx: "Context") -> None:
        if self.database:
            Database.create(ctx, self.database)
            self.run_manage(ctx, *self.db_sync)

    def processes(self, ctx: "Context") -> Iterable[Process]:
        if ctx.config.is_service_enabled(self.api):
            yield gunicorn(ctx, self.api, self.name, self.app, self.port(ctx), env=self.env(ctx),
                           health_path=self.health_path)

    def accounts(self, ctx: "Context") -> None:
        if self.service_type:
            identity.apply(ctx, identity.service_user(ctx, self.name)
                           + identity.endpoints(ctx, self.name, self.service_type,
                                                self.service_description,
                                                ctx.url(self.port(ctx), self.endpoint_path)))

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        if not self.scope_setting:
            return []
        return [("enforce_scope", self.name, "true" if ctx.settings.bool(self.scope_setting, True)
                 else "false")]

    def cleanup(self, ctx: "Context") -> None:
        if self.database:
            Database.drop(ctx, self.database)
        shutil.rmtree(self.conf(ctx).parent, ignore_errors=True)


def configure_authtoken(ctx: "Context", conf: Path, user: str, section: str = "keystone_authtoken",
                        *, raw: Callable[[object], str] | None = None) -> None:
    """devstack's configure_keystone_authtoken_middleware: how a service checks tokens. A file
    that oslo.config does not read (Swift's ``[filter:authtoken]``, read by its paste loader)
    gives ``raw``: each value is written as ``raw(value)`` says, instead of for oslo.config."""
    s = ctx.settings
    url = ctx.url(s.int("KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT))
    for key, value in (
        ("auth_type", "password"), ("interface", "public"), ("auth_url", url),
        ("www_authenticate_uri", url), ("username", user), ("user_domain_name", "Default"),
        ("project_name", s.get("SERVICE_PROJECT_NAME") or "service"),
        ("project_domain_name", "Default"), ("password", s.service_password),
        ("region_name", s.region_name), ("service_token_roles_required", "true"),
    ):
        if raw is not None:
            ctx.iniset(conf, section, key, raw(value), raw=True)
        else:
            ctx.iniset(conf, section, key, value)
    cache = memcached.servers(ctx)
    if cache:
        ctx.iniset(conf, section, "memcached_servers", cache)



def configure_keystoneauth(ctx: "Context", conf: Path, section: str, user: str) -> None:
    """devstack's configure_keystoneauth: how ``section`` of a service's config authenticates to
    another service, as the service user ``user`` (Nova's ``[neutron]`` as nova, Neutron's
    ``[nova]`` as nova, ``[placement]`` as placement)."""
    s = ctx.settings
    for key, value in (
        ("auth_type", "password"), ("interface", "public"), ("auth_url", identity.auth_url(ctx)),
        ("username", user), ("password", s.service_password), ("user_domain_name", "Default"),
        ("project_name", s.get("SERVICE_PROJECT_NAME") or "service"),
        ("project_domain_name", "Default"), ("region_name", s.region_name),
    ):
        ctx.iniset(conf, section, key, value)
