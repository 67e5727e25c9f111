"""Heat, the Orchestration service, as the devstack plugin in Heat's own repository
(``devstack/lib/heat``) sets it up: this recipe answers devstack's ``enable_plugin heat URL
[REF]`` (URL and REF become HEAT_REPO / HEAT_BRANCH; the plugin's settings enable h-eng, h-api
and h-api-cfn), and the h-* services enabled without that line run too (with a warning that
devstack would need it).

Services (devstack's names): ``h-api`` (``heat.wsgi.api:application`` under gunicorn on
HEAT_API_PORT, 8004), ``h-api-cfn`` (the CloudFormation-compatible API,
``heat.wsgi.cfn:application`` on HEAT_API_CFN_PORT, 8000) and ``h-eng`` (heat-engine with
HEAT_ENGINE_WORKERS workers, devstack's ``max(2, nproc/4)``); ``heat`` is their group name. The
CloudWatch API ``h-api-cw`` no longer exists (see :mod:`.names`). Heat comes from PyPI as
``openstack-heat`` (the project ``heat`` there is another one).

heat.conf is devstack's configure_heat: the database, the message bus, messagingv2
notifications, keystone_authtoken and ec2authtoken, ``deferred_auth_method = trusts`` with
``[trustee]`` as the heat user, ``[clients_keystone] auth_uri``, the metadata and wait-condition
URLs on the CloudFormation API, the stack domain (``stack_user_domain_name = heat``, its admin
``heat_domain_admin`` with SERVICE_PASSWORD), ``num_engine_workers``, an in-memory cache,
``hidden_stack_tags``, the policy defaults, and the default environment and templates copied
from the source tree into ``$HEAT_CONF_DIR/environment.d`` and ``templates`` (devstack's
``/etc/heat/...``; Heat is pointed at them). ``auth_encryption_key``: devstack writes one fixed
key; stackmagic generates HEAT_AUTH_ENCRYPTION_KEY once and keeps it with the passwords
(:mod:`stackmagic.passwords`), since a new key would make every credential Heat stored
unreadable.

init: ``heat-manage db_sync``. accounts (devstack's create_heat_accounts, before the services
start): the heat service user, the ``orchestration`` (``.../v1/$(project_id)s``) and
``cloudformation`` (``.../v1``) services and endpoints, the roles ``heat_stack_owner`` and
``heat_stack_user``, the domain ``heat`` and its admin ``heat_domain_admin``.

Health: both APIs answer HTTP; h-eng when Heat's own service table counts every engine worker of
this host up, as ``openstack orchestration service list`` does (a report within twice its
``report_interval``), and reported since stackmagic last started it.

Refused before anything is built: DATABASE_TYPE=sqlite (the engine's workers write at once),
HEAT_STANDALONE=True and ENABLE_HEAT_PLUGINS (not offered here).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog.api_service import ApiService, configure_authtoken
from stackmagic.catalog.base import Need, Process
from stackmagic.catalog.wsgi import gunicorn, shim
from stackmagic.errors import ConfigError
from stackmagic.health import CommandCheck
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context

SCRIPT = Path(__file__).parent.parent / "heat_script.py"
CFN_APP = "heat.wsgi.cfn:application"
CFN_MODULE = "wsgi_heat_cfn"
#: the stack domain and its admin (devstack's create_heat_accounts)
STACK_DOMAIN, DOMAIN_ADMIN = "heat", "heat_domain_admin"
STACK_ROLES = ("heat_stack_owner", "heat_stack_user")


class Heat(ApiService):
    name = "heat"
    group = "heat"
    services = {
        "h-api": "Orchestration API",
        "h-api-cfn": "Orchestration CloudFormation-compatible API",
        "h-eng": "Orchestration engine",
    }
    repo = "openstack/heat"
    pypi = "openstack-heat"
    devstack_plugin = "heat"
    plugin_services = ("h-eng", "h-api", "h-api-cfn")      # devstack/settings of the plugin
    requirements = ("gunicorn", "openstacksdk")
    api, app = "h-api", "heat.wsgi.api:application"
    conf_setting, port_setting, default_port = "HEAT_CONF", "HEAT_API_PORT", 8004
    ports = {"HEAT_API_PORT": 8004, "HEAT_API_CFN_PORT": 8000}
    database, manage, db_sync = "heat", "heat-manage", ("db_sync",)
    service_type, service_description = "orchestration", "Heat Orchestration Service"
    endpoint_path = "/v1/$(project_id)s"
    requires = (Need("database", before="init"), Need("identity", before="accounts"),
                Need("message-bus", before="start"))
    # the stack domain and its admin exist before an engine is asked to make a stack user there
    own_order = (("accounts", "start"),)

    # -- settings -------------------------------------------------------------------------
    def cfn_port(self, ctx: "Context") -> int:
        return ctx.settings.int("HEAT_API_CFN_PORT", 8000)

    def engine_workers(self, ctx: "Context") -> int:
        from stackmagic.config.defaults import default_api_workers

        return ctx.settings.int("HEAT_ENGINE_WORKERS", default_api_workers())

    def enforce_new_defaults(self, ctx: "Context") -> bool:
        s = ctx.settings
        # HEAT_ENFORCE_SCOPE is the older name, still read when set (as lib/heat does)
        own = s.bool("HEAT_ENFORCE_SCOPE", True) if s.get("HEAT_ENFORCE_SCOPE") else \
            s.bool("HEAT_ENFORCE_NEW_DEFAULTS", True)
        return own or s.bool("ENFORCE_NEW_DEFAULTS", False)

    def wsgi_args(self, ctx: "Context") -> list[str]:
        # heat.wsgi parses sys.argv with oslo.config: name the file (no search of /etc/heat)
        return ["--config-file", str(self.conf(ctx))]

    def _check(self, ctx: "Context") -> None:
        """What is refused before anything is built."""
        s = ctx.settings
        if s.database_type == "sqlite":
            raise ConfigError(
                "Heat cannot run on DATABASE_TYPE=sqlite: its engine workers and APIs write the "
                "heat database at the same time, and SQLite takes one writer (\"database is "
                "locked\"). Set DATABASE_TYPE=mysql (MariaDB) or DATABASE_TYPE=postgresql, or "
                "disable the h-* services.")
        if s.bool("HEAT_STANDALONE", False):
            raise ConfigError(
                "HEAT_STANDALONE=True (Heat against another cloud's Keystone, with password "
                "auth) is not offered by stackmagic; remove it: Heat uses this stack's Keystone "
                "with trusts, as devstack's default")
        if (s.get("ENABLE_HEAT_PLUGINS") or "").strip():
            raise ConfigError(
                f"ENABLE_HEAT_PLUGINS={s.get('ENABLE_HEAT_PLUGINS')!r}: Heat's contrib resource "
                "plugins are not installed by stackmagic; remove the setting")

    # -- lifecycle ------------------------------------------------------------------------
    def configure(self, ctx: "Context") -> None:
        """devstack's configure_heat."""
        self._check(ctx)
        super().configure(ctx)      # debug, [database], keystone_authtoken, the h-api shim
        from stackmagic.catalog import rabbit

        s, conf = ctx.settings, self.conf(ctx)
        shim(ctx, self.name, CFN_APP, self.wsgi_args(ctx), name=CFN_MODULE)
        src = self.source_dir(ctx) / "etc" / "heat"
        shutil.copyfile(src / "api-paste.ini", conf.parent / "api-paste.ini")
        env_dir, templates = conf.parent / "environment.d", conf.parent / "templates"
        for source, dest in ((src / "environment.d", env_dir), (src / "templates", templates)):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(source, dest)
        rabbit.iniset_rpc_backend(ctx, conf)
        configure_authtoken(ctx, conf, "heat", section="ec2authtoken")
        keystone = ctx.url(s.int("KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT))
        cfn = ctx.url(self.cfn_port(ctx))
        d = "DEFAULT"
        for section, key, value in (
            ("oslo_messaging_notifications", "driver", "messagingv2"),
            (d, "heat_metadata_server_url", cfn),
            (d, "heat_waitcondition_server_url", f"{cfn}/v1/waitcondition"),
            (d, "auth_encryption_key", s.get("HEAT_AUTH_ENCRYPTION_KEY") or ""),
            (d, "region_name_for_services", s.region_name),
            (d, "num_engine_workers", self.engine_workers(ctx)),
            (d, "hidden_stack_tags", "hidden"),
            # the engine's workers finish within it when stopped (oslo's default waits 60 s)
            (d, "graceful_shutdown_timeout", s.int("SERVICE_GRACEFUL_SHUTDOWN_TIMEOUT", 5)),
            (d, "environment_dir", env_dir),
            (d, "template_dir", templates),
            ("paste_deploy", "api_paste_config", conf.parent / "api-paste.ini"),
            (d, "deferred_auth_method", "trusts"),
            ("trustee", "auth_type", "password"),
            ("trustee", "auth_url", keystone),
            ("trustee", "username", s.get("HEAT_TRUSTEE_USER") or "heat"),
            ("trustee", "password", s.get("HEAT_TRUSTEE_PASSWORD") or s.service_password),
            ("trustee", "user_domain_id", s.get("HEAT_TRUSTEE_DOMAIN") or "default"),
            ("clients_keystone", "auth_uri", keystone),
            (d, "stack_user_domain_name", STACK_DOMAIN),
            (d, "stack_domain_admin", DOMAIN_ADMIN),
            (d, "stack_domain_admin_password", s.service_password),
            ("cache", "enabled", True),
            ("cache", "backend", "dogpile.cache.memory"),
            ("oslo_policy", "enforce_new_defaults", self.enforce_new_defaults(ctx)),
        ):
            ctx.iniset(conf, section, key, value)
        if s.bool("HEAT_ENABLE_ADOPT_ABANDON", False):
            ctx.iniset(conf, d, "enable_stack_adopt", True)
            ctx.iniset(conf, d, "enable_stack_abandon", True)
        if not ctx.config.is_service_enabled("c-bak"):
            ctx.iniset(conf, "volumes", "backups_enabled", False)

    def init(self, ctx: "Context") -> None:
        self._check(ctx)
        super().init(ctx)           # the heat database, heat-manage db_sync

    # -- processes --------------------------------------------------------------------------
    def processes(self, ctx: "Context") -> Iterable[Process]:
        """devstack's start_heat: the engine, then the two APIs."""
        self._check(ctx)
        cfg, conf = ctx.config, self.conf(ctx)
        if cfg.is_service_enabled("h-eng"):
            log = ctx.settings.logdir / "h-eng.log"
            check = CommandCheck((str(ctx.venv.python), str(SCRIPT), "engine-up", "--conf", str(conf),
                                  "--log", str(log), "--service", "h-eng"), timeout=20)
            yield Process("h-eng", [str(ctx.venv.bin("heat-engine")), "--config-file", str(conf)],
                          cwd=conf.parent, env=self.env(ctx), health=check,
                          timeout=ctx.settings.int("SERVICE_TIMEOUT", 60) + 60)
        yield from super().processes(ctx)             # h-api under gunicorn
        if cfg.is_service_enabled("h-api-cfn"):
            yield gunicorn(ctx, "h-api-cfn", self.name, CFN_APP, self.cfn_port(ctx),
                           env=self.env(ctx), module=CFN_MODULE)

    # -- accounts ---------------------------------------------------------------------------
    def accounts(self, ctx: "Context") -> None:
        """devstack's create_heat_accounts: the service user and both services' endpoints, the
        stack roles, and the stack domain with its admin."""
        s = ctx.settings
        ops = identity.service_user(ctx, "heat")
        ops += identity.endpoints(ctx, "heat", "orchestration", self.service_description,
                                  ctx.url(self.port(ctx), self.endpoint_path))
        ops += identity.endpoints(ctx, "heat-cfn", "cloudformation", "Heat CloudFormation Service",
                                  ctx.url(self.cfn_port(ctx), "/v1"))
        ops += [{"op": "role", "name": role} for role in STACK_ROLES]
        ops += [{"op": "domain", "name": STACK_DOMAIN,
                 "description": "Owns users and projects created by heat"},
                {"op": "user", "name": DOMAIN_ADMIN, "password": s.service_password,
                 "domain": STACK_DOMAIN},
                {"op": "grant", "role": "admin", "user": DOMAIN_ADMIN, "actor_domain": STACK_DOMAIN,
                 "domain": STACK_DOMAIN}]
        identity.apply(ctx, ops)

    # -- checks ----------------------------------------------------------------------------
    def verify_checks(self, ctx: "Context") -> list[Listing]:
        if not ctx.config.is_service_enabled("h-api"):
            return []
        # listing stacks goes through the API to an engine over the message bus
        return [Listing("stacks", "orchestration.stacks", ("name", "status"))]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        """configure_tempest_for_heat (devstack lib/tempest no longer says anything of Heat): the
        heat_plugin credentials and skip lists. The flavors, the network and the Fedora image
        it makes for heat-tempest-plugin's scenario tests are not made here (no downloads)."""
        if not ctx.config.is_service_enabled("h-api"):
            return []
        s = ctx.settings
        password = s.admin_password or ""
        section = "heat_plugin"
        opts = [("service_available", "heat", "true")]
        for key, value in (
            ("skip_scenario_test_list",
             "SoftwareConfigIntegrationTest,AodhAlarmTest,CfnInitIntegrationTest"),
            ("skip_functional_test_list", "NotificationTest"),
            ("username", "demo"), ("password", password), ("project_name", "demo"),
            ("auth_url", ctx.url(s.int("KEYSTONE_SERVICE_PORT", identity.KEYSTONE_PORT))),
            ("user_domain_id", "default"), ("project_domain_id", "default"),
            ("region", s.region_name),
            ("admin_username", "admin"), ("admin_password", password),
            ("hidden_stack_tag", "hidden"),
        ):
            opts.append((section, key, value))
        if ctx.config.is_service_enabled("g-api") and s.get("DEFAULT_IMAGE_NAME"):
            opts.append((section, "minimal_image_ref", s.get("DEFAULT_IMAGE_NAME")))
        return opts
